"""The direct_conv family (csrc/nnlite/direct_conv.cuh): the direct
(implicit-GEMM) convolution of nnlite.functional.conv_direct, forward,
backward-data and backward-weights, with no column matrix, over a
ConvGeometry built by the caller (nnlite.kernels.shapes).

Entry points, the same in both builds (csrc/cuda/direct_conv.cu,
csrc/host/direct_conv.cpp):
    direct_conv_forward(x, w, b, y, images, channels, out_channels, <geometry>)
    direct_conv_backward_data(gy, w, gx, images, channels, out_channels, <geometry>)
    direct_conv_backward_weight(x, gy, gw, images, channels, out_channels, <geometry>)
with <geometry> = ConvGeometry.entry_args(); one GPU thread per output or
input-gradient element, one block per weight-gradient element (a fixed-tree
reduction, no atomics).
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Blocks, Grid, array_module, launch

NCHW = ("N", "C", "H", "W")
FILTERS = ("K", "C", "kh", "kw")
# The host loops' bounds on their zero-extended copies (csrc/host/direct_conv.cpp):
# elements of one plane, and of the planes of one image.
MAX_EXTENDED_PLANE = 1 << 24
MAX_EXTENDED_IMAGE = 1 << 26
# Threads that share one weight-gradient element on the GPU; blocks walk the
# elements with a grid-stride loop past MAX_WEIGHT_BLOCKS.
WEIGHT_THREADS = 256
MAX_WEIGHT_BLOCKS = 65535


def unsupported(g, channels, out_channels):
    """Why the direct convolution does not run this geometry (a sentence), or
    None: its host loops work on zero-extended copies of whole planes, which a
    huge dilation or stride would blow up."""
    reach_h = g.dilation[0] * (g.kernel[0] - 1)
    reach_w = g.dilation[1] * (g.kernel[1] - 1)
    rows = max(g.stride[0] * g.out_h, g.height) + reach_h + 1
    cols = max(g.stride[1] * (g.out_w + 64), g.width + 64) + reach_w + 1
    if rows * cols > MAX_EXTENDED_PLANE or \
            rows * cols * max(channels, out_channels) > MAX_EXTENDED_IMAGE:
        return (f"its zero-extended planes of {rows} x {cols} positions ({max(channels, 1)} "
                f"channels) pass the direct convolution's bound of {MAX_EXTENDED_PLANE} per "
                f"plane and {MAX_EXTENDED_IMAGE} per image")
    return None


def _geometry_args(op, g, n, c, k):
    reason = unsupported(g, c, k)
    if reason is not None:
        raise ValueError(f"{op}: {g}: {reason}")
    return (n, c, k) + g.entry_args()


def forward(x, w, b, g):
    """y (N, K, out_h, out_w) = b + the convolution of x (N, C, H, W) with w
    (K, C, kh, kw) over geometry g; b is a (K,) array (zeros for no bias)."""
    op = "direct_conv_forward"
    xp = array_module(x)
    x, w, b = _arrays(op, xp, x=(x, NCHW), w=(w, FILTERS), b=(b, ("K",)))
    n, c = x.shape[:2]
    k = w.shape[0]
    checks.require_shape(op, "x", x, (n, c, g.height, g.width), f"for {g}")
    checks.require_shape(op, "w", w, (k, c) + tuple(g.kernel), f"for x of shape {tuple(x.shape)} "
                         f"and {g}")
    checks.require_shape(op, "b", b, (k,), f"for w of shape {tuple(w.shape)}")
    args = _geometry_args(op, g, n, c, k)
    y = xp.empty((n, k, g.out_h, g.out_w), dtype=x.dtype)
    if y.size:
        launch(op, x.dtype, Grid(y.size), (x, w, b, y) + args)
    return y


def backward_data(gy, w, g, x_shape):
    """gx of x_shape (N, C, H, W): the gradient of forward's x, from gy (N, K,
    out_h, out_w) and w (K, C, kh, kw)."""
    op = "direct_conv_backward_data"
    xp = array_module(gy)
    gy, w = _arrays(op, xp, gy=(gy, NCHW), w=(w, FILTERS))
    x_shape = tuple(int(s) for s in x_shape)
    n, k = gy.shape[:2]
    c = w.shape[1]
    if x_shape != (n, c, g.height, g.width):
        raise ValueError(f"{op}: x_shape {x_shape} must be ({n}, {c}, {g.height}, {g.width}) "
                         f"for gy of shape {tuple(gy.shape)}, w of shape {tuple(w.shape)} "
                         f"and {g}")
    checks.require_shape(op, "gy", gy, (n, k, g.out_h, g.out_w), f"for {g}")
    checks.require_shape(op, "w", w, (k, c) + tuple(g.kernel), f"for {g}")
    args = _geometry_args(op, g, n, c, k)
    gx = xp.empty(x_shape, dtype=gy.dtype)
    if gx.size:
        launch(op, gy.dtype, Grid(gx.size), (gy, w, gx) + args)
    return gx


def backward_weight(x, gy, g):
    """gw (K, C, kh, kw): the gradient of forward's w, from x (N, C, H, W) and
    gy (N, K, out_h, out_w)."""
    op = "direct_conv_backward_weight"
    xp = array_module(x)
    x, gy = _arrays(op, xp, x=(x, NCHW), gy=(gy, NCHW))
    n, c = x.shape[:2]
    k = gy.shape[1]
    checks.require_shape(op, "x", x, (n, c, g.height, g.width), f"for {g}")
    checks.require_shape(op, "gy", gy, (n, k, g.out_h, g.out_w), f"for x of shape "
                         f"{tuple(x.shape)} and {g}")
    args = _geometry_args(op, g, n, c, k)
    gw = xp.empty((k, c) + tuple(g.kernel), dtype=x.dtype)
    if gw.size:
        launch(op, x.dtype, Blocks(min(gw.size, MAX_WEIGHT_BLOCKS), WEIGHT_THREADS, 1),
               (x, gy, gw) + args)
    return gw


def _arrays(op, xp, **named):
    """checks.float_arrays over arrays of different layouts: one dtype, each its own dims."""
    arrays = []
    for name, (a, dims) in named.items():
        (a,) = checks.float_arrays(op, xp, dims, **{name: a})
        arrays.append(a)
    if len({a.dtype for a in arrays}) > 1:
        described = ", ".join(f"{name} is {a.dtype}" for name, a in zip(named, arrays))
        raise TypeError(f"{op}: {described}; expected one float dtype")
    return arrays
