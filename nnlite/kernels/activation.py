"""The activation family (csrc/nnlite/activation.cuh): element-wise
activations and their gradients, any shape, one byte per element saved for
backward.

Entry points, the same in both builds (csrc/cuda/activation.cu, csrc/host/activation.cpp):
    relu_forward(x, y, mask, count)       y = x * (x > 0), mask = (x > 0) as uint8
    relu_backward(gy, mask, gx, count)    gx = gy * mask
A grid-stride loop over the elements on the GPU; blocks of elements across
OpenMP workers on the host. The products reproduce NumPy's `x * (x > 0)` bit
for bit (a negative x gives -0.0, a NaN stays NaN).
"""
import numpy as np

from nnlite.kernels import checks
from nnlite.kernels.launch import Grid, array_module, launch

_UINT8 = np.dtype(np.uint8)
_BOOL = np.dtype(np.bool_)


def _float_array(op, xp, name, a):
    if not isinstance(a, xp.ndarray):
        raise TypeError(f"{op}: {name} must be a {xp.__name__}.ndarray (all inputs on one "
                        f"device); got {checks._kind(a)}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected float32 or float64")
    # ascontiguousarray turns a 0-d array into shape (1,): the reshape undoes it.
    return xp.ascontiguousarray(a).reshape(a.shape)


def relu_forward(x):
    """(y, mask): y = x * (x > 0) in x's dtype and shape, mask = (x > 0) as
    uint8 (what relu_backward needs)."""
    op = "relu_forward"
    xp = array_module(x)
    x = _float_array(op, xp, "x", x)
    y = xp.empty_like(x)
    mask = xp.empty(x.shape, dtype=_UINT8)
    if x.size:
        launch("relu_forward", x.dtype, Grid(x.size), (x, y, mask, x.size))
    return y, mask


def relu_backward(gy, mask):
    """gx = gy * mask: the gradient of relu_forward's input, from the gradient
    of its output and its mask (uint8, or bool viewed as uint8)."""
    op = "relu_backward"
    xp = array_module(gy)
    gy = _float_array(op, xp, "gy", gy)
    if not isinstance(mask, xp.ndarray) or mask.dtype not in (_UINT8, _BOOL):
        raise TypeError(f"{op}: mask must be a uint8 or bool {xp.__name__}.ndarray on the "
                        f"device of gy; got {checks._describe(mask)}")
    if tuple(mask.shape) != tuple(gy.shape):
        raise ValueError(f"{op}: mask has shape {tuple(mask.shape)}; expected the shape of gy, "
                         f"{tuple(gy.shape)}")
    mask = xp.ascontiguousarray(mask).reshape(gy.shape).view(_UINT8)
    gx = xp.empty_like(gy)
    if gy.size:
        launch("relu_backward", gy.dtype, Grid(gy.size), (gy, mask, gx, gy.size))
    return gx
