"""NALU tasks (SPECS section 4; Trask et al. 2018) as arrays.

Static arithmetic task: x uniform in `value_range`, x in R^in_features;
a = sum of x[slice_a], b = sum of x[slice_b]; the target is op(a, b). The
defaults are the ones nnlite.models.nalu uses (the paper's reference setting):
interpolation range [0, 1), extrapolation range [0, 5), slices 0:10 and 5:15.
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
