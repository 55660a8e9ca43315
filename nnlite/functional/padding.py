"""F.pad: constant padding with PyTorch's pad order (last dimension first)."""
import numpy as np

from nnlite.device import xp_of
from nnlite.tensor import Function


def _check_pad(x, pad):
    if len(pad) % 2 or len(pad) > 2 * x.ndim:
        raise ValueError(f"pad: pad {pad} must have an even length of at most 2 * {x.ndim} "
                         f"(the input has shape {tuple(x.shape)})")
    if any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"pad: pad {pad} must hold ints")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} (cropping) is not supported; slice "
                         f"the tensor instead")


class Pad(Function):
    @staticmethod
    def forward(ctx, x, pad, value):
        _check_pad(x, pad)
        # pad = (last_before, last_after, second_last_before, ...), as PyTorch.
        widths = [(0, 0)] * x.ndim
        for k in range(len(pad) // 2):
            widths[x.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
        shape = tuple(size + before + after for size, (before, after) in zip(x.shape, widths))
        y = xp_of(x).full(shape, value, dtype=x.dtype)
        inside = tuple(slice(before, before + size) for size, (before, _) in zip(x.shape, widths))
        y[inside] = x
        ctx.inside = inside
        return y

    @staticmethod
    def backward(ctx, gy):
        return gy[ctx.inside]


def pad(x, pad, mode="constant", value=None):
    """Pad x with `value` (default 0); pad = (left, right, top, bottom, ...), last
    dimension first, as torch.nn.functional.pad. Only mode="constant"."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; only 'constant'")
    return Pad.apply(x, pad=tuple(pad), value=0.0 if value is None else value)
