"""F.conv2d by Winograd F(m x m, 3x3), m = `tile` = 4 or 2 (Lavin & Gray 2015),
for 3x3, stride-1, dilation-1 convolutions with any padding;
nnlite.functional.conv chooses it, and choose_tile the variant.

Forward, per chunk of the batch (alpha = m + 2):

    u = filter_transform(w)                (alpha^2, K, C)       once per call
    v = input_transform(x chunk)           (alpha^2, C, tiles)
    m = u @ v                              (alpha^2, K, tiles)   alpha^2 GEMMs
    y = output_transform(m)                (n, K, out_h, out_w)

alpha^2 multiplications per m x m output tile and channel pair instead of
9 m^2: the GEMMs do 4x (F(4x4, 3x3): 36 per 16 outputs) or 2.25x (F(2x2,
3x3): 16 per 4) fewer flops than im2col's, for the price of the transforms
(memory passes over x, y and the alpha^2-component tile buffers) and, for
F(4x4, 3x3), a float32 rounding error about 25x im2col's (README).

Backward, chunk by chunk, recomputing v as im2col recomputes its columns,
except where the forward ran as one chunk: then it keeps its v (at most the
workspace) for the weight gradient, which saved 5 of the compact CRNN's 15
input transforms per training step:

* x: the Winograd convolution of gy with the flipped, transposed filter
  w'[c, k, i, j] = w[k, c, 2 - i, 2 - j] and padding 2 - top, 2 - left (gy's
  first rows cropped where that is negative), output H x W;
* w: through the adjoints of the transforms, du = sum over chunks of
  output_adjoint(gy) @ v^T (alpha^2 GEMMs), then gw = filter_adjoint(du);
  measured faster than im2col's weight gradient on the seed CRNN's layers.

The batch is chunked so that the two tile buffers of a step (v and m, or
their backward counterparts) fit the convolution workspace
(nnlite.functional.set_conv_workspace); a single image always runs.
Everything is deterministic: fixed chunk order, no atomics.
"""

from nnlite import backends
from nnlite.device import xp_of
from nnlite.functional.gemm import gemm
from nnlite.kernels import winograd as wk
from nnlite.tensor import Function


def supports(kernel_size, stride, dilation):
    """Whether Winograd computes a layer of this kernel, stride and dilation."""
    return tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1) and \
        tuple(dilation) == (1, 1)


# F(4x4, 3x3) took 0.65-0.86x F(2x2, 3x3)'s time for forward+backward on
# outputs of 3x40 to 16x64 (CPU, one thread), the same at 4x4, twice as long
# at 2x2, where most of each 4x4 tile falls outside the output.
MIN_OUTPUT_FOR_F4 = 3


def choose_tile(out_hw, tile=None):
    """The Winograd variant for an output of out_hw: `tile` (2 or 4) if given,
    else nnlite.backends.winograd_tile, else F(4x4, 3x3) when both sides are
    at least MIN_OUTPUT_FOR_F4 and F(2x2, 3x3) otherwise."""
    if tile is None:
        tile = backends.check_winograd_tile(backends.winograd_tile)
    if tile is not None:
        return tile
    return 4 if min(out_hw) >= MIN_OUTPUT_FOR_F4 else 2


def _chunks(n, per_image_bytes, workspace):
    step = max(1, workspace // max(per_image_bytes, 1))
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _bytes_per_image(out_hw, channels, tile, itemsize):
    """The two transformed-tile buffers of one image (channels: both counts)."""
    tiles_h, tiles_w = wk.output_tiles(*out_hw, tile)
    return wk.components(tile) * tiles_h * tiles_w * channels * itemsize


def _convolve(xp, x, u, pad_top, pad_left, out_hw, tile, workspace):
    """The Winograd convolution of x (N, C, H, W) with transformed filters u
    (alpha^2, K, C), chunk by chunk: (y (N, K, out_h, out_w), v), where v is
    the transformed input when the batch ran as one chunk, else None."""
    n, channels = x.shape[:2]
    tiles = wk.output_tiles(*out_hw, tile)
    chunks = _chunks(n, _bytes_per_image(out_hw, channels + u.shape[1], tile, x.itemsize),
                     workspace)
    y = None
    for start, stop in chunks:
        v = wk.input_transform(x[start:stop], pad_top, pad_left, tiles, tile)
        y_chunk = wk.output_transform(gemm(xp, u, v), stop - start, out_hw, tile)
        if len(chunks) == 1:
            return y_chunk, v
        if y is None:
            y = xp.empty((n,) + y_chunk.shape[1:], dtype=y_chunk.dtype)
        y[start:stop] = y_chunk
    return y, None


class WinogradConv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None, *, padding, workspace, tile=2):
        xp = xp_of(x)
        x = xp.ascontiguousarray(x)
        top, bottom, left, right = padding
        n, channels, height, width = x.shape
        out_channels = weight.shape[0]
        out_hw = (height + top + bottom - 2, width + left + right - 2)
        v = None
        if n * out_channels == 0:
            y = xp.zeros((n, out_channels) + out_hw, dtype=x.dtype)
        else:
            y, v = _convolve(xp, x, wk.filter_transform(weight, tile), top, left, out_hw, tile,
                             workspace)
        if bias is not None:
            y += bias[:, None, None]
        ctx.save_for_backward(x, weight)
        # The weight gradient needs v again; keep it rather than transform x twice.
        ctx.transformed_input = v if ctx.needs_input_grad[1] else None
        ctx.meta = (padding, workspace, tile, bias is not None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        (top, bottom, left, right), workspace, tile, has_bias = ctx.meta
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = has_bias and ctx.needs_input_grad[2]
        xp = xp_of(gy)
        gy = xp.ascontiguousarray(gy)
        n, channels, height, width = x.shape
        out_channels = weight.shape[0]
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        gx = gw = None
        if need_x:
            # Output x[h] took gy[h + top - i] * w[i]: gy's rows from top - 2 on,
            # correlated with the flipped filter, padded by 2 - top where positive.
            if n * channels == 0:
                gx = xp.zeros_like(x)
            else:
                flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
                gy_rows = gy[:, :, max(0, top - 2):, max(0, left - 2):]
                gx, _ = _convolve(xp, gy_rows, wk.filter_transform(flipped, tile),
                                  max(0, 2 - top), max(0, 2 - left), (height, width), tile,
                                  workspace)
        if need_w:
            tiles = wk.output_tiles(*gy.shape[2:], tile)
            du = xp.zeros((wk.components(tile), out_channels, channels), dtype=x.dtype)
            per_image = _bytes_per_image(gy.shape[2:], channels + out_channels, tile, x.itemsize)
            kept = ctx.transformed_input
            chunks = [(0, n)] if kept is not None else _chunks(n, per_image, workspace)
            for start, stop in chunks:
                v = kept if kept is not None else \
                    wk.input_transform(x[start:stop], top, left, tiles, tile)
                du += gemm(xp, wk.output_adjoint(gy[start:stop], tile), v.transpose(0, 2, 1))
            gw = wk.filter_adjoint(du, tile)
        return (gx, gw, gb) if has_bias else (gx, gw)
