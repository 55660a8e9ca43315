"""Reference Winograd F(m x m, 3x3) convolution, m = `tile` = 2 or 4 (Lavin &
Gray 2015, "Fast Algorithms for Convolutional Neural Networks"), written from
the paper's matrices: every transform is a plain matrix product per tile, in
loops.

For one alpha x alpha input tile d (alpha = m + 2) and one 3x3 filter g, the
m x m outputs of their stride-1 correlation are

    Y = A^T [ (G g G^T) * (B^T d B) ] A       (* element-wise)

and summing the element-wise product over input channels before A^T . A is
what turns a convolution layer into alpha^2 GEMMs. Tiles start every m
pixels; tile (ti, tj) reads rows m*ti - top ... m*ti - top + alpha - 1 of the
zero-padded input and writes output rows m*ti ... m*ti + m - 1 (those past
the output's edge are dropped). The layouts match nnlite.kernels.winograd:
v (alpha^2, C, N*tiles), u (alpha^2, K, C), m (alpha^2, K, N*tiles), component
(r, s) at index alpha*r + s, tile (n, ti, tj) at column (n * tiles_h + ti) *
tiles_w + tj.
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

# F(4x4, 3x3), interpolation points 0, 1, -1, 2, -2 and infinity.
B_T4 = np.array([[4, 0, -5, 0, 1, 0],
                 [0, -4, -4, 1, 1, 0],
                 [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0],
                 [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G4 = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
A_T4 = np.array([[1, 1, 1, 1, 1, 0],
                 [0, 1, -1, 2, -2, 0],
                 [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], dtype=np.float64)

MATRICES = {2: (B_T, G, A_T), 4: (B_T4, G4, A_T4)}  # tile -> (B^T, G, A^T)


def output_tiles(out_h, out_w, tile=2):
    return -(-out_h // tile), -(-out_w // tile)


def _tiles(n, tiles_h, tiles_w):
    """Yield (column, image, ti, tj) for every tile, in column order."""
    column = 0
    for image in range(n):
        for ti in range(tiles_h):
            for tj in range(tiles_w):
                yield column, image, ti, tj
                column += 1


def input_transform(x, pad_top, pad_left, tiles_h, tiles_w, tile=2):
    """v[:, c, tile] = B^T d B, d the alpha x alpha tile of channel c (zero outside x)."""
    b_t = MATRICES[tile][0]
    alpha = tile + 2
    n, c, height, width = x.shape
    # Enough zero padding on every side for every tile to be a plain slice.
    bottom = max(0, tile * tiles_h + 2 - pad_top - height)
    right = max(0, tile * tiles_w + 2 - pad_left - width)
    padded = np.pad(x, ((0, 0), (0, 0), (pad_top, bottom), (pad_left, right)))
    v = np.zeros((alpha, alpha, c, n * tiles_h * tiles_w), dtype=x.dtype)
    for column, image, ti, tj in _tiles(n, tiles_h, tiles_w):
        for channel in range(c):
            d = padded[image, channel, tile * ti:tile * ti + alpha, tile * tj:tile * tj + alpha]
            v[:, :, channel, column] = b_t @ d @ b_t.T
    return v.reshape(alpha * alpha, c, -1)


def filter_transform(w, tile=2):
    """u[:, k, c] = G g G^T of filter w[k, c] (3x3)."""
    g = MATRICES[tile][1]
    alpha = tile + 2
    k, c = w.shape[:2]
    u = np.zeros((alpha, alpha, k, c), dtype=w.dtype)
    for o in range(k):
        for i in range(c):
            u[:, :, o, i] = g @ w[o, i] @ g.T
    return u.reshape(alpha * alpha, k, c)


def output_transform(m, n, out_h, out_w, tile=2):
    """y[image, k] tile = A^T m A, dropping the outputs past (out_h, out_w)."""
    a_t = MATRICES[tile][2]
    k = m.shape[1]
    tiles_h, tiles_w = output_tiles(out_h, out_w, tile)
    m = m.reshape(tile + 2, tile + 2, k, -1)
    y = np.zeros((n, k, tile * tiles_h, tile * tiles_w), dtype=m.dtype)
    for column, image, ti, tj in _tiles(n, tiles_h, tiles_w):
        for channel in range(k):
            y[image, channel, tile * ti:tile * ti + tile, tile * tj:tile * tj + tile] = \
                a_t @ m[:, :, channel, column] @ a_t.T
    return y[:, :, :out_h, :out_w]


def output_adjoint(gy, tile=2):
    """dm[:, k, tile] = A dy A^T: the gradient of output_transform's m."""
    a_t = MATRICES[tile][2]
    alpha = tile + 2
    n, k, out_h, out_w = gy.shape
    tiles_h, tiles_w = output_tiles(out_h, out_w, tile)
    padded = np.pad(gy, ((0, 0), (0, 0), (0, tile * tiles_h - out_h),
                         (0, tile * tiles_w - out_w)))
    dm = np.zeros((alpha, alpha, k, n * tiles_h * tiles_w), dtype=gy.dtype)
    for column, image, ti, tj in _tiles(n, tiles_h, tiles_w):
        for channel in range(k):
            dy = padded[image, channel, tile * ti:tile * ti + tile, tile * tj:tile * tj + tile]
            dm[:, :, channel, column] = a_t.T @ dy @ a_t
    return dm.reshape(alpha * alpha, k, -1)


def filter_adjoint(du, tile=2):
    """gw[k, c] = G^T du G: the gradient of filter_transform's w."""
    g = MATRICES[tile][1]
    k, c = du.shape[1:]
    du = du.reshape(tile + 2, tile + 2, k, c)
    gw = np.zeros((k, c, 3, 3), dtype=du.dtype)
    for o in range(k):
        for i in range(c):
            gw[o, i] = g.T @ du[:, :, o, i] @ g
    return gw


def conv2d_forward(x, w, bias, padding, tile=2):
    """The 3x3 stride-1 convolution of x (N, C, H, W) with w (K, C, 3, 3) by
    Winograd F(tile x tile, 3x3); padding is (top, bottom, left, right)."""
    top, bottom, left, right = padding
    n, _, height, width = x.shape
    out_h, out_w = height + top + bottom - 2, width + left + right - 2
    tiles_h, tiles_w = output_tiles(out_h, out_w, tile)
    v = input_transform(x, top, left, tiles_h, tiles_w, tile)
    u = filter_transform(w, tile)
    m = np.stack([u[k] @ v[k] for k in range(len(u))])  # the alpha^2 GEMMs
    y = output_transform(m, n, out_h, out_w, tile)
    return y if bias is None else y + bias[None, :, None, None]
