"""The winograd family (csrc/nnlite/winograd.cuh): the tile transforms of the
Winograd F(2x2, 3x3) convolution of nnlite.functional.conv_winograd; the 16
products between them are batched GEMMs done by the caller (xp.matmul).

Entry points, the same in both builds (csrc/cuda/winograd.cu, csrc/host/winograd.cpp):
    winograd_input_transform(x, v, images, channels, height, width, pad_top, pad_left,
                             tiles_h, tiles_w)
    winograd_filter_transform(w, u, out_channels, in_channels)
    winograd_output_transform(m, y, images, channels, out_h, out_w, tiles_h, tiles_w)
    winograd_output_adjoint(gy, dm, images, channels, out_h, out_w, tiles_h, tiles_w)
    winograd_filter_adjoint(du, gw, out_channels, in_channels)
one GPU thread per (channel, tile) or per filter, each writing its own outputs.

Layouts: a transformed tile has COMPONENTS = 16 components; v, m and dm are
(16, channels, images * tiles_h * tiles_w) with tile (n, ti, tj) at column
(n * tiles_h + ti) * tiles_w + tj, u and du are (16, out_channels, in_channels):
component by component, the operands of one GEMM.
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Grid, array_module, launch

COMPONENTS = 16
NCHW = ("N", "C", "H", "W")
FILTERS = ("K", "C", "3", "3")
TILES = ("16", "C", "N*tiles")
FILTER_TILES = ("16", "K", "C")


def output_tiles(out_h, out_w):
    """(tiles_h, tiles_w): the 2x2 output tiles that cover an out_h x out_w plane."""
    return (out_h + 1) // 2, (out_w + 1) // 2


def _count(op, name, value):
    if isinstance(value, bool) or not hasattr(value, "__index__") or value < 0:
        raise ValueError(f"{op}: {name} must be a non-negative int, got {value!r}")
    if value > checks.MAX_EXTENT:
        raise ValueError(f"{op}: {name} = {value}; at most {checks.MAX_EXTENT} is supported")
    return int(value)


def input_transform(x, pad_top, pad_left, tiles):
    """B^T d B of the 4x4 input tiles of x (N, C, H, W): tile (ti, tj) covers rows
    2*ti - pad_top ... + 3 and columns 2*tj - pad_left ... + 3, zero outside.
    Returns v (16, C, N * tiles_h * tiles_w)."""
    op = "winograd_input_transform"
    xp = array_module(x)
    (x,) = checks.float_arrays(op, xp, NCHW, x=x)
    pad_top, pad_left = _count(op, "pad_top", pad_top), _count(op, "pad_left", pad_left)
    tiles_h, tiles_w = (_count(op, name, t) for name, t in zip(("tiles_h", "tiles_w"), tiles))
    if tiles_h * tiles_w > checks.MAX_EXTENT:
        raise ValueError(f"{op}: {tiles_h} x {tiles_w} tiles per image; at most "
                         f"{checks.MAX_EXTENT} are supported")
    n, c = x.shape[:2]
    v = xp.empty((COMPONENTS, c, n * tiles_h * tiles_w), dtype=x.dtype)
    if v.size:
        launch("winograd_input_transform", x.dtype, Grid(v.size // COMPONENTS),
               (x, v, n, c) + x.shape[2:] + (pad_top, pad_left, tiles_h, tiles_w))
    return v


def filter_transform(w):
    """G g G^T of every 3x3 filter of w (K, C, 3, 3): u (16, K, C)."""
    op = "winograd_filter_transform"
    xp = array_module(w)
    (w,) = checks.float_arrays(op, xp, FILTERS, w=w)
    if w.shape[2:] != (3, 3):
        raise ValueError(f"{op}: w has shape {tuple(w.shape)}; expected 3x3 filters "
                         f"(out_channels, in_channels, 3, 3)")
    k, c = w.shape[:2]
    u = xp.empty((COMPONENTS, k, c), dtype=w.dtype)
    if u.size:
        launch("winograd_filter_transform", w.dtype, Grid(k * c), (w, u, k, c))
    return u


def output_transform(m, images, out_hw):
    """A^T m A of every tile of m (16, K, images * tiles): y (images, K, out_h, out_w),
    the tiles covering each plane from its top-left corner."""
    op = "winograd_output_transform"
    xp = array_module(m)
    (m,) = checks.float_arrays(op, xp, TILES, m=m)
    images = _count(op, "images", images)
    out_h, out_w = (_count(op, name, s) for name, s in zip(("out_h", "out_w"), out_hw))
    tiles_h, tiles_w = output_tiles(out_h, out_w)
    k = m.shape[1]
    checks.require_shape(op, "m", m, (COMPONENTS, k, images * tiles_h * tiles_w),
                         f"for {images} images of {out_h}x{out_w} outputs ({tiles_h}x{tiles_w} "
                         f"tiles each)")
    y = xp.empty((images, k, out_h, out_w), dtype=m.dtype)
    if y.size:
        launch("winograd_output_transform", m.dtype, Grid(m.size // COMPONENTS),
               (m, y, images, k, out_h, out_w, tiles_h, tiles_w))
    return y


def output_adjoint(gy):
    """A dy A^T of every 2x2 tile of gy (N, K, out_h, out_w), zero past its edge:
    dm (16, K, N * tiles), the gradient of output_transform's m."""
    op = "winograd_output_adjoint"
    xp = array_module(gy)
    (gy,) = checks.float_arrays(op, xp, NCHW, gy=gy)
    n, k, out_h, out_w = gy.shape
    tiles_h, tiles_w = output_tiles(out_h, out_w)
    dm = xp.empty((COMPONENTS, k, n * tiles_h * tiles_w), dtype=gy.dtype)
    if dm.size:
        launch("winograd_output_adjoint", gy.dtype, Grid(dm.size // COMPONENTS),
               (gy, dm, n, k, out_h, out_w, tiles_h, tiles_w))
    return dm


def filter_adjoint(du):
    """G^T du G of every filter of du (16, K, C): gw (K, C, 3, 3), the gradient
    of filter_transform's w."""
    op = "winograd_filter_adjoint"
    xp = array_module(du)
    (du,) = checks.float_arrays(op, xp, FILTER_TILES, du=du)
    if du.shape[0] != COMPONENTS:
        raise ValueError(f"{op}: du has shape {tuple(du.shape)}; expected ({COMPONENTS}, "
                         f"out_channels, in_channels)")
    k, c = du.shape[1:]
    gw = xp.empty((k, c, 3, 3), dtype=du.dtype)
    if gw.size:
        launch("winograd_filter_adjoint", du.dtype, Grid(k * c), (du, gw, k, c))
    return gw
