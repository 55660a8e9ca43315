"""CPU backend of the conv family (csrc/host/conv.cpp), re-exported by
nnlite.kernels.host: im2col and its adjoint col2im over a chunk of images."""
import numpy as np

from nnlite.kernels import _window_checks as checks


def _entry(op, dtype):
    # Imported here: nnlite.kernels.host re-exports this module's functions.
    from nnlite.kernels import host
    return host._entry(op, dtype)


def im2col(x, kernel_size, stride=1, padding=(0, 0, 0, 0), dilation=1):
    """Columns of x (N, C, H, W): (C*kh*kw, N*out_h*out_w); padding is
    (top, bottom, left, right). Row (c, i, j), column (n, oh, ow) holds
    x[n, c, oh*sh - top + i*dh, ow*sw - left + j*dw], 0 in the padding."""
    (x,) = checks.float_nchw("im2col", np, x=x)
    g = checks.conv_geometry("im2col", x.shape, kernel_size, stride, padding, dilation)
    cols = np.empty(checks.columns_shape(x.shape, g), dtype=x.dtype)
    if cols.size:
        _entry("im2col", x.dtype)(x, cols, checks.conv_params(g))
    return cols


def col2im(cols, x_shape, kernel_size, stride=1, padding=(0, 0, 0, 0), dilation=1):
    """Adjoint of im2col: an array of x_shape whose every pixel is the sum of
    the entries of cols that im2col would have read from it."""
    cols = checks.float_columns("col2im", np, cols)
    g = checks.conv_geometry("col2im", x_shape, kernel_size, stride, padding, dilation)
    checks.require_shape("col2im", "cols", cols, checks.columns_shape(x_shape, g),
                         f"for x_shape {tuple(x_shape)}")
    x = np.empty(tuple(x_shape), dtype=cols.dtype)
    if x.size:
        if cols.size:
            _entry("col2im", cols.dtype)(cols, x, checks.conv_params(g))
        else:
            x.fill(0)
    return x
