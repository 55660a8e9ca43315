"""GPU backend of the conv and pool families (csrc/cuda/conv.cu, pool.cu),
re-exported by nnlite.kernels.cuda with the signatures of host_conv / host_pool.

Every kernel is a grid-stride loop, one thread per output element (or per
input pixel for the gathers); launch_1d sizes the grid.
"""
import numpy as np

from nnlite.kernels import _checks
from nnlite.kernels import _window_checks as checks

THREADS = 256
# The loops stride over the grid, so a cap only bounds the launch, not the work.
MAX_BLOCKS = 65535


def _cupy():
    from nnlite.kernels import cuda
    return cuda._cupy()


def launch_1d(family, op, dtype, total, args):
    from nnlite.kernels import cuda
    blocks = max(1, min(MAX_BLOCKS, -(-total // THREADS)))
    kernel = cuda._function(family, f"{op}_{_checks.dtype_suffix(dtype)}")
    kernel((blocks,), (THREADS,), args)


def _i32(values):
    return tuple(np.int32(v) for v in values)


def _conv_args(x_shape, g):
    n, c, height, width = x_shape
    return _i32((n, c, height, width) + checks.conv_params(g))


def im2col(x, kernel_size, stride=1, padding=(0, 0, 0, 0), dilation=1):
    """See nnlite.kernels.host_conv.im2col."""
    cupy = _cupy()
    (x,) = checks.float_nchw("im2col", cupy, x=x)
    g = checks.conv_geometry("im2col", x.shape, kernel_size, stride, padding, dilation)
    cols = cupy.empty(checks.columns_shape(x.shape, g), dtype=x.dtype)
    if cols.size:
        launch_1d("conv", "im2col", x.dtype, cols.size, (x, cols) + _conv_args(x.shape, g))
    return cols


def col2im(cols, x_shape, kernel_size, stride=1, padding=(0, 0, 0, 0), dilation=1):
    """See nnlite.kernels.host_conv.col2im."""
    cupy = _cupy()
    cols = checks.float_columns("col2im", cupy, cols)
    g = checks.conv_geometry("col2im", x_shape, kernel_size, stride, padding, dilation)
    checks.require_shape("col2im", "cols", cols, checks.columns_shape(x_shape, g),
                         f"for x_shape {tuple(x_shape)}")
    x = (cupy.empty if cols.size else cupy.zeros)(tuple(x_shape), dtype=cols.dtype)
    if x.size and cols.size:
        launch_1d("conv", "col2im", cols.dtype, x.size, (cols, x) + _conv_args(x_shape, g))
    return x


def _pool_args(x_shape, g):
    n, c, height, width = x_shape
    return _i32((n * c, height, width) + checks.pool_params(g) + (g.out_h, g.out_w))


def maxpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """See nnlite.kernels.host_pool.maxpool_forward."""
    cupy = _cupy()
    (x,) = checks.float_nchw("maxpool_forward", cupy, x=x)
    g = checks.pool_geometry("maxpool_forward", x.shape, kernel_size, stride, padding, ceil_mode)
    y = cupy.empty(x.shape[:2] + (g.out_h, g.out_w), dtype=x.dtype)
    argmax = cupy.empty(y.shape, dtype=np.int32)
    if y.size:
        launch_1d("pool", "maxpool_forward", x.dtype, y.size,
                  (x, y, argmax) + _pool_args(x.shape, g))
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kernel_size, stride=None, padding=0,
                     ceil_mode=False):
    """See nnlite.kernels.host_pool.maxpool_backward."""
    cupy = _cupy()
    (gy,) = checks.float_nchw("maxpool_backward", cupy, gy=gy)
    g = checks.pool_geometry("maxpool_backward", x_shape, kernel_size, stride, padding,
                             ceil_mode)
    checks.require_shape("maxpool_backward", "gy", gy,
                         tuple(x_shape[:2]) + (g.out_h, g.out_w), f"for x_shape {tuple(x_shape)}")
    argmax = checks.int32_argmax("maxpool_backward", cupy, argmax, gy.shape)
    # The gathers write every pixel; zeros only for an empty gy.
    gx = (cupy.empty if gy.size else cupy.zeros)(tuple(x_shape), dtype=gy.dtype)
    if gx.size and gy.size:
        launch_1d("pool", "maxpool_backward", gy.dtype, gx.size,
                  (gy, argmax, gx) + _pool_args(x_shape, g))
    return gx


def avgpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True):
    """See nnlite.kernels.host_pool.avgpool_forward."""
    cupy = _cupy()
    (x,) = checks.float_nchw("avgpool_forward", cupy, x=x)
    g = checks.pool_geometry("avgpool_forward", x.shape, kernel_size, stride, padding, ceil_mode)
    y = cupy.empty(x.shape[:2] + (g.out_h, g.out_w), dtype=x.dtype)
    if y.size:
        launch_1d("pool", "avgpool_forward", x.dtype, y.size,
                  (x, y) + _pool_args(x.shape, g) + (np.int32(bool(count_include_pad)),))
    return y


def avgpool_backward(gy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
    """See nnlite.kernels.host_pool.avgpool_backward."""
    cupy = _cupy()
    (gy,) = checks.float_nchw("avgpool_backward", cupy, gy=gy)
    g = checks.pool_geometry("avgpool_backward", x_shape, kernel_size, stride, padding,
                             ceil_mode)
    checks.require_shape("avgpool_backward", "gy", gy,
                         tuple(x_shape[:2]) + (g.out_h, g.out_w), f"for x_shape {tuple(x_shape)}")
    # The gathers write every pixel; zeros only for an empty gy.
    gx = (cupy.empty if gy.size else cupy.zeros)(tuple(x_shape), dtype=gy.dtype)
    if gx.size and gy.size:
        launch_1d("pool", "avgpool_backward", gy.dtype, gx.size,
                  (gy, gx) + _pool_args(x_shape, g) + (np.int32(bool(count_include_pad)),))
    return gx
