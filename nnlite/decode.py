"""CTC decoding (``nl.decode``): greedy and prefix beam search, and the
Alphabet that maps label ids to text.

    alphabet = nl.decode.Alphabet("0123456789abcdefghijklmnopqrstuvwxyz", blank="last")
    ids = nl.decode.ctc_greedy(log_probs)                      # [[label, ...], ...]
    ids = nl.decode.ctc_beam_search(log_probs, beam_width=10, lexicon=["cat", "car"],
                                    alphabet=alphabet)
    words = [alphabet.decode(s) for s in ids]

log_probs is (T, N, C) as for ``F.ctc_loss`` (or (T, C) for one sequence, which
returns one label list). Beam search runs on the CPU (numba); greedy takes
the argmax on the array's own device and collapses on the host.
"""
import numba
import numpy as np

from nnlite.device import to_numpy, xp_of
from nnlite.tensor import raw

__all__ = ["Alphabet", "ctc_beam_search", "ctc_greedy"]


class Alphabet:
    """Characters <-> label ids, with the CTC blank at the first or last class or
    at any index: ``Alphabet("abc", blank="last")`` gives a=0, b=1, c=2, blank=3."""

    def __init__(self, characters, blank="first"):
        characters = list(characters)
        duplicates = sorted({c for c in characters if characters.count(c) > 1})
        if duplicates:
            raise ValueError(f"Alphabet: characters {duplicates} appear more than once")
        if any(not isinstance(c, str) or len(c) != 1 for c in characters):
            raise ValueError("Alphabet: characters must be single-character strings")
        self.num_classes = len(characters) + 1
        if blank == "first":
            blank = 0
        elif blank == "last":
            blank = len(characters)
        elif not isinstance(blank, (int, np.integer)) or not 0 <= blank < self.num_classes:
            raise ValueError(f"Alphabet: blank={blank!r}; expected 'first', 'last' or an index "
                             f"in [0, {self.num_classes})")
        self.blank = int(blank)
        self.characters = characters
        ids = [i for i in range(self.num_classes) if i != self.blank]
        self._id_of = dict(zip(characters, ids))
        self._char_of = dict(zip(ids, characters))

    def encode(self, text):
        """Label ids of `text`; characters outside the alphabet raise, all named."""
        unknown = sorted({c for c in text if c not in self._id_of})
        if unknown:
            raise ValueError(f"Alphabet.encode: {text!r} holds characters not in the alphabet: "
                             f"{unknown}")
        return [self._id_of[c] for c in text]

    def decode(self, ids):
        """The text of label ids (decoder output: no blanks)."""
        try:
            return "".join(self._char_of[int(i)] for i in ids)
        except KeyError as exc:
            bad = int(exc.args[0])
            what = "the blank" if bad == self.blank else f"outside [0, {self.num_classes})"
            raise ValueError(f"Alphabet.decode: label {bad} is {what}; decode takes collapsed "
                             f"decoder output (ctc_greedy / ctc_beam_search)") from None

    def __len__(self):
        return self.num_classes

    def __repr__(self):
        return f"Alphabet({''.join(self.characters)!r}, blank={self.blank})"


def _as_batch(op, log_probs, input_lengths):
    """(T, N, C) array, host lengths (N,), whether the input was one (T, C) sequence."""
    lp = raw(log_probs)
    single = lp.ndim == 2
    if single:
        lp = lp[:, None, :]
    if lp.ndim != 3:
        raise ValueError(f"{op}: log_probs must be (T, N, C) or (T, C); got shape "
                         f"{tuple(lp.shape)}")
    max_time, batch, _ = lp.shape
    if input_lengths is None:
        lengths = np.full(batch, max_time, dtype=np.int64)
    else:
        lengths = np.asarray(to_numpy(raw(input_lengths))).reshape(-1).astype(np.int64)
        if lengths.shape[0] != batch or (lengths < 0).any() or (lengths > max_time).any():
            raise ValueError(f"{op}: input_lengths {lengths.tolist()} must hold {batch} values "
                             f"in [0, {max_time}] for log_probs of shape {tuple(lp.shape)}")
    return lp, lengths, single


def ctc_greedy(log_probs, input_lengths=None, blank=0):
    """Best path decoding: the argmax class per frame (on the array's device),
    repeats merged, blanks dropped. Returns one label-id list per sequence."""
    lp, lengths, single = _as_batch("ctc_greedy", log_probs, input_lengths)
    best = to_numpy(xp_of(lp).argmax(lp, axis=2))  # (T, N)
    results = []
    for n in range(best.shape[1]):
        path = best[:lengths[n], n]
        keep = path != blank
        keep[1:] &= path[1:] != path[:-1]
        results.append(path[keep].tolist())
    return results[0] if single else results


# ---------------------------------------------------------------- beam search --
# Prefixes live in a trie: node k has a parent, a last label and a depth; the
# beam holds node ids with their log probabilities of ending in a blank (pb) or
# in their last label (pnb). A lexicon is a second trie over label ids; a
# prefix may only grow along it, and only nodes ending a word may win.

@numba.njit(cache=True)
def _log_add(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@numba.njit(cache=True)
def _beam_search_one(lp, frames, beam_width, blank, lex_children, lex_is_word, use_lexicon):
    classes = lp.shape[1]
    capacity = 1 + frames * beam_width * classes
    parent = np.empty(capacity, np.int64)
    last = np.empty(capacity, np.int64)
    lex_node = np.empty(capacity, np.int64)
    pb = np.full(capacity, -np.inf)
    pnb = np.full(capacity, -np.inf)
    next_pb = np.full(capacity, -np.inf)
    next_pnb = np.full(capacity, -np.inf)
    touched = np.zeros(capacity, np.bool_)
    children = numba.typed.Dict.empty(numba.types.int64, numba.types.int64)
    parent[0], last[0], lex_node[0] = -1, -1, 0
    count = 1
    pb[0] = 0.0
    beam = np.zeros(1, np.int64)
    for t in range(frames):
        row = lp[t]
        candidates = []
        for k in beam:
            total = _log_add(pb[k], pnb[k])
            # Stay on the same prefix: a blank, or a repeat of its last label.
            if not touched[k]:
                touched[k] = True
                candidates.append(k)
            next_pb[k] = _log_add(next_pb[k], total + row[blank])
            if last[k] >= 0:
                next_pnb[k] = _log_add(next_pnb[k], pnb[k] + row[last[k]])
            for c in range(classes):
                if c == blank:
                    continue
                lex_child = 0
                if use_lexicon:
                    lex_key = lex_node[k] * classes + c
                    if lex_key not in lex_children:
                        continue
                    lex_child = lex_children[lex_key]
                key = k * classes + c
                if key in children:
                    child = children[key]
                else:
                    child = count
                    count += 1
                    children[key] = child
                    parent[child], last[child], lex_node[child] = k, c, lex_child
                if not touched[child]:
                    touched[child] = True
                    candidates.append(child)
                # A repeated label only starts a new symbol after a blank.
                source = pb[k] if c == last[k] else total
                next_pnb[child] = _log_add(next_pnb[child], source + row[c])
        nodes = np.array(candidates, np.int64)
        scores = np.empty(len(nodes))
        for i in range(len(nodes)):
            k = nodes[i]
            pb[k], pnb[k] = next_pb[k], next_pnb[k]
            next_pb[k], next_pnb[k] = -np.inf, -np.inf
            touched[k] = False
            scores[i] = _log_add(pb[k], pnb[k])
            if use_lexicon and t == frames - 1 and not lex_is_word[lex_node[k]]:
                scores[i] = -np.inf
        # Stable sort on -score: ties keep candidate order, so results are reproducible.
        order = np.argsort(-scores, kind="mergesort")[:beam_width]
        beam = nodes[order]
        beam = beam[scores[order] > -np.inf] if t == frames - 1 else beam
    if frames == 0:
        if use_lexicon and not lex_is_word[0]:
            return np.zeros(0, np.int64), -np.inf
        return np.zeros(0, np.int64), 0.0
    if len(beam) == 0:
        return np.zeros(0, np.int64), -np.inf
    best = beam[0]
    score = _log_add(pb[best], pnb[best])
    depth = 0
    k = best
    while parent[k] >= 0:
        depth += 1
        k = parent[k]
    labels = np.empty(depth, np.int64)
    k = best
    for i in range(depth - 1, -1, -1):
        labels[i] = last[k]
        k = parent[k]
    return labels, score


def _lexicon_trie(words, classes):
    children = numba.typed.Dict.empty(numba.types.int64, numba.types.int64)
    is_word = [False]
    for word in words:
        node = 0
        for label in word:
            key = node * classes + int(label)
            if key not in children:
                children[key] = len(is_word)
                is_word.append(False)
            node = children[key]
        is_word[node] = True
    return children, np.array(is_word, dtype=np.bool_)


def ctc_beam_search(log_probs, beam_width, input_lengths=None, blank=0, lexicon=None,
                    alphabet=None, return_scores=False):
    """Prefix beam search (Hannun et al. 2014) on the CPU with numba.

    Returns one label-id list per sequence: the most probable labelling among
    the `beam_width` kept prefixes, summing over all of its alignments. With
    `lexicon` (a list of words: strings, encoded with `alphabet`, or label-id
    lists) a prefix only grows along the lexicon and the result is a complete
    lexicon word ([] when no word fits in the beam). `return_scores=True` also
    returns each result's log probability.
    """
    op = "ctc_beam_search"
    if int(beam_width) < 1:
        raise ValueError(f"{op}: beam_width must be at least 1; got {beam_width}")
    lp, lengths, single = _as_batch(op, log_probs, input_lengths)
    lp = np.ascontiguousarray(to_numpy(lp), dtype=np.float64)
    classes = lp.shape[2]
    if alphabet is not None:
        if alphabet.num_classes != classes or alphabet.blank != blank:
            raise ValueError(f"{op}: {alphabet!r} has {alphabet.num_classes} classes and blank "
                             f"{alphabet.blank}; log_probs has {classes} classes, blank={blank}")
    if not 0 <= blank < classes:
        raise ValueError(f"{op}: blank={blank} is outside [0, {classes})")
    use_lexicon = lexicon is not None
    if use_lexicon:
        words = []
        for word in lexicon:
            if isinstance(word, str):
                if alphabet is None:
                    raise ValueError(f"{op}: a lexicon of strings needs alphabet= to map them "
                                     f"to label ids")
                word = alphabet.encode(word)
            if any(not 0 <= int(c) < classes or int(c) == blank for c in word):
                raise ValueError(f"{op}: lexicon word {list(word)} holds labels outside "
                                 f"[0, {classes}) or equal to blank={blank}")
            words.append([int(c) for c in word])
        lex_children, lex_is_word = _lexicon_trie(words, classes)
    else:
        lex_children, lex_is_word = _lexicon_trie([], classes)
    results, scores = [], []
    for n in range(lp.shape[1]):
        labels, score = _beam_search_one(np.ascontiguousarray(lp[:, n, :]), int(lengths[n]),
                                         int(beam_width), int(blank), lex_children, lex_is_word,
                                         use_lexicon)
        results.append(labels.tolist())
        scores.append(float(score))
    if single:
        results, scores = results[0], scores[0]
    return (results, scores) if return_scores else results
