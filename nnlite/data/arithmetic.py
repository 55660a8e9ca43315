"""NALU tasks (SPECS section 4; Trask et al. 2018) as arrays.

Static arithmetic task: x uniform in `value_range`, x in R^in_features;
a = sum of x[slice_a], b = sum of x[slice_b]; the target is op(a, b). The
defaults are the ones nnlite.models.nalu uses (this project's first setting):
interpolation range [0, 1), extrapolation range [0, 5), slices 0:10 and 5:15.

The "paper" setting (PAPER_*, subset_slices, near_perfect_mse): Trask et al.
do not publish the static task's dataset parameters; Madsen & Johansen
(ICLR 2020, appendix "Arithmetic task"; "Measuring Arithmetic Extrapolation
Performance", 2019) reproduce it with input size 100, two contiguous subsets of
25% of the input overlapping by half of a subset, placed at a random offset
per experiment, interpolation U[1, 2] and extrapolation U[2, 6], and call a run
solved when its extrapolation MSE is below that of a nearly perfect solution
(every weight off by eps = 1e-5).
"""
import numpy as np

OPERATIONS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "square": lambda a, b: a * a,
    "sqrt": lambda a, b: np.sqrt(a),
}
# The paper's spellings, accepted as aliases.
ALIASES = {"a+b": "add", "a-b": "sub", "a*b": "mul", "a/b": "div", "a^2": "square",
           "a**2": "square", "sqrt(a)": "sqrt"}
INTERPOLATION_RANGE = (0.0, 1.0)
EXTRAPOLATION_RANGE = (0.0, 5.0)
SLICE_A = slice(0, 10)
SLICE_B = slice(5, 15)
# Madsen & Johansen's reproduction of the paper's static task (see above).
PAPER_INPUT_SIZE = 100
PAPER_SUBSET_RATIO = 0.25
PAPER_OVERLAP_RATIO = 0.5
PAPER_INTERPOLATION_RANGE = (1.0, 2.0)
PAPER_EXTRAPOLATION_RANGE = (2.0, 6.0)


def _rng(name, size, seed):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"{name}: size must be a non-negative int, got {size!r}")
    return np.random.default_rng(seed)


def arithmetic_task(op, size, seed=0, extrapolation=False, value_range=None, in_features=100,
                    slice_a=SLICE_A, slice_b=SLICE_B):
    """(inputs float32 (size, in_features), targets float32 (size, 1)) of the
    static task for `op` (add, sub, mul, div, square, sqrt or a+b, a-b, a*b,
    a/b, a^2, sqrt(a)). `value_range` defaults to the interpolation range, or
    the extrapolation range when extrapolation=True."""
    name = ALIASES.get(op, op)
    if name not in OPERATIONS:
        raise ValueError(f"arithmetic_task: op must be one of {sorted(OPERATIONS)} or "
                         f"{sorted(ALIASES)}, got {op!r}")
    if value_range is None:
        value_range = EXTRAPOLATION_RANGE if extrapolation else INTERPOLATION_RANGE
    low, high = value_range
    if not low < high:
        raise ValueError(f"arithmetic_task: value_range must be (low, high) with low < high, "
                         f"got {value_range}")
    if name in ("sqrt",) and low < 0:
        raise ValueError(f"arithmetic_task: sqrt needs non-negative inputs, value_range "
                         f"{value_range}")
    for which, part in (("slice_a", slice_a), ("slice_b", slice_b)):
        if len(range(in_features)[part]) == 0:
            raise ValueError(f"arithmetic_task: {which} {part} selects nothing of "
                             f"{in_features} features")
    x = _rng("arithmetic_task", size, seed).uniform(low, high, size=(size, in_features))
    a, b = x[:, slice_a].sum(axis=1), x[:, slice_b].sum(axis=1)
    y = OPERATIONS[name](a, b)[:, None]
    return x.astype(np.float32), y.astype(np.float32)


def subset_slices(in_features=PAPER_INPUT_SIZE, subset_ratio=PAPER_SUBSET_RATIO,
                  overlap_ratio=PAPER_OVERLAP_RATIO, seed=None, offset=None):
    """(slice_a, slice_b): two contiguous subsets of floor(subset_ratio *
    in_features) features, b starting floor(overlap_ratio * subset size)
    features before a ends (Madsen & Johansen's generator). The pair is
    shifted by `offset`, or else by an offset drawn uniformly, from `seed`,
    among every offset that fits (one draw per experiment)."""
    if not 0 < subset_ratio <= 1 or not 0 <= overlap_ratio < 1:
        raise ValueError(f"subset_slices: need 0 < subset_ratio <= 1 and 0 <= overlap_ratio < 1, "
                         f"got {subset_ratio}, {overlap_ratio}")
    size = int(np.floor(subset_ratio * in_features))
    overlap = int(np.floor(overlap_ratio * size))
    if size < 1:
        raise ValueError(f"subset_slices: subset_ratio {subset_ratio} of {in_features} features "
                         f"selects nothing")
    used = 2 * size - overlap
    if used > in_features:
        raise ValueError(f"subset_slices: two subsets of {size} overlapping by {overlap} need "
                         f"{used} features, have {in_features}")
    if offset is None:
        offset = int(np.random.default_rng(seed).integers(0, in_features - used + 1))
    elif not 0 <= offset <= in_features - used:
        raise ValueError(f"subset_slices: offset {offset} outside [0, {in_features - used}]")
    return slice(offset, offset + size), slice(offset + size - overlap, offset + used)


def near_perfect_mse(op, x, slice_a=SLICE_A, slice_b=SLICE_B, eps=1e-5):
    """Madsen & Johansen's success threshold: the MSE on inputs x (n, features)
    of the nearly perfect first layer (weight 1 - eps on each subset, eps on
    every other feature) followed by the exact operation. A run whose MSE on
    the same set is below this has solved the task."""
    name = ALIASES.get(op, op)
    if name not in OPERATIONS:
        raise ValueError(f"near_perfect_mse: unknown op {op!r}")
    x = np.asarray(x, dtype=np.float64)
    total = x.sum(axis=1)
    a, b = x[:, slice_a].sum(axis=1), x[:, slice_b].sum(axis=1)
    a_eps = (1 - eps) * a + eps * (total - a)
    b_eps = (1 - eps) * b + eps * (total - b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean((OPERATIONS[name](a_eps, b_eps) - OPERATIONS[name](a, b)) ** 2))


def identity_task(size, seed=0, value_range=(-5.0, 5.0)):
    """(x, y = x), each float32 (size, 1), x uniform in value_range: the
    identity-failure experiment (train on [-5, 5], test on [-20, 20])."""
    x = _rng("identity_task", size, seed).uniform(value_range[0], value_range[1], size=(size, 1))
    x = x.astype(np.float32)
    return x, x.copy()


def integer_addition_task(size, seed=0, high=100):
    """The seed tutorial's data: integer pairs in [1, high) and their sums,
    float32 (size, 2) and (size, 1); train high=100, extrapolate high=1000."""
    x = _rng("integer_addition_task", size, seed).integers(1, high, size=(size, 2))
    x = x.astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)
