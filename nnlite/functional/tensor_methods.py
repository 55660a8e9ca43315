"""Bind Python operators and methods of ``Tensor`` to the functional ops.

``nnlite.tensor`` sits below the ops and cannot import them; as in Chainer
(``install_variable_arithmetics``), the layer that owns the ops installs them.
"""
from nnlite.device import xp_of
from nnlite.functional import activation, arithmetic, reduction, shape
from nnlite.tensor import Tensor


def _reflected(function):
    return lambda self, other: function(other, self)


def _comparison(name):
    def compare(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(getattr(self.data, name)(other))
    compare.__name__ = name
    return compare


def _argextreme(pick):
    def method(self, dim=None, keepdim=False):
        xp = xp_of(self.data)
        if dim is None:
            return Tensor(xp.asarray(getattr(xp, pick)(self.data)))
        return Tensor(getattr(xp, pick)(self.data, axis=dim, keepdims=keepdim))
    return method


def _inplace_guard(name):
    def method(self, other):
        # Reassigning the name to a new Tensor keeps the graph intact, as
        # `x = x + y` does; in-place writes to recorded arrays would corrupt it.
        return getattr(self, name)(other)
    return method


def install():
    methods = {
        "__add__": arithmetic.add, "__radd__": _reflected(arithmetic.add),
        "__sub__": arithmetic.sub, "__rsub__": _reflected(arithmetic.sub),
        "__mul__": arithmetic.mul, "__rmul__": _reflected(arithmetic.mul),
        "__truediv__": arithmetic.div, "__rtruediv__": _reflected(arithmetic.div),
        "__pow__": arithmetic.pow, "__rpow__": _reflected(arithmetic.pow),
        "__matmul__": arithmetic.matmul, "__rmatmul__": _reflected(arithmetic.matmul),
        "__neg__": arithmetic.neg, "__pos__": lambda self: self,
        "__abs__": arithmetic.abs,
        "__iadd__": _inplace_guard("__add__"), "__isub__": _inplace_guard("__sub__"),
        "__imul__": _inplace_guard("__mul__"), "__itruediv__": _inplace_guard("__truediv__"),
        "__getitem__": shape.getitem,
        "__lt__": _comparison("__lt__"), "__le__": _comparison("__le__"),
        "__gt__": _comparison("__gt__"), "__ge__": _comparison("__ge__"),
        "__eq__": _comparison("__eq__"), "__ne__": _comparison("__ne__"),
        "add": arithmetic.add, "sub": arithmetic.sub, "mul": arithmetic.mul,
        "div": arithmetic.div, "pow": arithmetic.pow, "matmul": arithmetic.matmul,
        "exp": arithmetic.exp, "log": arithmetic.log, "abs": arithmetic.abs,
        "sqrt": arithmetic.sqrt, "clip": arithmetic.clip, "clamp": arithmetic.clip,
        "relu": activation.relu, "sigmoid": activation.sigmoid, "tanh": activation.tanh,
        "softmax": activation.softmax, "log_softmax": activation.log_softmax,
        "sum": reduction.sum, "mean": reduction.mean, "max": reduction.max,
        "min": reduction.min,
        "argmax": _argextreme("argmax"), "argmin": _argextreme("argmin"),
        "reshape": shape.reshape, "view": shape.view, "flatten": shape.flatten,
        "squeeze": shape.squeeze, "unsqueeze": shape.unsqueeze,
        "transpose": shape.transpose, "permute": shape.permute, "expand": shape.expand,
        "T": property(lambda self: shape.permute(self, tuple(reversed(range(self.ndim))))),
    }
    for name, function in methods.items():
        setattr(Tensor, name, function)
