"""Text-recognition metrics (``nl.metrics``): edit distance, character error
rate, word accuracy. Sequences are strings or sequences of label ids."""
import numba
import numpy as np

__all__ = ["character_error_rate", "edit_distance", "word_accuracy"]


@numba.njit(cache=True)
def _levenshtein(a, b):
    # One row of the dynamic programme: row[j] = distance(a[:i], b[:j]).
    row = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        diagonal = row[0]
        row[0] = i
        for j in range(1, len(b) + 1):
            above = row[j]
            substitute = diagonal + (a[i - 1] != b[j - 1])
            row[j] = min(substitute, above + 1, row[j - 1] + 1)
            diagonal = above
    return row[len(b)]


def _codes(sequence, op, name):
    if isinstance(sequence, str):
        return np.array([ord(c) for c in sequence], dtype=np.int64)
    array = np.asarray(sequence)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must be a string or a 1-D sequence of integer labels; "
                        f"got {type(sequence).__name__} of shape {array.shape} and dtype "
                        f"{array.dtype}")
    return array.astype(np.int64)


def edit_distance(a, b):
    """Levenshtein distance (insertions, deletions, substitutions, each costing 1)."""
    return int(_levenshtein(_codes(a, "edit_distance", "a"), _codes(b, "edit_distance", "b")))


def _pairs(op, predictions, targets):
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
        raise ValueError(f"{op}: {len(predictions)} predictions but {len(targets)} targets")
    return predictions, targets


def character_error_rate(predictions, targets):
    """Sum of edit distances over the sum of target lengths (corpus-level CER)."""
    op = "character_error_rate"
    predictions, targets = _pairs(op, predictions, targets)
    total_length = sum(len(t) for t in targets)
    if total_length == 0:
        raise ValueError(f"{op}: the targets are all empty, so the rate is undefined")
    distance = sum(int(_levenshtein(_codes(p, op, "prediction"), _codes(t, op, "target")))
                   for p, t in zip(predictions, targets))
    return distance / total_length


def word_accuracy(predictions, targets):
    """Fraction of predictions exactly equal to their target."""
    op = "word_accuracy"
    predictions, targets = _pairs(op, predictions, targets)
    if not targets:
        raise ValueError(f"{op}: no predictions to score")
    correct = sum(np.array_equal(_codes(p, op, "prediction"), _codes(t, op, "target"))
                  for p, t in zip(predictions, targets))
    return correct / len(targets)
