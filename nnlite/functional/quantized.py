"""F.quantized_linear: y = x W^T + b with W stored as float16, or as int8 with
one scale per output row, and every GEMM done in the input's float dtype.

W is never expanded whole. Its rows are dequantised chunk by chunk (the
dequant kernel family) into one workspace of at most ``get_dequant_workspace()``
bytes (16 MiB unless changed with ``set_dequant_workspace``; a single row
larger than that is still one chunk), right before the GEMM of that chunk:

    for rows r0:r1 of W:   w = dequant(W[r0:r1]) -> workspace;  y[:, r0:r1] = x @ w.T

Backward dequantises again, chunk by chunk, for the input gradient
(gx = sum over chunks of gy[:, r0:r1] @ w). The stored weight gets no
gradient. The int8 scale does: y = (x Q^T) * s + b, so
ds[o] = sum_n gy[n, o] (y[n, o] - b[o]) / s[o], from the output the op
already returned (no copy is kept; a zero scale gets a zero gradient), and the
bias gets the usual column sum. Fine-tuning a quantised model therefore trains
scales, biases and every layer that is not quantised.
"""
import numpy as np

from nnlite.device import xp_of
from nnlite.kernels import dequant as dequant_kernels
from nnlite.tensor import Function

DEFAULT_DEQUANT_WORKSPACE = 16 * 2**20
_workspace = {"bytes": DEFAULT_DEQUANT_WORKSPACE}
STORAGE_DTYPES = ("float16", "int8")


def set_dequant_workspace(nbytes):
    """Set the dequantisation workspace in bytes (default 16 MiB); returns the old one."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes <= 0:
        raise ValueError(f"set_dequant_workspace: expected a positive number of bytes, got "
                         f"{nbytes!r}")
    old = _workspace["bytes"]
    _workspace["bytes"] = int(nbytes)
    return old


def get_dequant_workspace():
    """The dequantisation workspace of quantized_linear, in bytes."""
    return _workspace["bytes"]


def chunk_rows(out_features, in_features, itemsize, workspace=None):
    """Rows of W dequantised per chunk: as many as fit the workspace, at least one."""
    workspace = get_dequant_workspace() if workspace is None else workspace
    return max(1, min(out_features, workspace // max(in_features * itemsize, 1)))


def workspace_bytes(out_features, in_features, itemsize, workspace=None):
    """The bytes one quantized_linear call allocates for its workspace."""
    if out_features == 0 or in_features == 0:
        return 0
    return chunk_rows(out_features, in_features, itemsize, workspace) * in_features * itemsize


def _dequantized_chunks(weight, scale, dtype, xp):
    """(r0, r1, w) for every chunk of rows of the stored weight, w (r1 - r0, in)
    of `dtype` written into one reused workspace."""
    out_features, in_features = weight.shape
    rows = chunk_rows(out_features, in_features, np.dtype(dtype).itemsize)
    buffer = xp.empty(rows * in_features, dtype=dtype)
    for r0 in range(0, out_features, rows):
        r1 = min(out_features, r0 + rows)
        w = buffer[:(r1 - r0) * in_features].reshape(r1 - r0, in_features)
        if weight.dtype == np.int8:
            dequant_kernels.dequant_int8(weight[r0:r1], scale[r0:r1], w=w)
        else:
            dequant_kernels.dequant_binary16(weight[r0:r1], w=w)
        yield r0, r1, w


def _check(x, weight, scale, bias):
    if weight.ndim != 2 or weight.dtype.name not in STORAGE_DTYPES:
        raise TypeError(f"quantized_linear: weight must be a 2-D int8 or float16 array "
                        f"(out_features, in_features); got {weight.dtype} of shape "
                        f"{tuple(weight.shape)}")
    out_features, in_features = weight.shape
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(f"quantized_linear: input of shape {tuple(x.shape)} does not match "
                         f"weight of shape {tuple(weight.shape)}; expected input (..., "
                         f"{in_features})")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"quantized_linear: input is {x.dtype}; expected float32 (or float64 "
                        f"for gradient checks)")
    if weight.dtype == np.int8:
        if scale is None or tuple(scale.shape) != (out_features,) or scale.dtype != x.dtype:
            raise ValueError(f"quantized_linear: an int8 weight needs scale of shape "
                             f"({out_features},) and the input's dtype {x.dtype}; got "
                             f"{None if scale is None else (scale.dtype, tuple(scale.shape))}")
    elif scale is not None:
        raise ValueError("quantized_linear: a float16 weight takes no scale")
    if bias is not None and (tuple(bias.shape) != (out_features,) or bias.dtype != x.dtype):
        raise ValueError(f"quantized_linear: bias has shape {tuple(bias.shape)} and dtype "
                         f"{bias.dtype}; expected ({out_features},) {x.dtype}")


class QuantizedLinear(Function):
    @staticmethod
    def forward(ctx, x, weight, scale=None, bias=None):
        _check(x, weight, scale, bias)
        xp = xp_of(x)
        out_features, in_features = weight.shape
        x2 = x.reshape(-1, in_features)
        y = xp.empty((x2.shape[0], out_features), dtype=x.dtype)
        for r0, r1, w in _dequantized_chunks(weight, scale, x.dtype, xp):
            y[:, r0:r1] = xp.matmul(x2, w.T)
        if bias is not None:
            y += bias
        y = y.reshape(tuple(x.shape[:-1]) + (out_features,))
        ctx.save_for_backward(x, weight, scale, bias)
        # The output itself, for the scale's gradient (the op returns it, so
        # keeping it costs nothing more); nothing is kept when not needed.
        ctx.output = y if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2] else None
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight, scale, bias = ctx.saved_tensors
        xp = xp_of(gy)
        out_features, in_features = weight.shape
        needs = tuple(ctx.needs_input_grad) + (False,) * (4 - len(ctx.needs_input_grad))
        gy2 = gy.reshape(-1, out_features)
        gx = gs = gb = None
        if needs[0]:
            gx = xp.zeros((gy2.shape[0], in_features), dtype=gy.dtype)
            for r0, r1, w in _dequantized_chunks(weight, scale, gy.dtype, xp):
                gx += xp.matmul(gy2[:, r0:r1], w)
            gx = gx.reshape(x.shape)
        if needs[2]:
            unscaled = ctx.output.reshape(-1, out_features)
            if bias is not None:
                unscaled = unscaled - bias
            safe = xp.where(scale != 0, scale, 1)
            gs = xp.where(scale != 0, (gy2 * unscaled).sum(axis=0) / safe, 0).astype(gy.dtype)
        if needs[3]:
            gb = gy2.sum(axis=0)
        return gx, None, gs, gb


def quantized_linear(x, weight, scale=None, bias=None):
    """y = x @ dequant(weight).T + bias, with `weight` (out_features,
    in_features) float16, or int8 with `scale` (out_features,) its per-row
    scale (see the module docstring)."""
    return QuantizedLinear.apply(x, weight, scale, bias)
