"""The conv family (csrc/nnlite/conv.cuh): im2col and its adjoint col2im over a
chunk of images, for the GEMM convolution of nnlite.functional.conv, over a
ConvGeometry built by the caller (nnlite.kernels.shapes).

Entry points, the same in both builds (csrc/cuda/conv.cu, csrc/host/conv.cpp):
    im2col(x, cols, images, channels, <geometry>)
    col2im(cols, x, images, channels, <geometry>)
with <geometry> = ConvGeometry.entry_args(); one GPU thread per column entry
(im2col) or per input pixel (col2im, a gather: no atomics).
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Grid, array_module, launch

NCHW = ("N", "C", "H", "W")
COLUMNS = ("C*kh*kw", "N*out_h*out_w")


def columns_shape(x_shape, g):
    """(C*kh*kw, N*out_h*out_w): Caffe's layout, the images of a chunk side by side."""
    n, c = x_shape[0], x_shape[1]
    return (c * g.kernel[0] * g.kernel[1], n * g.out_h * g.out_w)


def im2col(x, g, out=None):
    """Columns of x (N, C, H, W): row (c, i, j), column (n, oh, ow) holds
    x[n, c, oh*sh - top + i*dh, ow*sw - left + j*dw], 0 in the padding.
    `out`: a C-contiguous, writable array of that shape and x's dtype to fill
    (a buffer reused from call to call) instead of a new one."""
    xp = array_module(x)
    (x,) = checks.float_arrays("im2col", xp, NCHW, x=x)
    checks.require_shape("im2col", "x", x, x.shape[:2] + (g.height, g.width), f"for {g}")
    if out is None:
        cols = xp.empty(columns_shape(x.shape, g), dtype=x.dtype)
    else:
        cols = out
        if not isinstance(cols, xp.ndarray) or cols.dtype != x.dtype \
                or not cols.flags.c_contiguous or not getattr(cols.flags, "writeable", True):
            raise TypeError(f"im2col: out must be a writable C-contiguous {xp.__name__}.ndarray "
                            f"of dtype {x.dtype}; got {checks._describe(cols)}")
        checks.require_shape("im2col", "out", cols, columns_shape(x.shape, g),
                             f"for x of shape {tuple(x.shape)} and {g}")
    if cols.size:
        launch("im2col", x.dtype, Grid(cols.size), (x, cols) + x.shape[:2] + g.entry_args())
    return cols


def col2im(cols, x_shape, g):
    """Adjoint of im2col: an array of x_shape (N, C, H, W) whose every pixel is
    the sum of the entries of cols that im2col would have read from it."""
    xp = array_module(cols)
    (cols,) = checks.float_arrays("col2im", xp, COLUMNS, cols=cols)
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or x_shape[2:] != (g.height, g.width):
        raise ValueError(f"col2im: x_shape {x_shape} must be (N, C, {g.height}, {g.width}) "
                         f"for {g}")
    checks.require_shape("col2im", "cols", cols, columns_shape(x_shape, g),
                         f"for x_shape {x_shape}")
    x = (xp.empty if cols.size else xp.zeros)(x_shape, dtype=cols.dtype)
    if x.size and cols.size:
        launch("col2im", cols.dtype, Grid(x.size), (cols, x) + x_shape[:2] + g.entry_args())
    return x
