"""Activation layers: thin Modules over nnlite.functional."""
import warnings

from nnlite import functional as F
from nnlite.nn.module import Module


class _Elementwise(Module):
    """An activation with no state. ``inplace`` is accepted so PyTorch code
    runs unchanged, but the result is always a new tensor: autograd here
    saves forward arrays, and overwriting them would corrupt backward."""

    function = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return type(self).function(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Elementwise):
    function = staticmethod(F.relu)


class ReLU6(_Elementwise):
    function = staticmethod(F.relu6)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


def _implicit_dim(name, ndim):
    # PyTorch's legacy rule for a softmax built without dim, warned about as there.
    warnings.warn(f"{name}: implicit dimension choice is deprecated; pass dim=",
                  stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        dim = _implicit_dim("Softmax", x.ndim) if self.dim is None else self.dim
        return F.softmax(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        dim = _implicit_dim("LogSoftmax", x.ndim) if self.dim is None else self.dim
        return F.log_softmax(x, dim)
