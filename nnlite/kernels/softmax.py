"""The softmax family (csrc/nnlite/softmax.cuh): row-wise softmax or
log-softmax of a (rows, cols) array and its gradient.

Entry points, the same in both builds (csrc/cuda/softmax.cu, csrc/host/softmax.cpp):
    softmax_forward(x, y, rows, cols, log_softmax)
    softmax_backward(y, gy, gx, rows, cols, log_softmax)
One GPU block per row; its threads share the row's columns and a block
reduction joins them.
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Blocks, array_module, launch

ROWS_COLS = ("rows", "cols")


def softmax_forward(x, log=False):
    """Row-wise softmax (log=False) or log-softmax (log=True) of x (rows, cols)."""
    xp = array_module(x)
    (x,) = checks.float_arrays("softmax_forward", xp, ROWS_COLS, x=x)
    y = xp.empty_like(x)
    if x.size:
        rows, cols = x.shape
        launch("softmax_forward", x.dtype, Blocks(rows, cols, 1),
               (x, y, rows, cols, int(bool(log))))
    return y


def softmax_backward(y, gy, log=False):
    """Gradient w.r.t. the softmax input, from the forward output y and its gradient gy."""
    xp = array_module(y)
    y, gy = checks.float_arrays("softmax_backward", xp, ROWS_COLS, y=y, gy=gy)
    gx = xp.empty_like(y)
    if y.size:
        rows, cols = y.shape
        launch("softmax_backward", y.dtype, Blocks(rows, cols, 1),
               (y, gy, gx, rows, cols, int(bool(log))))
    return gx
