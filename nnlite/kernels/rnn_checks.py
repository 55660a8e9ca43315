"""Argument checks of the recurrent step kernels, shared by both backends.

The step kernels write into arrays the caller provides (the sequence Functions
preallocate every buffer once per call), so the checks are strict: exact
dtype, C order, exact shape. A step of hidden size H over N rows takes (N, k*H)
arrays, the int32 ``lengths`` (N,) and the step index t.
"""
import numpy as np

from nnlite.kernels._checks import FLOAT_DTYPES


def step_arrays(op, xp, rows, hidden, arrays, lengths=None):
    """Validate `arrays`, a sequence of (name, array, width in units of H), the
    first being the dtype reference; width 0 means a (H,) vector."""
    ref_dtype = None
    for name, a, width in arrays:
        if not isinstance(a, xp.ndarray):
            kind = type(a)
            raise TypeError(f"{op}: {name} must be a {xp.__name__}.ndarray (all inputs on one "
                            f"device); got {kind.__module__}.{kind.__qualname__}")
        if ref_dtype is None:
            ref_dtype = a.dtype
            if ref_dtype.name not in FLOAT_DTYPES:
                raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected float32 or float64")
        elif a.dtype != ref_dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected {ref_dtype} like "
                            f"{arrays[0][0]}")
        expected = (hidden,) if width == 0 else (rows, width * hidden)
        if tuple(a.shape) != expected:
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; expected {expected}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous (the kernel writes or reads "
                             f"it in place)")
    if lengths is not None:
        if not isinstance(lengths, xp.ndarray) or lengths.dtype != np.int32 or \
                tuple(lengths.shape) != (rows,) or not lengths.flags.c_contiguous:
            raise ValueError(f"{op}: lengths must be a contiguous int32 {xp.__name__}.ndarray "
                             f"of shape ({rows},); got {_describe(lengths)}")


def _describe(a):
    if hasattr(a, "dtype") and hasattr(a, "shape"):
        return f"{a.dtype} array of shape {tuple(a.shape)}"
    return type(a).__name__


def rows_hidden(op, h_like):
    """(N, H) from a state-shaped array, with a clear error when it is not 2-D."""
    if getattr(h_like, "ndim", None) != 2:
        raise ValueError(f"{op}: the state must be 2-D (N, H); got "
                         f"{_describe(h_like)}")
    return int(h_like.shape[0]), int(h_like.shape[1])
