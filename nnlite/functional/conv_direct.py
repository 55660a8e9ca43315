"""F.conv2d by the direct (implicit-GEMM) convolution of the direct_conv
kernels (nnlite.kernels.direct_conv): no column matrix, so no workspace and no
chunks; nnlite.functional.conv chooses it.

    forward        y  = direct_conv.forward(x, w, b)        bias added in the kernel
    backward-data  gx = direct_conv.backward_data(gy, w)    a gather per input pixel
    backward-wts   gw = direct_conv.backward_weight(x, gy)  a fixed-order sum per weight
    bias           gb = gy.sum over (N, H, W)

Any stride, padding (asymmetric included) and dilation; the host loops bound
the zero-extended planes they work on (direct_conv.unsupported says when a
layer passes the bound, and choose_algorithm then never picks it).
Deterministic: every sum has a fixed order, nothing uses atomics.
"""
from nnlite.device import xp_of
from nnlite.kernels import direct_conv as dk
from nnlite.tensor import Function


def unsupported(g, channels, out_channels):
    """Why the direct convolution does not run this layer (a sentence), or None."""
    return dk.unsupported(g, channels, out_channels)


class DirectConv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None, *, geometry):
        xp = xp_of(x)
        x = xp.ascontiguousarray(x)
        weight = xp.ascontiguousarray(weight)
        b = bias if bias is not None else xp.zeros(weight.shape[0], dtype=x.dtype)
        y = dk.forward(x, weight, b, geometry)
        ctx.save_for_backward(x, weight)
        ctx.meta = (geometry, bias is not None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        g, has_bias = ctx.meta
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = has_bias and ctx.needs_input_grad[2]
        xp = xp_of(gy)
        gy = xp.ascontiguousarray(gy)
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        gx = dk.backward_data(gy, weight, g, x.shape) if need_x else None
        gw = dk.backward_weight(x, gy, g) if need_w else None
        return (gx, gw, gb) if has_bias else (gx, gw)
