"""The winograd family (csrc/nnlite/winograd.cuh): the tile transforms of the
Winograd convolution F(m x m, 3x3), m = `tile` = 2 or 4, of
nnlite.functional.conv_winograd; the alpha^2 products between them (alpha =
m + 2: 16 or 36) are batched GEMMs done by the caller.

Entry points, the same in both builds (csrc/cuda/winograd.cu, csrc/host/winograd.cpp):
    winograd_input_transform(x, v, images, channels, height, width, pad_top, pad_left,
                             tiles_h, tiles_w, tile)
    winograd_filter_transform(w, u, out_channels, in_channels, tile)
    winograd_output_transform(m, y, images, channels, out_h, out_w, tiles_h, tiles_w, tile)
    winograd_output_adjoint(gy, dm, images, channels, out_h, out_w, tiles_h, tiles_w, tile)
    winograd_filter_adjoint(du, gw, out_channels, in_channels, tile)
one GPU thread per row of a transformed tile (or of a filter's), each writing
its own outputs.

Layouts: v, m and dm are (alpha^2, channels, images * tiles_h * tiles_w) with
tile (n, ti, tj) at column (n * tiles_h + ti) * tiles_w + tj, u and du are
(alpha^2, out_channels, in_channels): component by component, the operands of
one GEMM.
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Grid, array_module, launch

TILES = (2, 4)  # F(2x2, 3x3) and F(4x4, 3x3)
NCHW = ("N", "C", "H", "W")
FILTERS = ("K", "C", "3", "3")
TILE_DIMS = ("alpha^2", "C", "N*tiles")
FILTER_TILE_DIMS = ("alpha^2", "K", "C")


def components(tile):
    """alpha^2 = (tile + 2)^2: the components of a transformed tile."""
    return (tile + 2) ** 2


def output_tiles(out_h, out_w, tile=2):
    """(tiles_h, tiles_w): the tile x tile output tiles that cover an out_h x out_w plane."""
    return -(-out_h // tile), -(-out_w // tile)


def tile_rows(tile):
    """Components per GPU thread: one row of a transformed tile."""
    return tile + 2


def _count(op, name, value):
    if isinstance(value, bool) or not hasattr(value, "__index__") or value < 0:
        raise ValueError(f"{op}: {name} must be a non-negative int, got {value!r}")
    if value > checks.MAX_EXTENT:
        raise ValueError(f"{op}: {name} = {value}; at most {checks.MAX_EXTENT} is supported")
    return int(value)


def _tile(op, tile):
    if isinstance(tile, bool) or tile not in TILES:
        raise ValueError(f"{op}: tile = {tile!r}; expected 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))")
    return int(tile)


def _channels(op, channels, tile):
    """The GPU forms row * channels in int (csrc/cuda/winograd.cu)."""
    if (tile + 2) * channels > checks.MAX_EXTENT:
        raise ValueError(f"{op}: {channels} channels; at most {checks.MAX_EXTENT // (tile + 2)} "
                         f"are supported with tile {tile}")


def input_transform(x, pad_top, pad_left, tiles, tile=2):
    """B^T d B of the input tiles of x (N, C, H, W): tile (ti, tj) covers rows
    tile*ti - pad_top ... + tile + 1 and the same columns from tile*tj - pad_left,
    zero outside. Returns v (alpha^2, C, N * tiles_h * tiles_w)."""
    op = "winograd_input_transform"
    xp = array_module(x)
    (x,) = checks.float_arrays(op, xp, NCHW, x=x)
    tile = _tile(op, tile)
    pad_top, pad_left = _count(op, "pad_top", pad_top), _count(op, "pad_left", pad_left)
    tiles_h, tiles_w = (_count(op, name, t) for name, t in zip(("tiles_h", "tiles_w"), tiles))
    if tiles_h * tiles_w > checks.MAX_EXTENT or tile * tiles_w + 2 > checks.MAX_EXTENT:
        raise ValueError(f"{op}: {tiles_h} x {tiles_w} tiles per image; at most "
                         f"{checks.MAX_EXTENT} in all and {(checks.MAX_EXTENT - 2) // tile} "
                         f"in a row are supported")
    n, c = x.shape[:2]
    _channels(op, c, tile)
    v = xp.empty((components(tile), c, n * tiles_h * tiles_w), dtype=x.dtype)
    if v.size:
        launch("winograd_input_transform", x.dtype, Grid(v.size // tile_rows(tile)),
               (x, v, n, c) + x.shape[2:] + (pad_top, pad_left, tiles_h, tiles_w, tile))
    return v


def filter_transform(w, tile=2):
    """G g G^T of every 3x3 filter of w (K, C, 3, 3): u (alpha^2, K, C)."""
    op = "winograd_filter_transform"
    xp = array_module(w)
    (w,) = checks.float_arrays(op, xp, FILTERS, w=w)
    tile = _tile(op, tile)
    if w.shape[2:] != (3, 3):
        raise ValueError(f"{op}: w has shape {tuple(w.shape)}; expected 3x3 filters "
                         f"(out_channels, in_channels, 3, 3)")
    k, c = w.shape[:2]
    u = xp.empty((components(tile), k, c), dtype=w.dtype)
    if u.size:
        launch("winograd_filter_transform", w.dtype, Grid(tile_rows(tile) * k * c),
               (w, u, k, c, tile))
    return u


def output_transform(m, images, out_hw, tile=2):
    """A^T m A of every tile of m (alpha^2, K, images * tiles): y (images, K,
    out_h, out_w), the tiles covering each plane from its top-left corner."""
    op = "winograd_output_transform"
    xp = array_module(m)
    (m,) = checks.float_arrays(op, xp, TILE_DIMS, m=m)
    tile = _tile(op, tile)
    images = _count(op, "images", images)
    out_h, out_w = (_count(op, name, s) for name, s in zip(("out_h", "out_w"), out_hw))
    tiles_h, tiles_w = output_tiles(out_h, out_w, tile)
    k = m.shape[1]
    checks.require_shape(op, "m", m, (components(tile), k, images * tiles_h * tiles_w),
                         f"for {images} images of {out_h}x{out_w} outputs ({tiles_h}x{tiles_w} "
                         f"tiles of {tile}x{tile} each)")
    _channels(op, k, tile)
    y = xp.empty((images, k, out_h, out_w), dtype=m.dtype)
    if y.size:
        launch("winograd_output_transform", m.dtype, Grid(m.size // tile_rows(tile) * tile),
               (m, y, images, k, out_h, out_w, tiles_h, tiles_w, tile))
    return y


def output_adjoint(gy, tile=2):
    """A dy A^T of every output tile of gy (N, K, out_h, out_w), zero past its
    edge: dm (alpha^2, K, N * tiles), the gradient of output_transform's m."""
    op = "winograd_output_adjoint"
    xp = array_module(gy)
    (gy,) = checks.float_arrays(op, xp, NCHW, gy=gy)
    tile = _tile(op, tile)
    n, k, out_h, out_w = gy.shape
    _channels(op, k, tile)
    tiles_h, tiles_w = output_tiles(out_h, out_w, tile)
    dm = xp.empty((components(tile), k, n * tiles_h * tiles_w), dtype=gy.dtype)
    if dm.size:
        launch("winograd_output_adjoint", gy.dtype, Grid(dm.size // tile_rows(tile)),
               (gy, dm, n, k, out_h, out_w, tiles_h, tiles_w, tile))
    return dm


def filter_adjoint(du, tile=2):
    """G^T du G of every filter of du (alpha^2, K, C): gw (K, C, 3, 3), the
    gradient of filter_transform's w."""
    op = "winograd_filter_adjoint"
    xp = array_module(du)
    (du,) = checks.float_arrays(op, xp, FILTER_TILE_DIMS, du=du)
    tile = _tile(op, tile)
    if du.shape[0] != components(tile):
        raise ValueError(f"{op}: du has shape {tuple(du.shape)}; expected "
                         f"({components(tile)}, out_channels, in_channels) for tile {tile}")
    k, c = du.shape[1:]
    gw = xp.empty((k, c, 3, 3), dtype=du.dtype)
    if gw.size:
        launch("winograd_filter_adjoint", du.dtype, Grid(3 * k * c), (du, gw, k, c, tile))
    return gw
