"""Checkpoint loading for ``Module.load_state_dict``: check every key and
shape against the model, then copy, so a failed load changes nothing.

Kept apart from module.py because it is the one place that converts foreign
arrays (NumPy, CuPy, anything with ``__array__``, e.g. ``torch_tensor.numpy()``).
"""
from collections import namedtuple

import numpy as np

from nnlite import device as _device
from nnlite.tensor import Tensor


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns (PyTorch's ``_IncompatibleKeys``)."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class StateDictError(RuntimeError):
    """A checkpoint does not fit the model: missing or unexpected keys, or a
    shape mismatch. A RuntimeError, as PyTorch raises."""


def source_array(value):
    """The array behind a checkpoint value, without copying when possible. A
    deferred value (anything with ``shape`` and ``copy_into(target)``, such as
    nnlite.io's reader of one HDF5 dataset) is kept as it is: it is read
    straight into the parameter when the load is installed."""
    if hasattr(value, "copy_into") and hasattr(value, "shape"):
        return value
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray) or _device.is_device_array(value):
        return value
    if hasattr(value, "__array__") or isinstance(value, (int, float, bool, list, tuple)):
        return np.asarray(value)
    raise TypeError(f"got a {type(value).__name__}; expected a Tensor, a NumPy or CuPy "
                    f"array, or an object with __array__")


def copy_into(target, array):
    """Write `array` into the existing array `target` (same object afterwards),
    moving it to target's device and casting to target's dtype."""
    if hasattr(array, "copy_into") and not isinstance(array, np.ndarray):
        array.copy_into(target)
        return
    array = _device.move(array, _device.device_of(target))
    target[...] = array.astype(target.dtype, copy=False)


def load(module, state_dict, strict):
    return prepare_load(module, state_dict, strict)()


def prepare_load(module, state_dict, strict):
    """Check `state_dict` against `module` without changing it; returns the
    function that copies it in (and returns the IncompatibleKeys)."""
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"load_state_dict: expected a mapping of name -> array, got "
                        f"{type(state_dict).__name__}")
    expected = module.state_dict(keep_vars=True)
    defaults = {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for name, fill in sub._optional_state_keys().items():
            defaults[(prefix + "." if prefix else "") + name] = fill

    on_meta = [k for k, t in expected.items() if _device.is_meta(t.data)]
    if on_meta:
        raise StateDictError(f"load_state_dict: {module._get_name()} has parameters on the meta "
                             f"device ({', '.join(on_meta[:3])}{', ...' if len(on_meta) > 3 else ''}"
                             f"), which hold no values; call model.to_empty(device='cpu') first")
    missing = [k for k in expected if k not in state_dict and k not in defaults]
    unexpected = [k for k in state_dict if k not in expected]
    problems, sources = [], {}
    for key, target in expected.items():
        if key not in state_dict:
            continue
        try:
            array = source_array(state_dict[key])
        except TypeError as error:
            problems.append(f"cannot read {key}: {error}.")
            continue
        if tuple(array.shape) != target.shape:
            problems.append(f"size mismatch for {key}: copying a param with shape "
                            f"{tuple(array.shape)} from checkpoint, the shape in current "
                            f"model is {target.shape}.")
            continue
        sources[key] = array

    # As in PyTorch, shape mismatches fail even with strict=False; key lists
    # fail only in strict mode. Every problem is reported at once.
    messages = []
    if strict and missing:
        messages.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)
                        + ".")
    if strict and unexpected:
        messages.append("Unexpected key(s) in state_dict: "
                        + ", ".join(f'"{k}"' for k in unexpected) + ".")
    messages += problems
    if messages:
        raise StateDictError(f"Error(s) in loading state_dict for {module._get_name()}:\n\t"
                        + "\n\t".join(messages))

    fills = {key: fill for key, fill in defaults.items()
             if key not in state_dict and key in expected}

    def copy_in():
        for key, array in sources.items():
            copy_into(expected[key].data, array)
        for key, fill in fills.items():
            expected[key].data[...] = fill  # PyTorch's rule for pre-1.2 BatchNorm checkpoints
        return IncompatibleKeys(missing, unexpected)
    return copy_in
