"""Tensor factories with PyTorch's names (``nl.zeros``, ``nl.randn`` ...)."""
import numpy as np

from nnlite import random as nl_random
from nnlite.device import canonical, xp
from nnlite.tensor import Tensor


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) \
        else tuple(size)


def _make(array_fn, size, dtype, device, requires_grad):
    module = xp(canonical(device))
    return Tensor(array_fn(module, _shape(size), np.dtype(dtype)), requires_grad=requires_grad)


def zeros(*size, dtype=np.float32, device="cpu", requires_grad=False):
    return _make(lambda m, s, d: m.zeros(s, dtype=d), size, dtype, device, requires_grad)


def ones(*size, dtype=np.float32, device="cpu", requires_grad=False):
    return _make(lambda m, s, d: m.ones(s, dtype=d), size, dtype, device, requires_grad)


def full(size, fill_value, dtype=np.float32, device="cpu", requires_grad=False):
    return _make(lambda m, s, d: m.full(s, fill_value, dtype=d), (size,), dtype, device,
                 requires_grad)


def rand(*size, dtype=np.float32, device="cpu", requires_grad=False):
    """Uniform on [0, 1), from the generator ``nl.manual_seed`` seeds."""
    return _make(lambda m, s, d: nl_random.uniform(m, s, dtype=d), size, dtype, device,
                 requires_grad)


def randn(*size, dtype=np.float32, device="cpu", requires_grad=False):
    return _make(lambda m, s, d: nl_random.normal(m, s, dtype=d), size, dtype, device,
                 requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu"):
    module = xp(canonical(device))
    if end is None:
        start, end = 0, start
    array = module.arange(start, end, step)
    if dtype is not None:
        array = array.astype(dtype)
    elif array.dtype == np.float64:
        array = array.astype(np.float32)
    return Tensor(array)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)
