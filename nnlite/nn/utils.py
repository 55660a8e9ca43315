"""Gradient clipping with PyTorch's names and semantics
(``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``):

    loss.backward()
    total = nl.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
    optimizer.step()

Both change each parameter's ``.grad`` in place (its own array: autograd
gives every leaf a private gradient) and skip parameters without one.
NaN in means NaN out: a NaN gradient makes the total norm NaN, and scaling by
it turns every gradient NaN, as in PyTorch, unless ``error_if_nonfinite``
asks for an exception instead.
"""
import math
from numbers import Real

import numpy as np

from nnlite import device as _device
from nnlite.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _gradients(op, parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameters must be Tensors, got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad.data)
    return grads


def _number(op, name, value, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value) or \
            (math.isinf(value) and not allow_inf):
        raise ValueError(f"{op}: {name} must be a real number, got {value!r}")
    return float(value)


def _norm(grad, norm_type):
    """One array's `norm_type` norm as a Python float (the array unchanged)."""
    xp = _device.xp_of(grad)
    flat = grad.reshape(-1)
    if flat.size == 0:
        return 0.0
    if norm_type == math.inf:
        return float(xp.abs(flat).max())
    if norm_type == 2.0:  # a dot product: no temporary the size of the gradient
        return float(xp.sqrt(xp.dot(flat, flat)))
    return float(xp.sum(xp.abs(flat) ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of `parameters` (a Tensor or an iterable of them)
    so that their joint `norm_type` norm (the norm of the per-parameter norms;
    ``math.inf`` for the largest absolute entry) is at most `max_norm`.
    Returns the total norm before clipping, as a 0-d float32 Tensor. As
    PyTorch, every gradient is multiplied by min(1, max_norm / (total +
    1e-6))."""
    op = "clip_grad_norm_"
    max_norm = _number(op, "max_norm", max_norm)
    if max_norm < 0:
        raise ValueError(f"{op}: max_norm must be >= 0, got {max_norm!r}")
    norm_type = _number(op, "norm_type", norm_type, allow_inf=True)
    if norm_type <= 0:
        raise ValueError(f"{op}: norm_type must be > 0 (or math.inf), got {norm_type!r}")
    grads = _gradients(op, parameters)
    if not grads:
        return _total_norm(0.0)
    norms = [_norm(g, norm_type) for g in grads]
    if norm_type == math.inf:
        total = max(norms)
    else:
        total = sum(n ** norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{op}: the total {norm_type}-norm of the gradients is {total}; "
                           f"set error_if_nonfinite=False to clip anyway (the gradients "
                           f"then become NaN)")
    scale = min(1.0, max_norm / (total + 1e-6)) if not math.isnan(total) else math.nan
    for g in grads:  # raw arrays: nothing here is recorded by autograd
        g *= scale
    return _total_norm(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry of `parameters` to [-clip_value, clip_value]
    in place (NaN entries stay NaN)."""
    op = "clip_grad_value_"
    clip_value = _number(op, "clip_value", clip_value)
    if clip_value < 0:
        raise ValueError(f"{op}: clip_value must be >= 0, got {clip_value!r}")
    for g in _gradients(op, parameters):
        _device.xp_of(g).clip(g, -clip_value, clip_value, out=g)


def _total_norm(value):
    return Tensor(np.asarray(value, dtype=np.float32))
