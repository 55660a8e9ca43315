"""Linear, Identity and Flatten."""
import math

import numpy as np

from nnlite import device as _device
from nnlite import functional as F
from nnlite.nn import init
from nnlite.nn.meta import building_meta
from nnlite.nn.module import Module, Parameter

INITS = ("default", "glorot", "xavier")


def empty_parameter(shape, device=None, dtype=None):
    """An uninitialised Parameter of `shape`, for a layer to fill in reset_parameters.
    On the meta device (device="meta", or device=None inside ``nl.nn.meta()``)
    it holds no values and allocates nothing."""
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"parameters must be floating point, got dtype {dtype}")
    if (device is None and building_meta()) or \
            (device is not None and _device.canonical(device) == "meta"):
        return Parameter(_device.MetaArray(shape, dtype))
    xp = _device.xp("cpu" if device is None else device)
    return Parameter(xp.empty(shape, dtype=dtype))


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments (as PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features).

    ``init="default"`` is PyTorch's (kaiming_uniform with a=sqrt(5), bias
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))); ``init="glorot"`` is Keras's
    (Glorot-uniform weight, zero bias), which the seed networks were trained with.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 init="default"):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {value!r}")
        if init not in INITS:
            raise ValueError(f"Linear: init={init!r} is not one of {INITS}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        self.weight = empty_parameter((out_features, in_features), device, dtype)
        if bias:
            self.bias = empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight.numel() == 0:
            return  # no fan to scale by; PyTorch warns and skips as well
        if self.init == "default":
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            if self.bias is not None:
                bound = 1 / math.sqrt(self.in_features)
                init.uniform_(self.bias, -bound, bound)
        else:
            init.xavier_uniform_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flattens dims start_dim..end_dim (default: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
