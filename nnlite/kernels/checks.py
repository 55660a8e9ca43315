"""Array checks of the kernel modules, the same on both devices, so that a bad
call fails the same way, with the same message, on CPU and GPU.

Messages name the kernel, what it was given and what it expected. These are
the friendly checks; the entry points (csrc/host, and the launch arguments on
the GPU) check the integers again.
"""
import numpy as np

FLOAT_DTYPES = ("float32", "float64")
# Compared by dtype object: numpy computes dtype.name in Python, several
# microseconds a time, and these checks run on every launch of every kernel.
_FLOAT = frozenset(np.dtype(name) for name in FLOAT_DTYPES)
_INT32 = np.dtype(np.int32)
# The .cuh math indexes within a row or plane with int.
MAX_EXTENT = 2**31 - 1


def _kind(a):
    kind = type(a)
    return f"{kind.__module__}.{kind.__qualname__}"


def _describe(a):
    if hasattr(a, "dtype") and hasattr(a, "shape"):
        return f"{a.dtype} array of shape {tuple(a.shape)}"
    return _kind(a)


def float_arrays(op, xp, dims, **arrays):
    """Validate same-shape, same-dtype float arrays of array module `xp` and
    return them C-contiguous, in keyword order.

    `dims` names the axes, e.g. ("rows", "cols"); it fixes ndim and words the
    messages. The first keyword is the reference for shape and dtype.
    """
    checked = []
    ref_name = ref = None
    for name, a in arrays.items():
        if not isinstance(a, xp.ndarray):
            raise TypeError(f"{op}: {name} must be a {xp.__name__}.ndarray (all inputs on one "
                            f"device); got {_kind(a)}")
        if a.dtype not in _FLOAT:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected float32 or float64")
        if a.ndim != len(dims):
            raise ValueError(f"{op}: {name} must be {len(dims)}-D ({', '.join(dims)}); "
                             f"got shape {tuple(a.shape)}")
        if ref is None:
            ref_name, ref = name, a
            if max(a.shape, default=0) > MAX_EXTENT:
                raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; every extent must "
                                 f"be at most {MAX_EXTENT}")
        elif a.shape != ref.shape:
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; expected the shape of "
                             f"{ref_name}, {tuple(ref.shape)}")
        elif a.dtype != ref.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected the dtype of "
                            f"{ref_name}, {ref.dtype}")
        checked.append(xp.ascontiguousarray(a))
    return checked


def int32_array(op, xp, name, a, shape, described):
    """`a` as a C-contiguous int32 array of `xp` with `shape` (None: any extent)."""
    if not isinstance(a, xp.ndarray) or a.dtype != _INT32:
        raise TypeError(f"{op}: {name} must be an int32 {xp.__name__}.ndarray on the device "
                        f"of the other inputs; got {_describe(a)}")
    if a.ndim != len(shape) or any(want is not None and got != want
                                   for got, want in zip(a.shape, shape)):
        raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; expected {described}")
    return xp.ascontiguousarray(a)


def require_shape(op, name, array, expected, why):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{op}: {name} has shape {tuple(array.shape)}; expected "
                         f"{tuple(expected)} {why}")


def step_arrays(op, xp, rows, hidden, arrays, lengths=None):
    """Validate the in-place arrays of a recurrent step: `arrays` is a sequence
    of (name, array, width in units of H), the first being the dtype reference;
    width 0 means a (H,) vector. Strict (exact dtype, C order, exact shape):
    the step writes into them."""
    ref_dtype = None
    for name, a, width in arrays:
        if not isinstance(a, xp.ndarray):
            raise TypeError(f"{op}: {name} must be a {xp.__name__}.ndarray (all inputs on one "
                            f"device); got {_kind(a)}")
        if ref_dtype is None:
            ref_dtype = a.dtype
            if ref_dtype not in _FLOAT:
                raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected float32 or float64")
        elif a.dtype != ref_dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected {ref_dtype} like "
                            f"{arrays[0][0]}")
        expected = (hidden,) if width == 0 else (rows, width * hidden)
        if width * hidden > MAX_EXTENT:  # rnn.cuh indexes a row's gate columns with int
            raise ValueError(f"{op}: {name} would have {width} x {hidden} columns; at most "
                             f"{MAX_EXTENT} are supported")
        if tuple(a.shape) != expected:
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; expected {expected}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous (the kernel writes or reads "
                             f"it in place)")
    if lengths is not None:
        if not isinstance(lengths, xp.ndarray) or lengths.dtype != _INT32 or \
                tuple(lengths.shape) != (rows,) or not lengths.flags.c_contiguous:
            raise ValueError(f"{op}: lengths must be a contiguous int32 {xp.__name__}.ndarray "
                             f"of shape ({rows},); got {_describe(lengths)}")


def rows_hidden(op, h_like):
    """(N, H) from a state-shaped array, with a clear error when it is not 2-D."""
    if getattr(h_like, "ndim", None) != 2:
        raise ValueError(f"{op}: the state must be 2-D (N, H); got {_describe(h_like)}")
    return int(h_like.shape[0]), int(h_like.shape[1])
