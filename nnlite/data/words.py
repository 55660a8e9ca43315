"""The texts of the printed-text data: real English words in case variants,
digit strings and random alphanumeric tokens, at most MAX_LENGTH characters.

english_words() is the list nnlite ships (words/english.txt: the 10,000 most
frequent English words of letters a-z, from wordfreq's data; see
words/NOTICE). Every tenth word by frequency rank is held out of training
(held_out_words), so the benchmark reads words of unseen fonts AND words
the reader was never trained on.

MAX_LENGTH is 16 because CTC needs a blank between two equal labels: a word
of 16 equal letters needs 2 * 16 - 1 = 31 time steps, the seed CRNN's T at
width 128, so every word of up to 16 characters fits whatever its letters.
Longer texts are refused (check_text), never clipped: a clipped label would
teach the reader to drop letters.
"""
import functools
import os
import string

MAX_LENGTH = 16
ALPHABET = string.ascii_letters + string.digits  # the CRNN's 62 characters
WORD_LIST = os.path.join(os.path.dirname(__file__), "words", "english.txt")
HELD_OUT_EVERY = 10  # words of rank 9, 19, 29 ... are never trained on

# How often each kind of text is drawn (TextSampler); the rest of the
# probability is dictionary words. Why these kinds: users' words are mostly
# dictionary words in three cases, then numbers (years, prices, codes), then
# mixed tokens (Cat9, A4, mp3) and strings that follow no language at all,
# which keep the reader from leaning on English spelling alone.
DIGITS_FRACTION = 0.12
WORD_AND_DIGITS_FRACTION = 0.08
RANDOM_FRACTION = 0.10
CASES = (("lower", 0.5), ("title", 0.3), ("upper", 0.2))


@functools.lru_cache(maxsize=None)
def english_words():
    """The shipped list (tuple of lower-case words, most frequent first)."""
    from nnlite.data.text_files import read_lines
    return tuple(word.strip() for word in read_lines(WORD_LIST, "english_words")
                 if word.strip())


def training_words():
    """english_words() less the held-out words."""
    return tuple(w for i, w in enumerate(english_words()) if i % HELD_OUT_EVERY
                 != HELD_OUT_EVERY - 1)


def held_out_words():
    """Every HELD_OUT_EVERY-th word by rank: never in training data."""
    return english_words()[HELD_OUT_EVERY - 1::HELD_OUT_EVERY]


def check_text(text, alphabet=ALPHABET, max_length=MAX_LENGTH, what="text"):
    """`text` if it is 1..max_length characters of `alphabet`, else a
    ValueError that names it and says why."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what} {text!r}: expected a non-empty string")
    if len(text) > max_length:
        raise ValueError(f"{what} {text!r} has {len(text)} characters; at most {max_length} "
                         f"fit the CRNN's 31 CTC steps (a run of equal letters needs a "
                         f"blank between each two); split it into shorter words")
    bad = sorted({c for c in text if c not in alphabet})
    if bad:
        raise ValueError(f"{what} {text!r} has characters {bad} outside the alphabet "
                         f"{alphabet!r}")
    return text


def apply_case(word, case):
    if case == "lower":
        return word.lower()
    if case == "title":
        return word[:1].upper() + word[1:].lower()
    if case == "upper":
        return word.upper()
    raise ValueError(f"apply_case: case must be lower, title or upper, got {case!r}")


class TextSampler:
    """Draws texts from a numpy Generator: dictionary words from `words` in a
    random case, digit strings, a word followed by digits, or random
    alphanumeric strings, all of 1..max_length characters."""

    def __init__(self, words=None, max_length=MAX_LENGTH, alphabet=ALPHABET):
        words = training_words() if words is None else tuple(words)
        self.max_length = int(max_length)
        if not 1 <= self.max_length <= MAX_LENGTH:
            raise ValueError(f"TextSampler: max_length must be 1..{MAX_LENGTH}, got "
                             f"{max_length!r}")
        self.alphabet = alphabet
        for word in words:  # a word the model can never read is an error, not a skip
            check_text(word, string.ascii_letters, what="TextSampler: word")
        # A max_length below MAX_LENGTH chooses shorter texts: longer words are skipped.
        self.words = tuple(w for w in words if len(w) <= self.max_length)
        if not self.words:
            raise ValueError(f"TextSampler: no word of the list has at most "
                             f"{self.max_length} characters")
        self.case_names = [name for name, _ in CASES]
        self.case_weights = [weight for _, weight in CASES]

    def word(self, rng, max_length=None):
        limit = self.max_length if max_length is None else max_length
        for _ in range(20):  # the list is mostly short words; a few draws suffice
            word = self.words[rng.integers(len(self.words))]
            if len(word) <= limit:
                break
        else:
            word = "".join(rng.choice(list(string.ascii_lowercase), size=limit))
        return apply_case(word, self.case_names[rng.choice(len(CASES), p=self.case_weights)])

    def digits(self, rng, longest=8):
        length = int(rng.integers(1, min(longest, self.max_length) + 1))
        return "".join(str(d) for d in rng.integers(0, 10, size=length))

    def random_string(self, rng):
        length = int(rng.integers(1, min(12, self.max_length) + 1))
        pool = rng.choice([string.ascii_lowercase, string.ascii_uppercase, self.alphabet])
        return "".join(pool[i] for i in rng.integers(len(pool), size=length))

    def __call__(self, rng):
        kind = rng.random()
        if kind < DIGITS_FRACTION:
            return self.digits(rng)
        kind -= DIGITS_FRACTION
        if kind < WORD_AND_DIGITS_FRACTION and self.max_length >= 2:
            digits = self.digits(rng, longest=min(4, self.max_length - 1))
            return self.word(rng, self.max_length - len(digits)) + digits
        kind -= WORD_AND_DIGITS_FRACTION
        if kind < RANDOM_FRACTION:
            return self.random_string(rng)
        return self.word(rng)
