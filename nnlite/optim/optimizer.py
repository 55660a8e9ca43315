"""Optimizer base: parameter groups, per-parameter state, checkpoints.

Updates work on raw arrays (``p.data``, ``p.grad.data``) with the array
module of each parameter, so one code path serves NumPy and CuPy, and write
in place so every view of a parameter sees the new values.
"""
import copy

import numpy as np

from nnlite import device as _device
from nnlite.tensor import Tensor, clear_grad, no_grad


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def check_range(op, name, value, low=0.0, high=None, high_open=False):
    """Raise ValueError naming the optimiser, the option and the accepted range."""
    too_high = high is not None and (value >= high if high_open else value > high)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or too_high:
        upper = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(f"{op}: {name} must be >= {low}{upper}, got {value!r}")


class Optimizer:
    """Base class: subclasses set ``defaults`` and implement ``_update``."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # Parameter -> dict; Tensors hash by identity
        self._work_buffers = {}  # (array module, dtype) -> flat arrays; see _work
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or "
                            f"dicts, got a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    def add_param_group(self, param_group):
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        params = [params] if isinstance(params, Tensor) else list(params or [])
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimise Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: cannot optimise a non-leaf Tensor (shape "
                                 f"{p.shape}); optimise the leaf it was computed from")
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of "
                                 f"required option {key!r}")
            group.setdefault(key, default)
        self._validate(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{name}: some parameters appear in more than one parameter "
                             f"group (or twice in one)")
        self.param_groups.append(group)

    def _validate(self, group):
        """Check one group's options; subclasses raise ValueError on bad values."""

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                clear_grad(p, set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure`, if
        given, recomputes the loss (with gradients) and its value is returned."""
        loss = None
        if closure is not None:
            loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad.data
                    if grad.shape != p.data.shape:
                        raise RuntimeError(
                            f"{type(self).__name__}.step: gradient of shape {grad.shape} "
                            f"for a parameter of shape {p.shape}")
                    state = self.state.setdefault(p, {})
                    _follow_parameter(state, p.data)
                    self._update(p.data, grad, group, state, _device.xp_of(p.data))
        return loss

    def _update(self, param, grad, group, state, xp):
        raise NotImplementedError

    def _work(self, like, count):
        """`count` scratch arrays of `like`'s shape and dtype, for an update's
        intermediate results. They are views of flat buffers the optimiser
        keeps (sized to its largest parameter, never checkpointed): a fresh
        temporary per operation costs the operating system's page faults on
        every large array, which took longer than the arithmetic itself (Adam
        on deep_reader's 75 MB LSTM weight: 180-400 ms with temporaries,
        48-114 ms in reused buffers, same results bit for bit)."""
        xp = _device.xp_of(like)
        buffers = self._work_buffers.setdefault((xp.__name__, like.dtype.str), [])
        for i in range(count):
            if i == len(buffers) or buffers[i].size < like.size:
                buffers[i:i + 1] = [xp.empty(like.size, dtype=like.dtype)]
        return [buffer[:like.size].reshape(like.shape) for buffer in buffers[:count]]

    # -- checkpoints ------------------------------------------------------------
    def _indexed_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{...,
        "params": [index, ...]}]}``, indices counting parameters across groups.
        Arrays are copies, so the snapshot does not change as training goes on."""
        index_of = {id(p): i for i, p in enumerate(self._indexed_params())}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index_of[id(p)]: {k: _snapshot(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by ``state_dict``; arrays are copied
        onto each parameter's device (floating ones in its dtype). Everything is
        checked first: a failed load leaves the optimiser as it was."""
        self._prepare_load_state_dict(state_dict)()

    def _prepare_load_state_dict(self, state_dict):
        """Check and convert `state_dict` without changing the optimiser;
        returns the function that installs it. Lets ``nnlite.io.load`` check
        the model, the optimiser and the metadata before it changes any."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(saved_groups)} "
                             f"parameter groups, this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has "
                                 f"{len(saved['params'])} parameters in the state dict, "
                                 f"{len(group['params'])} in this optimizer")
        params = {}
        for saved, group in zip(saved_groups, self.param_groups):
            params.update(zip(saved["params"], group["params"]))
        state = {}
        for index, saved_state in state_dict["state"].items():
            p = params.get(int(index))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for parameter index {index}, "
                                 f"which no parameter group holds")
            state[p] = {k: _restore(name, k, v, p) for k, v in saved_state.items()}
        options = []
        for saved, group in zip(saved_groups, self.param_groups):
            merged = dict(group)
            merged.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            self._validate(merged)  # an lr of "abc" would only fail at the next step
            options.append({k: v for k, v in merged.items() if k != "params"})

        def install():
            for group, new_options in zip(self.param_groups, options):
                group.update(new_options)
            self.state = state
        return install


def _snapshot(value):
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray) or _device.is_device_array(value):
        return value.copy()
    return copy.deepcopy(value)


def _restore(name, key, value, param):
    if key == "step":
        return int(_device.to_numpy(value.data if isinstance(value, Tensor) else value))
    if isinstance(value, (int, float)) or value is None:
        return value
    array = value.data if isinstance(value, Tensor) else value
    if not (isinstance(array, np.ndarray) or _device.is_device_array(array)):
        array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}.load_state_dict: state {key!r} is an array of "
                         f"{array.dtype}, not of numbers")
    if array.shape != param.data.shape:
        raise ValueError(f"{name}.load_state_dict: state {key!r} has shape "
                         f"{tuple(array.shape)}, its parameter has shape {param.shape}")
    array = _device.move(array, _device.device_of(param.data))
    dtype = param.dtype if array.dtype.kind == "f" else array.dtype
    return array.astype(dtype, copy=True)


def _follow_parameter(state, param):
    """Move state arrays to where the parameter now lives: ``model.to()`` after
    building the optimiser replaces the parameter's array, not the state's."""
    for key, value in state.items():
        if isinstance(value, np.ndarray) or _device.is_device_array(value):
            if _device.device_of(value) != _device.device_of(param):
                value = _device.move(value, _device.device_of(param))
            if value.dtype.kind == "f" and value.dtype != param.dtype:
                value = value.astype(param.dtype)
            state[key] = value
