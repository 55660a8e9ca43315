"""nl.decode (greedy, prefix beam search, lexicon, Alphabet) and nl.metrics."""
import itertools

import numpy as np
import pytest

import nnlite as nl
from nnlite.decode import Alphabet, ctc_beam_search, ctc_greedy
from nnlite.metrics import character_error_rate, edit_distance, word_accuracy
from nnlite.reference import ctc as ref


def log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def one_hot_paths(paths, classes):
    """(T, N, C) log-probs whose argmax per frame follows each path."""
    lp = np.full((len(paths[0]), len(paths), classes), np.log(0.1 / (classes - 1)))
    for n, path in enumerate(paths):
        for t, c in enumerate(path):
            lp[t, n, c] = np.log(0.9)
    return lp


def collapse(path, blank):
    return [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]


def test_greedy_hand_made_cases(xp):
    lp = one_hot_paths([[0, 1, 1, 0, 2, 2, 1], [0, 0, 0, 0, 0, 0, 0], [3, 3, 0, 3, 1, 0, 0]], 4)
    assert ctc_greedy(xp.asarray(lp)) == [[1, 2, 1], [], [3, 3, 1]]
    assert ctc_greedy(xp.asarray(lp), input_lengths=[3, 7, 4]) == [[1], [], [3, 3]]
    assert ctc_greedy(xp.asarray(lp[:, 0, :])) == [1, 2, 1]  # one (T, C) sequence


def test_greedy_with_blank_last(xp):
    lp = one_hot_paths([[3, 0, 0, 3, 0, 1, 3, 2]], 4)
    assert ctc_greedy(nl.tensor(lp, device="cpu" if xp is np else "cuda"), blank=3) == \
        [[0, 0, 1, 2]]


def test_beam_width_one_equals_greedy():
    """On peaked outputs (a trained network's: 0.9 on one class per frame), width 1
    follows the best path. On flat outputs prefix merging may legitimately pick a
    different labelling: the point of beam search, tested below."""
    rng = np.random.default_rng(0)
    for blank in (0, 7):
        paths = rng.integers(0, 8, size=(16, 31))
        paths[:, 5:9] = paths[:, 4:5]  # runs of repeats
        lp = one_hot_paths(paths.tolist(), 8)
        lengths = rng.integers(1, 32, size=16)
        greedy = ctc_greedy(lp, input_lengths=lengths, blank=blank)
        assert ctc_beam_search(lp, 1, input_lengths=lengths, blank=blank) == greedy
        assert greedy == [collapse(list(p[:n]), blank) for p, n in zip(paths, lengths)]


def labelling_log_probs(lp, blank):
    """log p(labelling) for every labelling, by enumerating every path."""
    totals = {}
    frames, classes = lp.shape
    for path in itertools.product(range(classes), repeat=frames):
        key = tuple(collapse(path, blank))
        totals[key] = totals.get(key, 0.0) + np.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return {k: np.log(v) for k, v in totals.items()}


@pytest.mark.parametrize("seed", range(3))
def test_beam_search_finds_most_probable_labelling(seed):
    """Flat-ish distributions, where the best path and the best labelling differ."""
    rng = np.random.default_rng(seed)
    blank = [0, 2, 1][seed]
    lp = log_softmax(rng.standard_normal((5, 3)) * 0.7)
    scores = labelling_log_probs(lp, blank)
    best = max(scores, key=scores.get)
    labels, score = ctc_beam_search(lp, beam_width=64, blank=blank, return_scores=True)
    assert tuple(labels) == best
    np.testing.assert_allclose(score, scores[best], rtol=1e-12)


def test_beam_search_beats_greedy_where_alignments_add_up():
    # Frame-wise "a" or blank, nearly even: best path is all blanks (0.36^3 ...) but
    # labelling "a" collects many alignments.
    lp = np.log(np.array([[0.4, 0.35, 0.25]] * 3))
    assert ctc_greedy(lp) == []
    scores = labelling_log_probs(lp, 0)
    assert ctc_beam_search(lp, beam_width=8) == list(max(scores, key=scores.get)) == [1]


def test_lexicon_decoding_returns_only_lexicon_words():
    alphabet = Alphabet("abcdr", blank="last")
    rng = np.random.default_rng(3)
    lexicon = ["cab", "card", "bad", "dab", "a"]
    lp = log_softmax(rng.standard_normal((12, 20, alphabet.num_classes)) * 3)
    for width in (3, 20):
        results = ctc_beam_search(lp, width, blank=alphabet.blank, lexicon=lexicon,
                                  alphabet=alphabet)
        assert all(alphabet.decode(labels) in lexicon for labels in results)
    # 20 exceeds the 13 lexicon-trie nodes: nothing is pruned, so the result is the
    # most probable lexicon word and its score that word's full CTC probability.
    results, scores = ctc_beam_search(lp, 20, blank=alphabet.blank, lexicon=lexicon,
                                      alphabet=alphabet, return_scores=True)
    for n, (labels, score) in enumerate(zip(results, scores)):
        words = [alphabet.encode(w) for w in lexicon]
        nll, _ = ref.ctc_loss_grad_vectorized(np.repeat(lp[:, n:n + 1], len(words), axis=1),
                                              [w for w in words], [12] * len(words),
                                              [len(w) for w in words], blank=alphabet.blank)
        assert labels == words[int(np.argmin(nll))]
        np.testing.assert_allclose(score, -nll.min(), rtol=1e-10)


def test_lexicon_picks_the_word_the_signal_spells():
    alphabet = Alphabet("act", blank="first")
    spelled = [alphabet.blank] + alphabet.encode("cat") + [alphabet.blank]
    lp = one_hot_paths([spelled], alphabet.num_classes)[:, 0, :]
    assert alphabet.decode(ctc_beam_search(lp, 5, lexicon=["act", "cat", "tac"],
                                           alphabet=alphabet)) == "cat"
    # Label-id words need no alphabet.
    assert ctc_beam_search(lp, 5, lexicon=[alphabet.encode("cat")]) == alphabet.encode("cat")
    # No lexicon word fits: an empty result rather than a non-word.
    assert ctc_beam_search(lp[:1], 5, lexicon=[alphabet.encode("cat")]) == []


def test_beam_search_bad_input():
    lp = np.zeros((3, 1, 4))
    with pytest.raises(ValueError, match="ctc_beam_search: beam_width must be at least 1"):
        ctc_beam_search(lp, 0)
    with pytest.raises(ValueError, match="lexicon of strings needs alphabet="):
        ctc_beam_search(lp, 2, lexicon=["ab"])
    with pytest.raises(ValueError, match=r"Alphabet\('abcd', blank=0\) has 5 classes"):
        ctc_beam_search(lp, 2, alphabet=Alphabet("abcd"))
    with pytest.raises(ValueError, match=r"ctc_beam_search: input_lengths \[4\] must hold"):
        ctc_beam_search(lp, 2, input_lengths=[4])
    with pytest.raises(ValueError, match=r"log_probs must be \(T, N, C\) or \(T, C\)"):
        ctc_greedy(np.zeros(3))


def test_alphabet_blank_positions_and_round_trip():
    first, last, middle = Alphabet("abc"), Alphabet("abc", blank="last"), Alphabet("abc", 1)
    assert (first.blank, last.blank, middle.blank) == (0, 3, 1)
    assert first.encode("cab") == [3, 1, 2]
    assert last.encode("cab") == [2, 0, 1]
    assert middle.encode("cab") == [3, 0, 2]
    for alphabet in (first, last, middle):
        assert alphabet.num_classes == len(alphabet) == 4
        assert alphabet.decode(alphabet.encode("abccba")) == "abccba"


def test_alphabet_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"holds characters not in the alphabet: \['X', 'z'\]"):
        Alphabet("abc").encode("aXbz")
    with pytest.raises(ValueError, match=r"label 0 is the blank"):
        Alphabet("abc").decode([1, 0])
    with pytest.raises(ValueError, match=r"label 9 is outside \[0, 4\)"):
        Alphabet("abc").decode([9])
    with pytest.raises(ValueError, match=r"characters \['a'\] appear more than once"):
        Alphabet("aba")
    with pytest.raises(ValueError, match=r"blank=7; expected 'first', 'last' or an index"):
        Alphabet("abc", blank=7)


def python_levenshtein(a, b):
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                              table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance([], []) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    rng = np.random.default_rng(4)
    for _ in range(50):
        a = list(rng.integers(0, 4, size=rng.integers(0, 12)))
        b = list(rng.integers(0, 4, size=rng.integers(0, 12)))
        assert edit_distance(a, b) == python_levenshtein(a, b)


def test_character_error_rate_and_word_accuracy():
    predictions, targets = ["hello", "wrld", "", "abc"], ["hello", "world", "xy", "abd"]
    assert character_error_rate(predictions, targets) == (0 + 1 + 2 + 1) / (5 + 5 + 2 + 3)
    assert word_accuracy(predictions, targets) == 0.25
    assert word_accuracy([[1, 2], [3]], [[1, 2], [4]]) == 0.5
    with pytest.raises(ValueError, match="character_error_rate: 1 predictions but 2 targets"):
        character_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="the targets are all empty"):
        character_error_rate(["a"], [""])
    with pytest.raises(TypeError, match="edit_distance: a must be a string or a 1-D sequence"):
        edit_distance([0.5], [1])
