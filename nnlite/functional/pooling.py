"""F.max_pool2d and F.avg_pool2d through the pool kernels, PyTorch's semantics:
ceil_mode never starts a window in the trailing padding, padding is at most
half the kernel, max pooling pads with -inf and average pooling's divisor
follows count_include_pad (see nnlite/kernels/shapes.py and csrc/nnlite/pool.cuh).

Max pooling ties go to the first maximum in row-major window order; the
backward gathers per input pixel, so it is deterministic with overlapping windows.
"""
import numpy as np

from nnlite import kernels
from nnlite.kernels import _window_checks
from nnlite.tensor import Function


def _pool_args(op, x, kernel_size, stride, padding, ceil_mode):
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {x.dtype}")
    kernel = _window_checks.int_pair(op, "kernel_size", kernel_size)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel  # PyTorch's default, also spelled stride=[]
    else:
        stride = _window_checks.int_pair(op, "stride", stride)
    padding = _window_checks.int_pair(op, "padding", padding)
    for name, pair in (("kernel_size", kernel), ("stride", stride)):
        if min(pair) <= 0:
            raise ValueError(f"{op}: {name} must be positive, got {pair}")
    if min(padding) < 0 or padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be non-negative and at most half the "
                         f"kernel size {kernel}")
    # Sizes checked here so the message names the op the user called.
    _window_checks.pool_geometry(op, x.shape, kernel, stride, padding, ceil_mode)
    return dict(kernel_size=kernel, stride=stride, padding=padding)


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode):
        window = _pool_args("max_pool2d", x, kernel_size, stride, padding, ceil_mode)
        y, argmax = kernels.for_array(x).maxpool_forward(x, ceil_mode=ceil_mode, **window)
        ctx.save_for_backward(argmax)
        ctx.meta = (x.shape, window, ceil_mode)
        return y

    @staticmethod
    def backward(ctx, gy):
        argmax, = ctx.saved_tensors
        x_shape, window, ceil_mode = ctx.meta
        return kernels.for_array(gy).maxpool_backward(gy, argmax, x_shape, ceil_mode=ceil_mode,
                                                      **window)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        window = _pool_args("avg_pool2d", x, kernel_size, stride, padding, ceil_mode)
        ctx.meta = (x.shape, window, ceil_mode, count_include_pad)
        return kernels.for_array(x).avgpool_forward(x, ceil_mode=ceil_mode,
                                                    count_include_pad=count_include_pad,
                                                    **window)

    @staticmethod
    def backward(ctx, gy):
        x_shape, window, ceil_mode, count_include_pad = ctx.meta
        return kernels.for_array(gy).avgpool_backward(gy, x_shape, ceil_mode=ceil_mode,
                                                      count_include_pad=count_include_pad,
                                                      **window)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over kh x kw windows of x (N, C, H, W); stride defaults to the kernel size.
    PyTorch's signature; dilation other than 1 and return_indices are not supported."""
    if _window_checks.int_pair("max_pool2d", "dilation", dilation) != (1, 1):
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
