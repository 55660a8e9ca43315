"""Argument checks and geometry of the conv (im2col / col2im) and pool kernels,
shared by both backends so that a bad call fails the same way on CPU and GPU.

Sizes always come from nnlite.kernels.shapes.output_size.
"""
from collections import namedtuple

from nnlite.kernels import _checks
from nnlite.kernels.shapes import output_size

NCHW = ("N", "C", "H", "W")
COLUMNS = ("C*kh*kw", "N*out_h*out_w")

ConvGeometry = namedtuple("ConvGeometry", "kernel stride padding dilation out_h out_w")
PoolGeometry = namedtuple("PoolGeometry", "kernel stride padding out_h out_w")


def int_pair(op, name, value):
    """An int or a pair of ints -> a tuple of two Python ints (values unchecked)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(isinstance(v, bool) or not hasattr(v, "__index__") for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v.__index__()) for v in pair)


def _four_ints(op, value):
    try:
        padding = tuple(int(v.__index__()) for v in value)
    except (TypeError, AttributeError):
        padding = ()
    if len(padding) != 4:
        raise ValueError(f"{op}: padding must be (top, bottom, left, right) ints, got {value!r}")
    return padding


def _shape4(op, name, shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"{op}: {name} must be 4-D (N, C, H, W), got {shape}")
    return shape


def conv_geometry(op, x_shape, kernel_size, stride, padding, dilation):
    """Validated geometry of im2col over an input of shape (N, C, H, W);
    padding is (top, bottom, left, right)."""
    _, _, height, width = _shape4(op, "x", x_shape)
    kernel = int_pair(op, "kernel_size", kernel_size)
    stride = int_pair(op, "stride", stride)
    dilation = int_pair(op, "dilation", dilation)
    top, bottom, left, right = _four_ints(op, padding)
    out_h = output_size(height, kernel[0], stride[0], top, bottom, dilation[0], op=op)
    out_w = output_size(width, kernel[1], stride[1], left, right, dilation[1], op=op)
    return ConvGeometry(kernel, stride, (top, bottom, left, right), dilation, out_h, out_w)


def conv_params(g):
    """The integer tuple the host entry points take (see csrc/host/conv.cpp)."""
    return (g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], g.padding[0], g.padding[2],
            g.dilation[0], g.dilation[1], g.out_h, g.out_w)


def columns_shape(x_shape, g):
    """(C*kh*kw, N*out_h*out_w): Caffe's layout, the images of a chunk side by side."""
    n, c = x_shape[0], x_shape[1]
    return (c * g.kernel[0] * g.kernel[1], n * g.out_h * g.out_w)


def pool_geometry(op, x_shape, kernel_size, stride, padding, ceil_mode):
    """Validated geometry of a pool over an input of shape (N, C, H, W);
    stride None means the kernel size, padding is (pad_h, pad_w) on both sides."""
    _, _, height, width = _shape4(op, "x", x_shape)
    kernel = int_pair(op, "kernel_size", kernel_size)
    stride = kernel if stride is None else int_pair(op, "stride", stride)
    padding = int_pair(op, "padding", padding)
    out_h = output_size(height, kernel[0], stride[0], padding[0], padding[0],
                        ceil_mode=bool(ceil_mode), op=op)
    out_w = output_size(width, kernel[1], stride[1], padding[1], padding[1],
                        ceil_mode=bool(ceil_mode), op=op)
    return PoolGeometry(kernel, stride, padding, out_h, out_w)


def pool_params(g):
    """The integer tuple the host entry points take (see csrc/host/pool.cpp)."""
    return g.kernel + g.stride + g.padding


def require_shape(op, name, array, expected, why):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{op}: {name} has shape {tuple(array.shape)}; expected "
                         f"{tuple(expected)} {why}")


def float_nchw(op, xp, **arrays):
    return _checks.float_arrays(op, xp, NCHW, **arrays)


def float_columns(op, xp, cols):
    return _checks.float_arrays(op, xp, COLUMNS, cols=cols)[0]


def int32_argmax(op, xp, argmax, expected_shape):
    if not isinstance(argmax, xp.ndarray) or argmax.dtype.name != "int32":
        raise TypeError(f"{op}: argmax must be an int32 {xp.__name__}.ndarray as "
                        f"maxpool_forward returns it; got {type(argmax).__name__} of dtype "
                        f"{getattr(argmax, 'dtype', None)}")
    require_shape(op, "argmax", argmax, expected_shape, "(the shape of gy)")
    return xp.ascontiguousarray(argmax)
