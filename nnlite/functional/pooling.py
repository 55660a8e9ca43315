"""F.max_pool2d and F.avg_pool2d through the pool kernels, PyTorch's semantics:
ceil_mode never starts a window in the trailing padding, padding is at most
half the kernel, max pooling pads with -inf and average pooling's divisor
follows count_include_pad (see nnlite/kernels/shapes.py and csrc/nnlite/pool.cuh).

Max pooling ties go to the first maximum in row-major window order; the
backward gathers per input pixel, so it is deterministic with overlapping windows.
"""
import numpy as np

from nnlite.kernels import pool as pool_kernels
from nnlite.kernels.shapes import PoolGeometry, int_pair
from nnlite.tensor import Function


def pool_geometry(op, x, kernel_size, stride, padding, ceil_mode):
    """The PoolGeometry of x (N, C, H, W), with PyTorch's argument rules and
    messages that name the op the user called."""
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {x.dtype}")
    g = PoolGeometry.of(x.shape[2:], kernel_size, stride, padding, ceil_mode, op=op)
    if min(g.padding) < 0 or g.padding[0] > g.kernel[0] // 2 or g.padding[1] > g.kernel[1] // 2:
        raise ValueError(f"{op}: padding {g.padding} must be non-negative and at most half the "
                         f"kernel size {g.kernel}")
    return g


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode):
        g = pool_geometry("max_pool2d", x, kernel_size, stride, padding, ceil_mode)
        y, argmax = pool_kernels.maxpool_forward(x, g)
        ctx.save_for_backward(argmax)
        ctx.meta = g
        return y

    @staticmethod
    def backward(ctx, gy):
        argmax, = ctx.saved_tensors
        return pool_kernels.maxpool_backward(gy, argmax, ctx.meta)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        g = pool_geometry("avg_pool2d", x, kernel_size, stride, padding, ceil_mode)
        ctx.meta = (g, count_include_pad)
        return pool_kernels.avgpool_forward(x, g, count_include_pad)

    @staticmethod
    def backward(ctx, gy):
        g, count_include_pad = ctx.meta
        return pool_kernels.avgpool_backward(gy, g, count_include_pad)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over kh x kw windows of x (N, C, H, W); stride defaults to the kernel size.
    PyTorch's signature; dilation other than 1 and return_indices are not supported."""
    if int_pair("max_pool2d", "dilation", dilation) != (1, 1):
        raise ValueError(f"max_pool2d: dilation {dilation!r} is not supported; only 1")
    if return_indices:
        raise ValueError("max_pool2d: return_indices=True is not supported")
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=bool(ceil_mode))


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kh x kw windows of x (N, C, H, W); stride defaults to the kernel size.
    The divisor counts padded positions when count_include_pad (windows clipped to
    the padded input in ceil mode), else only the input positions.
    divisor_override is not supported."""
    if divisor_override is not None:
        raise ValueError("avg_pool2d: divisor_override is not supported")
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=bool(ceil_mode),
                           count_include_pad=bool(count_include_pad))
