"""The pool family (csrc/nnlite/pool.cuh): max pooling with a saved argmax and
average pooling, forward and gathered backward, over a PoolGeometry built by
the caller (nnlite.kernels.shapes).

Entry points, the same in both builds (csrc/cuda/pool.cu, csrc/host/pool.cpp):
    maxpool_forward(x, y, argmax, planes, <geometry>)
    maxpool_backward(gy, argmax, gx, planes, <geometry>)
    avgpool_forward(x, y, planes, <geometry>, count_include_pad)
    avgpool_backward(gy, gx, planes, <geometry>, count_include_pad)
with <geometry> = PoolGeometry.entry_args(); one GPU thread per output element
(forward) or per input pixel (backward).
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Grid, array_module, launch

NCHW = ("N", "C", "H", "W")


def _input(op, x, g):
    xp = array_module(x)
    (x,) = checks.float_arrays(op, xp, NCHW, x=x)
    checks.require_shape(op, "x", x, x.shape[:2] + (g.height, g.width), f"for {g}")
    return xp, x


def _pooled_gradient(op, gy, g):
    xp = array_module(gy)
    (gy,) = checks.float_arrays(op, xp, NCHW, gy=gy)
    checks.require_shape(op, "gy", gy, gy.shape[:2] + (g.out_h, g.out_w), f"for {g}")
    # The gathers write every pixel; zeros only for an empty gy.
    gx = (xp.empty if gy.size else xp.zeros)(gy.shape[:2] + (g.height, g.width), gy.dtype)
    return xp, gy, gx


def maxpool_forward(x, g):
    """(y, argmax): the window maxima of x (N, C, H, W) and, as int32, the
    in-plane index h * W + w of each (first maximum in row-major order wins,
    a NaN wins over any number)."""
    xp, x = _input("maxpool_forward", x, g)
    y = xp.empty(x.shape[:2] + (g.out_h, g.out_w), dtype=x.dtype)
    argmax = xp.empty(y.shape, dtype="int32")
    if y.size:
        launch("maxpool_forward", x.dtype, Grid(y.size),
               (x, y, argmax, x.shape[0] * x.shape[1]) + g.entry_args())
    return y, argmax


def maxpool_backward(gy, argmax, g):
    """Gradient w.r.t. x: each pixel sums gy over the windows whose argmax it is."""
    xp, gy, gx = _pooled_gradient("maxpool_backward", gy, g)
    argmax = checks.int32_array("maxpool_backward", xp, "argmax", argmax, gy.shape,
                                "(the shape of gy, as maxpool_forward returns it)")
    if gx.size and gy.size:
        launch("maxpool_backward", gy.dtype, Grid(gx.size),
               (gy, argmax, gx, gy.shape[0] * gy.shape[1]) + g.entry_args())
    return gx


def avgpool_forward(x, g, count_include_pad=True):
    """Window means of x (N, C, H, W), PyTorch's divisor rule."""
    xp, x = _input("avgpool_forward", x, g)
    y = xp.empty(x.shape[:2] + (g.out_h, g.out_w), dtype=x.dtype)
    if y.size:
        launch("avgpool_forward", x.dtype, Grid(y.size),
               (x, y, x.shape[0] * x.shape[1]) + g.entry_args() + (int(bool(count_include_pad)),))
    return y


def avgpool_backward(gy, g, count_include_pad=True):
    """Gradient w.r.t. x: each pixel sums gy / divisor over the windows covering it."""
    xp, gy, gx = _pooled_gradient("avgpool_backward", gy, g)
    if gx.size and gy.size:
        launch("avgpool_backward", gy.dtype, Grid(gx.size),
               (gy, gx, gy.shape[0] * gy.shape[1]) + g.entry_args()
               + (int(bool(count_include_pad)),))
    return gx
