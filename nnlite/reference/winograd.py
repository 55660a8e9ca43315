"""Reference Winograd F(2x2, 3x3) convolution (Lavin & Gray 2015, "Fast
Algorithms for Convolutional Neural Networks"), written from the paper's
matrices: every transform is a plain matrix product per tile, in loops.

For one 4x4 input tile d and one 3x3 filter g, the 2x2 outputs of their
stride-1 correlation are

    Y = A^T [ (G g G^T) * (B^T d B) ] A       (* element-wise)

and summing the element-wise product over input channels before A^T . A is
what turns a convolution layer into 16 GEMMs. Tiles start every 2 pixels;
tile (ti, tj) reads rows 2*ti - top ... 2*ti - top + 3 of the zero-padded input
and writes output rows 2*ti, 2*ti + 1 (those past the output's edge are
dropped). The layouts match nnlite.kernels.winograd: v (16, C, N*tiles), u (16,
K, C), m (16, K, N*tiles), component (r, s) at index 4*r + s, tile (n, ti, tj)
at column (n * tiles_h + ti) * tiles_w + tj.
"""
import numpy as np

B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], dtype=np.float64)


def output_tiles(out_h, out_w):
    return (out_h + 1) // 2, (out_w + 1) // 2


def _tiles(n, tiles_h, tiles_w):
    """Yield (column, image, ti, tj) for every tile, in column order."""
    column = 0
    for image in range(n):
        for ti in range(tiles_h):
            for tj in range(tiles_w):
                yield column, image, ti, tj
                column += 1


def input_transform(x, pad_top, pad_left, tiles_h, tiles_w):
    """v[:, c, tile] = B^T d B, d the 4x4 tile of channel c (zero outside x)."""
    n, c, height, width = x.shape
    # Enough zero padding on every side for every tile to be a plain slice.
    bottom = max(0, 2 * tiles_h + 2 - pad_top - height)
    right = max(0, 2 * tiles_w + 2 - pad_left - width)
    padded = np.pad(x, ((0, 0), (0, 0), (pad_top, bottom), (pad_left, right)))
    v = np.zeros((4, 4, c, n * tiles_h * tiles_w), dtype=x.dtype)
    for column, image, ti, tj in _tiles(n, tiles_h, tiles_w):
        for channel in range(c):
            d = padded[image, channel, 2 * ti:2 * ti + 4, 2 * tj:2 * tj + 4]
            v[:, :, channel, column] = B_T @ d @ B_T.T
    return v.reshape(16, c, -1)


def filter_transform(w):
    """u[:, k, c] = G g G^T of filter w[k, c] (3x3)."""
    k, c = w.shape[:2]
    u = np.zeros((4, 4, k, c), dtype=w.dtype)
    for o in range(k):
        for i in range(c):
            u[:, :, o, i] = G @ w[o, i] @ G.T
    return u.reshape(16, k, c)


def output_transform(m, n, out_h, out_w):
    """y[image, k] tile = A^T m A, dropping the outputs past (out_h, out_w)."""
    k = m.shape[1]
    tiles_h, tiles_w = output_tiles(out_h, out_w)
    m = m.reshape(4, 4, k, -1)
    y = np.zeros((n, k, 2 * tiles_h, 2 * tiles_w), dtype=m.dtype)
    for column, image, ti, tj in _tiles(n, tiles_h, tiles_w):
        for channel in range(k):
            y[image, channel, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2] = \
                A_T @ m[:, :, channel, column] @ A_T.T
    return y[:, :, :out_h, :out_w]


def output_adjoint(gy):
    """dm[:, k, tile] = A dy A^T: the gradient of output_transform's m."""
    n, k, out_h, out_w = gy.shape
    tiles_h, tiles_w = output_tiles(out_h, out_w)
    padded = np.pad(gy, ((0, 0), (0, 0), (0, 2 * tiles_h - out_h), (0, 2 * tiles_w - out_w)))
    dm = np.zeros((4, 4, k, n * tiles_h * tiles_w), dtype=gy.dtype)
    for column, image, ti, tj in _tiles(n, tiles_h, tiles_w):
        for channel in range(k):
            dy = padded[image, channel, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2]
            dm[:, :, channel, column] = A_T.T @ dy @ A_T
    return dm.reshape(16, k, -1)


def filter_adjoint(du):
    """gw[k, c] = G^T du G: the gradient of filter_transform's w."""
    k, c = du.shape[1:]
    du = du.reshape(4, 4, k, c)
    gw = np.zeros((k, c, 3, 3), dtype=du.dtype)
    for o in range(k):
        for i in range(c):
            gw[o, i] = G.T @ du[:, :, o, i] @ G
    return gw


def conv2d_forward(x, w, bias, padding):
    """The 3x3 stride-1 convolution of x (N, C, H, W) with w (K, C, 3, 3) by
    Winograd F(2x2, 3x3); padding is (top, bottom, left, right)."""
    top, bottom, left, right = padding
    n, _, height, width = x.shape
    out_h, out_w = height + top + bottom - 2, width + left + right - 2
    tiles_h, tiles_w = output_tiles(out_h, out_w)
    v = input_transform(x, top, left, tiles_h, tiles_w)
    u = filter_transform(w)
    m = np.stack([u[k] @ v[k] for k in range(16)])  # the 16 GEMMs
    y = output_transform(m, n, out_h, out_w)
    return y if bias is None else y + bias[None, :, None, None]
