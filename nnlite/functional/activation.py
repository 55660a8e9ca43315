"""Activations, softmax / log-softmax (through the softmax kernel) and dropout."""
import numpy as np

from nnlite.kernels import activation as activation_kernels
from nnlite.kernels import softmax as softmax_kernels
from nnlite import random as nl_random
from nnlite.device import xp_of
from nnlite.functional.arithmetic import clip
from nnlite.tensor import Function

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ReLU(Function):
    """y = x * (x > 0) through the activation kernels (one pass, OpenMP on the
    host), keeping one byte per element, the mask, for backward. Other dtypes
    than float32 / float64 take the same formula in the array library."""

    @staticmethod
    def forward(ctx, x):
        if x.dtype in _KERNEL_DTYPES:
            y, mask = activation_kernels.relu_forward(x)
        else:
            mask = x > 0
            y = x * mask
        ctx.save_for_backward(mask)
        return y

    @staticmethod
    def backward(ctx, gy):
        mask, = ctx.saved_tensors
        if gy.dtype in _KERNEL_DTYPES:
            return activation_kernels.relu_backward(gy, mask)
        return gy * mask.astype(bool, copy=False)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        # 0.5 * (1 + tanh(x / 2)) never overflows, unlike 1 / (1 + exp(-x)).
        xp = xp_of(x)
        y = (xp.tanh(x * 0.5) + 1) * 0.5
        ctx.save_for_backward(y)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return gy * y * (1 - y)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return gy * (1 - y * y)


def _rows_along(x, dim):
    """View `x` as a C-contiguous (rows, size of dim) matrix, as the softmax
    kernel wants, and say how to undo it."""
    xp = xp_of(x)
    moved = xp.moveaxis(x, dim, -1)
    rows = xp.ascontiguousarray(moved).reshape(-1, x.shape[dim])
    return rows, moved.shape


def _from_rows(rows, moved_shape, dim):
    return xp_of(rows).moveaxis(rows.reshape(moved_shape), -1, dim)


def _check_softmax_input(op, x, dim):
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {x.dtype}")
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{op}: dim {dim} is out of range for a tensor of shape "
                         f"{tuple(x.shape)}")


class _SoftmaxBase(Function):
    log = False

    @classmethod
    def forward(cls, ctx, x, dim):
        _check_softmax_input("log_softmax" if cls.log else "softmax", x, dim)
        rows, moved_shape = _rows_along(x, dim)
        y_rows = softmax_kernels.softmax_forward(rows, log=cls.log)
        ctx.save_for_backward(y_rows)
        ctx.meta = (moved_shape, dim)
        return _from_rows(y_rows, moved_shape, dim)

    @classmethod
    def backward(cls, ctx, gy):
        y_rows, = ctx.saved_tensors
        moved_shape, dim = ctx.meta
        gy_rows, _ = _rows_along(gy, dim)
        gx_rows = softmax_kernels.softmax_backward(y_rows, gy_rows, log=cls.log)
        return _from_rows(gx_rows, moved_shape, dim)


class Softmax(_SoftmaxBase):
    log = False


class LogSoftmax(_SoftmaxBase):
    log = True


class Dropout(Function):
    """Inverted dropout: kept units are scaled by 1 / (1 - p) in training so
    evaluation needs no rescaling."""

    @staticmethod
    def forward(ctx, x, p):
        xp = xp_of(x)
        keep = nl_random.uniform(xp, x.shape, dtype=x.dtype) >= p
        scale = keep * x.dtype.type(1.0 / (1.0 - p))
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, gy):
        scale, = ctx.saved_tensors
        return gy * scale


def relu(x):
    return ReLU.apply(x)


def relu6(x):
    return clip(x, 0.0, 6.0)


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def softmax(x, dim=-1):
    return Softmax.apply(x, dim=dim)


def log_softmax(x, dim=-1):
    return LogSoftmax.apply(x, dim=dim)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p in training; identity otherwise."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p)
