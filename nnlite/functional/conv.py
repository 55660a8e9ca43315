"""F.conv2d: the algorithm chosen per shape (choose_algorithm, nnlite.backends),
and the general one, im2col + GEMM (BLAS on CPU, cuBLAS on GPU), as Caffe does;
Winograd F(2x2, 3x3) for 3x3 stride-1 layers is in conv_winograd.py, the
direct (implicit-GEMM) convolution in conv_direct.py.

The batch is processed in chunks whose column buffer (C*kh*kw x out_h*out_w
per image) fits the convolution workspace, 64 MiB unless changed with
``set_conv_workspace``. A single image whose columns alone exceed the
workspace still runs, as a chunk of one: the workspace bounds how many images
share a buffer, never whether a layer can run. The backward recomputes the
columns chunk by chunk instead of keeping them from the forward, and holds at
most two chunk buffers at once (columns for the weight gradient, column
gradients for col2im).
"""
import threading

import numpy as np

from nnlite import backends
from nnlite.device import xp_of
from nnlite.functional import conv_direct, conv_winograd
from nnlite.functional.gemm import gemm
from nnlite.kernels import conv as conv_kernels
from nnlite.kernels.shapes import ConvGeometry, int_pair, same_padding
from nnlite.tensor import Function

DEFAULT_CONV_WORKSPACE = 64 * 2**20
_workspace = {"bytes": DEFAULT_CONV_WORKSPACE}


def set_conv_workspace(nbytes):
    """Set the column-buffer budget of conv2d in bytes (default 64 MiB); returns
    the old one. Frees the buffers kept from earlier calls."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes <= 0:
        raise ValueError(f"set_conv_workspace: expected a positive number of bytes, got {nbytes!r}")
    old = _workspace["bytes"]
    _workspace["bytes"] = int(nbytes)
    release_conv_buffers()
    return old


class _Buffers(threading.local):
    """The CPU buffers conv2d keeps from call to call, per thread: the column
    matrix of a chunk ("columns", also its gradient in the backward) and the
    GEMM's output or output gradient in the columns' layout ("products").

    A new NumPy array of tens of MB is new memory from the kernel, which it
    zero-fills page by page at the first write: im2col of the CRNN's conv2
    (75 MB) took 17.7 ms into a new array and 12.5 ms into a reused one. A
    buffer grows to the largest chunk seen, but is kept only up to the
    workspace size (a chunk larger than that, one huge image, gets a fresh
    array each time), so at most two workspaces stay allocated per thread that
    ran a convolution; release_conv_buffers() frees them (nl.summary does, so
    that its measured peak counts them). GPU memory is not kept here: CuPy's
    pool already reuses it.
    """

    def __init__(self):
        self.slots = {}

    def take(self, slot, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > get_conv_workspace():
            return np.empty(shape, dtype=dtype)
        buffer = self.slots.get(slot)
        if buffer is None or buffer.nbytes < nbytes:
            self.slots[slot] = None  # the old one goes before the new one comes
            buffer = self.slots[slot] = np.empty(nbytes, dtype=np.uint8)
        return buffer[:nbytes].view(dtype).reshape(shape)


_buffers = _Buffers()


def release_conv_buffers():
    """Free the buffers conv2d keeps between calls (this thread's)."""
    _buffers.slots.clear()


def get_conv_workspace():
    """The column-buffer budget of conv2d in bytes."""
    return _workspace["bytes"]


def conv_padding(padding, kernel_size, stride, dilation, op="conv2d"):
    """conv2d's padding argument as (top, bottom, left, right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"{op}: padding {padding!r} is not 'same', 'valid', an int or a "
                             f"tuple of 2 or 4 ints")
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}; "
                             f"give explicit padding for a strided convolution")
        return same_padding(kernel_size[0], dilation[0]) + same_padding(kernel_size[1],
                                                                         dilation[1])
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        values = tuple(padding)
    else:
        ph, pw = int_pair(op, "padding", padding)
        values = (ph, ph, pw, pw)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values):
        raise ValueError(f"{op}: padding must be non-negative ints, got {padding!r}")
    return tuple(int(v) for v in values)


def _check_inputs(x, weight, bias):
    if x.ndim != 4:
        raise ValueError(f"conv2d: x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels, kh, kw), "
                         f"got shape {tuple(weight.shape)}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels but weight expects "
                         f"{weight.shape[1]} (x shape {tuple(x.shape)}, weight shape "
                         f"{tuple(weight.shape)})")
    if x.dtype != weight.dtype or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"conv2d: x is {x.dtype} and weight is {weight.dtype}; expected both "
                        f"float32 or both float64")
    if bias is not None and (tuple(bias.shape) != (weight.shape[0],) or bias.dtype != x.dtype):
        raise ValueError(f"conv2d: bias has shape {tuple(bias.shape)} and dtype {bias.dtype}; "
                         f"expected ({weight.shape[0]},) {x.dtype}")


def _take(xp, slot, shape, dtype):
    """A kept CPU buffer (_Buffers) for a chunk's temporary, None on the GPU
    (the caller then gets a new array from CuPy's pool)."""
    return _buffers.take(slot, shape, dtype) if xp is np else None


def _chunks(n, per_image_bytes, workspace):
    step = max(1, workspace // max(per_image_bytes, 1))
    return [(start, min(start + step, n)) for start in range(0, n, step)]


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride, padding, dilation):
        _check_inputs(x, weight, bias)
        xp = xp_of(x)
        x = xp.ascontiguousarray(x)
        g = ConvGeometry.of(x.shape[2:], weight.shape[2:], stride, padding, dilation)
        n, out_channels = x.shape[0], weight.shape[0]
        rows, pixels = x.shape[1] * g.kernel[0] * g.kernel[1], g.out_h * g.out_w
        w2 = xp.ascontiguousarray(weight).reshape(out_channels, rows)
        chunks = _chunks(n, rows * pixels * x.itemsize, get_conv_workspace())
        y = xp.empty((n, out_channels, pixels), dtype=x.dtype)
        if y.size and rows:
            for start, stop in chunks:
                # One GEMM per chunk: (out, rows) x (rows, images * pixels).
                images = stop - start
                cols = conv_kernels.im2col(x[start:stop], g, out=_take(
                    xp, "columns", (rows, images * pixels), x.dtype))
                y_chunk = gemm(xp, w2, cols, out=_take(
                    xp, "products", (out_channels, images * pixels), x.dtype))
                y[start:stop] = y_chunk.reshape(out_channels, images, pixels).transpose(1, 0, 2)
        elif y.size:
            y.fill(0)
        if bias is not None:
            y += bias[:, None]
        ctx.save_for_backward(x, w2)
        ctx.meta = (g, chunks, weight.shape, bias is not None)
        return y.reshape(n, out_channels, g.out_h, g.out_w)

    @staticmethod
    def backward(ctx, gy):
        x, w2 = ctx.saved_tensors
        g, chunks, weight_shape, has_bias = ctx.meta
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = has_bias and ctx.needs_input_grad[2]
        xp = xp_of(gy)
        n, out_channels = gy.shape[0], gy.shape[1]
        gy = gy.reshape(n, out_channels, g.out_h * g.out_w)  # not -1: n may be 0
        gb = gy.sum(axis=(0, 2)) if need_b else None
        gw = xp.zeros_like(w2) if need_w else None
        gx = xp.empty_like(x) if need_x and len(chunks) > 1 and gy.size else None
        rows, pixels = w2.shape[1], g.out_h * g.out_w
        for start, stop in chunks if gy.size else ():
            images = stop - start
            # (out, images * pixels), the layout of the columns' GEMM.
            by_channel = gy[start:stop].transpose(1, 0, 2)
            gy_chunk = _take(xp, "products", (out_channels, images, pixels), gy.dtype)
            if gy_chunk is None:
                gy_chunk = xp.ascontiguousarray(by_channel)
            else:
                gy_chunk[...] = by_channel
            gy_chunk = gy_chunk.reshape(out_channels, images * pixels)
            if need_w:
                cols = conv_kernels.im2col(x[start:stop], g, out=_take(
                    xp, "columns", (rows, images * pixels), x.dtype))
                gw += gemm(xp, gy_chunk, cols.T)
            if need_x:
                # The columns are spent: their buffer takes their gradient.
                grad_cols = gemm(xp, w2.T, gy_chunk, out=_take(
                    xp, "columns", (rows, images * pixels), gy.dtype))
                grad_x = conv_kernels.col2im(grad_cols, (images,) + x.shape[1:], g)
                if len(chunks) == 1:
                    gx = grad_x
                else:
                    gx[start:stop] = grad_x
        if need_x and gx is None:  # an empty batch, or no output channels
            gx = xp.zeros_like(x)
        gw = gw.reshape(weight_shape) if need_w else None
        return (gx, gw, gb) if has_bias else (gx, gw)


# "auto" takes Winograd for a 3x3, stride-1, dilation-1 layer with at least
# WINOGRAD_MIN_CHANNELS input channels whose output channels are at most
# WINOGRAD_MAX_WIDENING times as many, or with WINOGRAD_WIDE_CHANNELS input
# channels or more. Measured (forward+backward, N=32, CPU, one thread; README
# "Convolution and pooling"): Winograd saves more GEMM flops the more input
# channels there are, but transforms tensors of both channel counts, so it
# loses with few input channels (1 -> 64: 3.4x im2col's time, 3 -> 64: 2.0x,
# 4 -> 16: 0.97x) and where a narrow layer widens a lot (8 -> 64: 1.16x,
# 16 -> 256: 1.04x), and wins elsewhere (6 -> 16: 0.81x, 16 -> 16: 0.47x,
# 12 -> 64: 0.84x, 32 -> 512: 0.75x, 512 -> 512: about 0.35x).
WINOGRAD_MIN_CHANNELS = 6
WINOGRAD_MAX_WIDENING = 4
WINOGRAD_WIDE_CHANNELS = 32

# "auto" takes the direct convolution where Winograd does not apply (or is
# not chosen) for a stride-1, dilation-1 layer with at most
# DIRECT_MAX_OUT_CHANNELS output channels: there im2col's GEMMs have few rows
# (M = out_channels) and run slowly, while the direct convolution's register
# tiles do not care how many channels there are. Measured (bench, forward +
# backward, float32, 2 busy cores, median ms direct / im2col / torch):
#   digits conv1  1->8   10x10   173 / 344 / 419      digits conv2  8->14 8x8  221 / 515 / 165
#   digits conv3 14->20   6x6     86 / 167 /  65      digits conv4 20->24 4x4   19 /  28 /  16
#   reader c1     1->16   3x3    2.5 /  40 /  11      reader c2   16->16 3x3   14 /  16 / 7.5
#                                                     (Winograd 12: it keeps that layer)
# and where it loses:
#   digits conv5 24->32 2x2      3.4 / 2.3 / 4.9      ocr conv1    1->64 3x3   28 /  27 / 31
#   charnet conv1 1->64 5x5       52 /  38 /  49      64-512 channels (ocr conv2-7, jaderberg
#                                                     conv2-5): 1.5-4.8x slower than im2col.
# Strided and dilated layers were not measured, so "auto" leaves them to im2col.
DIRECT_MAX_OUT_CHANNELS = 24


def direct_wins(weight_shape, stride, dilation):
    """Whether the direct convolution was measured faster than im2col (fwd+bwd,
    CPU) for a layer of these weights, stride and dilation (the rule above)."""
    return tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and \
        weight_shape[0] <= DIRECT_MAX_OUT_CHANNELS


# ... and only when the batch has at least WINOGRAD_MIN_TILES output tiles:
# the filter transform costs the same for one image as for 32 and saves
# multiplies per tile, so reading one word lost. Measured (forward, one
# thread, process time, winograd / im2col, seed CRNN layers): N=1, 8 tiles of
# 4x4 (conv4, conv6 at 4x32): 1.23x, 2.25x; N=2, 16 tiles: 1.00x, 1.27x;
# N=4, 32 tiles: 0.69x, 0.81x; at 16-64 tiles single runs varied by 3x (a
# millisecond each), so the bound is rounded to the first clear win. The
# seed CRNN read one word in 65 ms under the rule without it, 38 ms with
# im2col everywhere (PyTorch: 23 ms).
WINOGRAD_MIN_TILES = 32


def _enough_tiles(images, geometry):
    """Whether a batch of `images` with this geometry's output has at least
    WINOGRAD_MIN_TILES Winograd output tiles (True when the geometry is unknown)."""
    if geometry is None:
        return True
    out_hw = (geometry.out_h, geometry.out_w)
    tile = conv_winograd.choose_tile(out_hw)
    return images * (-(-out_hw[0] // tile)) * (-(-out_hw[1] // tile)) >= WINOGRAD_MIN_TILES


def choose_algorithm(x_shape, weight_shape, stride, dilation, algorithm=None, geometry=None):
    """The algorithm F.conv2d runs for these shapes: `algorithm` when the call
    names one ("winograd" or "direct" then raises ValueError where it does not
    apply), else nnlite.backends.conv_algorithm, "auto" choosing per shape.
    `geometry` (the layer's ConvGeometry) lets the direct convolution's bound
    and Winograd's tile count be checked; without it the bound is left to
    the kernels and the tiles are not counted."""
    fits = conv_winograd.supports(weight_shape[2:], stride, dilation)
    direct_refused = None if geometry is None else conv_direct.unsupported(
        geometry, weight_shape[1], weight_shape[0])
    if algorithm is not None:
        backends.check_conv_algorithm(algorithm, "conv2d: algorithm")
        if algorithm == "winograd" and not fits:
            raise ValueError(
                f"conv2d: algorithm='winograd' computes 3x3 convolutions with stride 1 and "
                f"dilation 1; this layer has x shape {tuple(x_shape)}, weight shape "
                f"{tuple(weight_shape)} (kernel {tuple(weight_shape[2:])}), stride {stride}, "
                f"dilation {dilation}; use algorithm='im2col' or 'auto'")
        if algorithm == "direct" and direct_refused is not None:
            raise ValueError(
                f"conv2d: algorithm='direct' cannot compute this layer (x shape "
                f"{tuple(x_shape)}, weight shape {tuple(weight_shape)}, stride {stride}, "
                f"dilation {dilation}): {direct_refused}; use algorithm='im2col' or 'auto'")
    else:
        algorithm = backends.check_conv_algorithm(backends.conv_algorithm,
                                                  "nnlite.backends.conv_algorithm")
    if algorithm == "im2col":
        return "im2col"
    if algorithm == "direct":
        return "direct" if direct_refused is None else "im2col"
    if algorithm == "winograd":
        return "winograd" if fits else "im2col"
    channels_in, channels_out = weight_shape[1], weight_shape[0]
    if fits and (channels_in >= WINOGRAD_WIDE_CHANNELS or (
            channels_in >= WINOGRAD_MIN_CHANNELS
            and channels_out <= WINOGRAD_MAX_WIDENING * channels_in)) \
            and _enough_tiles(x_shape[0], geometry):
        return "winograd"
    if direct_refused is None and direct_wins(weight_shape, stride, dilation):
        return "direct"
    return "im2col"


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, algorithm=None):
    """2-D convolution (cross-correlation, as PyTorch) of x (N, C, H, W) with
    weight (out_channels, C, kh, kw).

    padding: an int, (ph, pw), (top, bottom, left, right), "valid" (none) or
    "same" (stride 1 only; an even kernel pads one more at the bottom/right,
    as TensorFlow and PyTorch).
    algorithm: None (nnlite.backends.conv_algorithm decides, "auto" by
    default), "auto", "im2col", "direct" (no column matrix) or "winograd"
    (3x3, stride 1, dilation 1 only).
    Every algorithm gives the same result up to float rounding.
    """
    stride = int_pair("conv2d", "stride", stride)
    dilation = int_pair("conv2d", "dilation", dilation)
    for name, pair in (("stride", stride), ("dilation", dilation)):
        if min(pair) <= 0:
            raise ValueError(f"conv2d: {name} must be positive, got {pair}")
    kernel_size = tuple(weight.shape[2:]) if weight.ndim == 4 else (1, 1)
    padding = conv_padding(padding, kernel_size, stride, dilation)
    _check_inputs(x, weight, bias)
    # The output size, checked once for every algorithm (a kernel larger than
    # the padded input raises here).
    g = ConvGeometry.of(x.shape[2:], kernel_size, stride, padding, dilation)
    args = (x, weight) if bias is None else (x, weight, bias)
    chosen = choose_algorithm(x.shape, weight.shape, stride, dilation, algorithm, geometry=g)
    if chosen == "winograd":
        tile = conv_winograd.choose_tile((g.out_h, g.out_w))
        return conv_winograd.WinogradConv2d.apply(*args, padding=padding,
                                                  workspace=get_conv_workspace(), tile=tile)
    if chosen == "direct":
        return conv_direct.DirectConv2d.apply(*args, geometry=g)
    return Conv2d.apply(*args, stride=stride, padding=padding, dilation=dilation)
