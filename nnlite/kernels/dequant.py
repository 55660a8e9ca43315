"""The dequant family (csrc/nnlite/dequant.cuh): stored weights expanded into
the compute dtype, chunk by chunk, right before a GEMM (nnlite/nn/compressed.py).

Entry points, the same in both builds (csrc/cuda/dequant.cu, csrc/host/dequant.cpp):
    dequant_int8(q, scale, w, rows, cols)      w = q * scale[row]; one GPU block per row
    dequant_binary16(bits, w, count)           w = the IEEE binary16 value of bits (exact)

The output `w` is usually a view of a caller's bounded workspace, so it is
written in place and must already have the right dtype, shape and layout.
float32 is the compute type; float64 exists for gradient checks.
"""
import numpy as np

from nnlite.kernels import checks
from nnlite.kernels.launch import Blocks, Grid, array_module, launch


def _check_output(op, xp, w, shape, dtype):
    if w is None:
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if dtype.name not in checks.FLOAT_DTYPES:
            raise TypeError(f"{op}: dtype must be float32 or float64, got {dtype}")
        return xp.empty(shape, dtype=dtype)
    if not isinstance(w, xp.ndarray):
        raise TypeError(f"{op}: w must be a {xp.__name__}.ndarray on the device of the stored "
                        f"weights; got {checks._describe(w)}")
    if w.dtype.name not in checks.FLOAT_DTYPES:
        raise TypeError(f"{op}: w has dtype {w.dtype}; expected float32 or float64")
    if dtype is not None and np.dtype(dtype) != w.dtype:
        raise TypeError(f"{op}: w has dtype {w.dtype} but dtype={np.dtype(dtype)} was asked for")
    if tuple(w.shape) != tuple(shape):
        raise ValueError(f"{op}: w has shape {tuple(w.shape)}; expected {tuple(shape)}, the "
                         f"shape of the stored weights")
    # CuPy's flags have no `writeable`: a device array is always writable.
    if not w.flags.c_contiguous or not getattr(w.flags, "writeable", True):
        raise ValueError(f"{op}: w must be a writable C-contiguous array (it is written in "
                         f"place)")
    return w


def dequant_int8(q, scale, w=None, dtype=None):
    """w (rows, cols) = q (rows, cols) int8 times scale (rows,), the per-row
    (per output channel) scale, in w's dtype (default float32). `w` may be a
    preallocated workspace view; scale is cast to w's dtype (it is small)."""
    op = "dequant_int8"
    xp = array_module(q)
    if not isinstance(q, xp.ndarray) or q.dtype != np.int8 or q.ndim != 2:
        raise TypeError(f"{op}: q must be a 2-D int8 {xp.__name__}.ndarray (rows, cols); got "
                        f"{checks._describe(q)}")
    rows, cols = q.shape
    if max(rows, cols) > checks.MAX_EXTENT:
        raise ValueError(f"{op}: q has shape {tuple(q.shape)}; rows and cols must be at most "
                         f"{checks.MAX_EXTENT}")
    w = _check_output(op, xp, w, q.shape, dtype)
    if not isinstance(scale, xp.ndarray) or scale.dtype.kind != "f" or \
            tuple(scale.shape) != (rows,):
        raise ValueError(f"{op}: scale must be a floating-point {xp.__name__}.ndarray of shape "
                         f"({rows},), one per row of q; got {checks._describe(scale)}")
    q = xp.ascontiguousarray(q)
    scale = xp.ascontiguousarray(scale.astype(w.dtype, copy=False))
    if q.size:
        launch("dequant_int8", w.dtype, Blocks(rows, cols, 0), (q, scale, w, rows, cols))
    return w


def dequant_binary16(bits, w=None, dtype=None):
    """w = the values of `bits`, a float16 array or its uint16 bit patterns,
    in w's dtype (default float32), same shape; exact (every float16 value is
    a float32 value)."""
    op = "dequant_binary16"
    xp = array_module(bits)
    if not isinstance(bits, xp.ndarray) or bits.dtype not in (np.float16, np.uint16):
        raise TypeError(f"{op}: bits must be a float16 or uint16 {xp.__name__}.ndarray; got "
                        f"{checks._describe(bits)}")
    w = _check_output(op, xp, w, bits.shape, dtype)
    bits = xp.ascontiguousarray(bits).view(np.uint16)
    if bits.size:
        launch("dequant_binary16", w.dtype, Grid(bits.size), (bits, w, bits.size))
    return w
