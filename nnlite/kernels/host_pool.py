"""CPU backend of the pool family (csrc/host/pool.cpp), re-exported by
nnlite.kernels.host: max pooling with a saved argmax and average pooling,
forward and gathered backward."""
import numpy as np

from nnlite.kernels import _window_checks as checks


def _entry(op, dtype):
    # Imported here: nnlite.kernels.host re-exports this module's functions.
    from nnlite.kernels import host
    return host._entry(op, dtype)


def maxpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """(y, argmax): the window maxima of x (N, C, H, W) and, as int32, the
    in-plane index h * W + w of each (first maximum in row-major order wins)."""
    (x,) = checks.float_nchw("maxpool_forward", np, x=x)
    g = checks.pool_geometry("maxpool_forward", x.shape, kernel_size, stride, padding, ceil_mode)
    y = np.empty(x.shape[:2] + (g.out_h, g.out_w), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int32)
    if y.size:
        _entry("maxpool_forward", x.dtype)(x, y, argmax, checks.pool_params(g))
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kernel_size, stride=None, padding=0,
                     ceil_mode=False):
    """Gradient w.r.t. x of shape x_shape: each pixel sums gy over the windows
    whose argmax it is."""
    (gy,) = checks.float_nchw("maxpool_backward", np, gy=gy)
    g = checks.pool_geometry("maxpool_backward", x_shape, kernel_size, stride, padding,
                             ceil_mode)
    checks.require_shape("maxpool_backward", "gy", gy,
                         tuple(x_shape[:2]) + (g.out_h, g.out_w), f"for x_shape {tuple(x_shape)}")
    argmax = checks.int32_argmax("maxpool_backward", np, argmax, gy.shape)
    # The gathers write every pixel; zeros only for an empty gy.
    gx = (np.empty if gy.size else np.zeros)(tuple(x_shape), dtype=gy.dtype)
    if gx.size and gy.size:
        _entry("maxpool_backward", gy.dtype)(gy, argmax, gx, checks.pool_params(g))
    return gx


def avgpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True):
    """Window means of x (N, C, H, W), PyTorch's divisor rule."""
    (x,) = checks.float_nchw("avgpool_forward", np, x=x)
    g = checks.pool_geometry("avgpool_forward", x.shape, kernel_size, stride, padding, ceil_mode)
    y = np.empty(x.shape[:2] + (g.out_h, g.out_w), dtype=x.dtype)
    if y.size:
        _entry("avgpool_forward", x.dtype)(x, y, checks.pool_params(g),
                                           int(bool(count_include_pad)))
    return y


def avgpool_backward(gy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
    """Gradient w.r.t. x of shape x_shape: each pixel sums gy / divisor over the
    windows covering it."""
    (gy,) = checks.float_nchw("avgpool_backward", np, gy=gy)
    g = checks.pool_geometry("avgpool_backward", x_shape, kernel_size, stride, padding,
                             ceil_mode)
    checks.require_shape("avgpool_backward", "gy", gy,
                         tuple(x_shape[:2]) + (g.out_h, g.out_w), f"for x_shape {tuple(x_shape)}")
    # The gathers write every pixel; zeros only for an empty gy.
    gx = (np.empty if gy.size else np.zeros)(tuple(x_shape), dtype=gy.dtype)
    if gx.size and gy.size:
        _entry("avgpool_backward", gy.dtype)(gy, gx, checks.pool_params(g),
                                             int(bool(count_include_pad)))
    return gx
