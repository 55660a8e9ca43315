"""F.conv2d by Winograd F(2x2, 3x3) (Lavin & Gray 2015) for 3x3, stride-1,
dilation-1 convolutions with any padding; nnlite.functional.conv chooses it.

Forward, per chunk of the batch:

    u = filter_transform(w)                (16, K, C)       once per call
    v = input_transform(x chunk)           (16, C, tiles)
    m = u @ v                              (16, K, tiles)   16 GEMMs, one xp.matmul
    y = output_transform(m)                (n, K, out_h, out_w)

16 multiplications per 2x2 output tile and channel pair instead of 36: the
GEMMs do 2.25x fewer flops than im2col's, for the price of the transforms
(memory passes over x, y and the 16-component tile buffers).

Backward, chunk by chunk, recomputing v as im2col recomputes its columns:

* x: the Winograd convolution of gy with the flipped, transposed filter
  w'[c, k, i, j] = w[k, c, 2 - i, 2 - j] and padding 2 - top, 2 - left (gy's
  first rows cropped where that is negative), output H x W;
* w: through the adjoints of the transforms, du = sum over chunks of
  output_adjoint(gy) @ v^T (16 GEMMs), then gw = filter_adjoint(du); measured
  faster than im2col's weight gradient on the seed CRNN's layers (README).

The batch is chunked so that the two 16-component buffers of a step (v and m,
or their backward counterparts) fit the convolution workspace
(nnlite.functional.set_conv_workspace); a single image always runs.
Everything is deterministic: fixed chunk order, no atomics.
"""
import numpy as np

from nnlite.device import xp_of
from nnlite.functional.gemm import gemm
from nnlite.kernels import winograd as wk
from nnlite.tensor import Function


def supports(kernel_size, stride, dilation):
    """Whether Winograd F(2x2, 3x3) computes a layer of this kernel, stride and dilation."""
    return tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1) and \
        tuple(dilation) == (1, 1)


def _chunks(n, per_image_bytes, workspace):
    step = max(1, workspace // max(per_image_bytes, 1))
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _convolve(xp, x, u, pad_top, pad_left, out_hw, chunks):
    """The Winograd convolution of x (N, C, H, W) with transformed filters u
    (16, K, C): y (N, K, out_h, out_w), chunk by chunk."""
    tiles = wk.output_tiles(*out_hw)
    y = None
    for start, stop in chunks:
        v = wk.input_transform(x[start:stop], pad_top, pad_left, tiles)
        y_chunk = wk.output_transform(gemm(xp, u, v), stop - start, out_hw)
        if len(chunks) == 1:
            return y_chunk
        if y is None:
            y = xp.empty((x.shape[0],) + y_chunk.shape[1:], dtype=y_chunk.dtype)
        y[start:stop] = y_chunk
    return y


class WinogradConv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None, *, padding, workspace):
        xp = xp_of(x)
        x = xp.ascontiguousarray(x)
        top, bottom, left, right = padding
        n, channels, height, width = x.shape
        out_channels = weight.shape[0]
        out_hw = (height + top + bottom - 2, width + left + right - 2)
        tiles_h, tiles_w = wk.output_tiles(*out_hw)
        per_image = wk.COMPONENTS * tiles_h * tiles_w * (channels + out_channels) * x.itemsize
        chunks = _chunks(n, per_image, workspace)
        if n * out_channels == 0:
            y = xp.zeros((n, out_channels) + out_hw, dtype=x.dtype)
        else:
            y = _convolve(xp, x, wk.filter_transform(weight), top, left, out_hw, chunks)
        if bias is not None:
            y += bias[:, None, None]
        ctx.save_for_backward(x, weight)
        ctx.meta = (padding, workspace, bias is not None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        (top, bottom, left, right), workspace, has_bias = ctx.meta
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
            flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            gy_rows = gy[:, :, max(0, top - 2):, max(0, left - 2):]
            tiles_h, tiles_w = wk.output_tiles(height, width)
            per_image = wk.COMPONENTS * tiles_h * tiles_w * (channels + out_channels) * \
                x.itemsize
            if n * channels == 0:
                gx = xp.zeros_like(x)
            else:
                gx = _convolve(xp, gy_rows, wk.filter_transform(flipped), max(0, 2 - top),
                               max(0, 2 - left), (height, width),
                               _chunks(n, per_image, workspace))
        if need_w:
            tiles = wk.output_tiles(*gy.shape[2:])
            per_image = wk.COMPONENTS * tiles[0] * tiles[1] * (channels + out_channels) * \
                x.itemsize
            du = xp.zeros((wk.COMPONENTS, out_channels, channels), dtype=x.dtype)
            for start, stop in _chunks(n, per_image, workspace):
                v = wk.input_transform(x[start:stop], top, left, tiles)
                du += gemm(xp, wk.output_adjoint(gy[start:stop]), v.transpose(0, 2, 1))
            gw = wk.filter_adjoint(du)
        return (gx, gw, gb) if has_bias else (gx, gw)
