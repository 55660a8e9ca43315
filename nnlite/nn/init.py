"""Weight initialisers with PyTorch's names, fan rules and gains.

All draw from ``nnlite.random``, so ``nl.manual_seed`` makes initialisation
reproducible, and all fill the tensor's existing array in place (returning
the tensor) so a Parameter keeps its identity, device and dtype. The random
ones draw straight into that array in its own dtype (``nnlite.random.fill_uniform``
/ ``fill_normal``): initialising a 1.35 GiB float32 classifier allocates
nothing more. A parameter on the meta device (``nnlite.nn.meta``) has no
values: every initialiser returns it unchanged, as PyTorch's do.
"""
import math

import numpy as np

from nnlite import random as nl_random
from nnlite.device import is_meta, xp_of
from nnlite.tensor import Tensor

_LINEAR_GAINS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                 "conv_transpose2d", "conv_transpose3d", "sigmoid", "identity")


def calculate_gain(nonlinearity, param=None):
    """The gain that keeps activations' variance stable (PyTorch's table)."""
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected "
                     f"one of {_LINEAR_GAINS + ('tanh', 'relu', 'leaky_relu', 'selu')}")


def calculate_fan_in_and_fan_out(tensor):
    """fan_in = in_channels * receptive field, fan_out = out_channels * receptive
    field, for weights laid out (out, in, *kernel) as Linear and Conv store them."""
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with at least 2 "
                         f"dimensions, got shape {tuple(tensor.shape)}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out  # PyTorch's private spelling


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode {mode!r} is not 'fan_in' or 'fan_out'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _array(tensor, op):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor or Parameter, got {type(tensor).__name__}")
    return tensor.data


def _fill(tensor, values):
    if not is_meta(tensor.data):
        tensor.data[...] = values
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    if not a <= b:
        raise ValueError(f"uniform_: bounds must satisfy a <= b, got a={a}, b={b}")
    data = _array(tensor, "uniform_")
    if not is_meta(data):
        nl_random.fill_uniform(data, a, b)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    data = _array(tensor, "normal_")
    if not is_meta(data):
        nl_random.fill_normal(data, mean, std)
    return tensor


def constant_(tensor, val):
    _array(tensor, "constant_")
    return _fill(tensor, val)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot-uniform (Keras's default): U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He-uniform: U(-b, b), b = gain * sqrt(3 / fan). Linear's default uses
    a=sqrt(5), which makes b = 1 / sqrt(fan_in)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def orthogonal_(tensor, gain=1.0):
    """A (semi-)orthogonal matrix over (rows, everything else), as PyTorch and
    Keras's recurrent default do: QR of a Gaussian matrix with the sign of R's
    diagonal folded in so the result is uniformly distributed."""
    data = _array(tensor, "orthogonal_")
    if data.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dimensions, got shape "
                         f"{tuple(data.shape)}")
    if is_meta(data):
        return tensor
    rows = data.shape[0]
    cols = data.size // rows
    flat = nl_random.normal(np, (rows, cols), dtype=np.float64)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, xp_of(data).asarray(gain * q.reshape(data.shape)))
