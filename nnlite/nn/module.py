"""Module: the bookkeeping every layer inherits.

Attribute assignment registers Parameters, sub-Modules and buffers, so
``named_parameters`` and ``state_dict`` produce PyTorch's dotted names
("features.0.weight") and weights move between the libraries as arrays.
"""
from collections import OrderedDict

import numpy as np

from nnlite import device as _device
from nnlite.errors import InvalidNameError
from nnlite.nn import state as _state
from nnlite.nn.parameter import Parameter
from nnlite.tensor import Tensor, clear_grad


class Module:
    """Base class of layers and models; subclasses define ``forward``."""

    def __init__(self):
        # object.__setattr__ because our __setattr__ needs these dicts to exist.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); subclasses of "
                                  f"Module must define forward(self, ...)")

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        # .get: a Module restored by copy/pickle from before hooks existed has none.
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            for hook in list(hooks.values()):
                result = hook(self, args, output)
                if result is not None:
                    output = result
        return output

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward of this
        module (PyTorch's semantics: `inputs` is the tuple of positional
        arguments; a non-None return value replaces the output). Returns a
        handle whose ``remove()`` unregisters the hook."""
        if not callable(hook):
            raise TypeError(f"register_forward_hook: hook must be callable, got "
                            f"{type(hook).__name__}")
        if "_forward_hooks" not in self.__dict__:
            object.__setattr__(self, "_forward_hooks", OrderedDict())
        return RemovableHandle(self._forward_hooks, hook)

    # -- registration -----------------------------------------------------------
    def _check_initialised(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call; call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")

    def _forget(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)

    def _check_no_clash(self, op, name, store):
        # PyTorch's rule: a name may not hide (or be hidden by) an attribute of
        # another kind, e.g. a ModuleDict key "training" or "forward".
        if name not in store and hasattr(self, name):
            raise InvalidNameError(f"{op}: {type(self).__name__} already has an attribute "
                                   f"{name!r}; choose another name")

    def register_parameter(self, name, param):
        self._check_initialised("parameters")
        _check_name("register_parameter", name)
        self._check_no_clash("register_parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: cannot assign {type(param).__name__} as "
                            f"parameter {name!r}; expected nn.Parameter or None")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A non-trainable state array (running statistics); persistent
        buffers appear in ``state_dict``."""
        self._check_initialised("buffers")
        _check_name("register_buffer", name)
        self._check_no_clash("register_buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            if not (isinstance(tensor, np.ndarray) or _device.is_device_array(tensor)):
                raise TypeError(f"register_buffer: cannot assign {type(tensor).__name__} as "
                                f"buffer {name!r}; expected a Tensor, an array or None")
            tensor = Tensor(tensor)
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        self._check_initialised("sub-modules")
        _check_name("add_module", name)
        self._check_no_clash("add_module", name, self._modules)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module "
                            f"(name {name!r})")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        # Assignment replaces whatever the name held before (PyTorch's rule);
        # register_* alone refuses to hide an existing attribute.
        if isinstance(value, Parameter):
            self._check_initialised("parameters")
            self._forget(name)
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self._check_initialised("sub-modules")
            self._forget(name)
            self.add_module(name, value)
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"of {type(self).__name__}; expected nn.Parameter or None")
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r}; expected a Module or None")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}; "
                                f"expected a Tensor or None")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails; reading __dict__ directly keeps
        # copy/pickle (which probe attributes before __init__ ran) from recursing.
        for store in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(store)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # -- traversal ----------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, _join(prefix, name), remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, store, prefix, recurse, remove_duplicate=True):
        seen = set()
        owners = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for owner_prefix, owner in owners:
            for name, value in getattr(owner, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield _join(owner_prefix, name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) pairs; a parameter shared by two layers
        appears once, under its first name."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def num_parameters(self, trainable_only=False):
        """Total element count of the parameters (Keras's summary figure)."""
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def apply(self, fn):
        """Call fn on every sub-module, then on self (PyTorch's order); returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ---------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for param in self.parameters():
            clear_grad(param, set_to_none)

    # -- device and dtype ----------------------------------------------------------
    def _convert(self, device=None, dtype=None):
        """Replace the arrays behind every parameter, gradient and buffer.

        The Parameter objects stay, so an optimiser built earlier still holds
        the model's parameters. Only floating-point arrays change dtype
        (num_batches_tracked stays int64), as in PyTorch."""
        device = None if device is None else _device.canonical(device)
        dtype = None if dtype is None else np.dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to: only floating-point dtypes are accepted, got {dtype}")
        tensors = []
        for module in self.modules():
            # A layer's stored weights (a quantised Linear's int8 or float16
            # weight) keep their dtype: model.double() must not undo compression.
            keep = getattr(module, "_keep_dtype", ())
            for store in (module._parameters, module._buffers):
                tensors += [(t, name in keep) for name, t in store.items() if t is not None]
        tensors += [(p.grad, False) for p in self.parameters() if p.grad is not None]
        seen = set()
        for t, keep in tensors:
            if id(t) in seen:
                continue
            seen.add(id(t))
            t.data = _converted(t.data, device, None if keep else dtype)
        return self

    def to_empty(self, *, device="cpu"):
        """Give every parameter and buffer on the meta device an uninitialised
        array of its shape and dtype on `device` (PyTorch's to_empty; real
        arrays are moved as ``to`` would). The Parameter objects stay. Returns self."""
        device = _device.canonical(device)
        xp = _device.xp(device)
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for tensor in store.values():
                    if tensor is None:
                        continue
                    if _device.is_meta(tensor.data):
                        tensor.data = xp.empty(tensor.data.shape, tensor.data.dtype)
                    elif tensor.device != device:
                        tensor.data = _device.move(tensor.data, device)
        return self

    def to(self, *args, **kwargs):
        """``to(device)``, ``to(dtype)`` or ``to(device, dtype)``; in place, returns self."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"Module.to: unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, str):
                device = arg
            elif isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            else:
                dtype = arg
        return self._convert(device, dtype)

    def cuda(self, device=None):
        return self._convert("cuda" if device is None else device)

    def cpu(self):
        return self._convert("cpu")

    def double(self):
        return self._convert(dtype=np.float64)

    def float(self):
        return self._convert(dtype=np.float32)

    # -- checkpoints ---------------------------------------------------------------
    def _state_items(self, prefix="", keep_vars=False):
        """(name, Tensor) of this module's own parameters and persistent buffers."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, buffer if keep_vars else buffer.detach()

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """OrderedDict of dotted name -> Tensor sharing the model's arrays
        (parameters, then persistent buffers, module by module)."""
        if destination is None:
            destination = OrderedDict()
        for name, value in self._state_items(prefix, keep_vars):
            destination[name] = value
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _optional_state_keys(self):
        """Own keys a checkpoint may lack, with the value they then take
        (BatchNorm's num_batches_tracked, absent from Keras imports)."""
        return {}

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the model's own arrays (keeping each one's device
        and dtype). Values may be Tensors, NumPy or CuPy arrays, or anything
        with ``__array__``. Everything is checked before anything is copied,
        so a failed load leaves the model as it was."""
        return _state.load(self, state_dict, strict)

    def _prepare_load_state_dict(self, state_dict, strict=True):
        """Check `state_dict` as ``load_state_dict`` does, change nothing, and
        return the function that copies it in; lets ``nnlite.io.load`` check
        the model, the optimiser and the metadata before it changes any."""
        return _state.prepare_load(self, state_dict, strict)

    # -- printing -------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        lines = [f"({name}): " + _indent(repr(module), 2)
                 for name, module in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{self._get_name()}({extra})"
        body = ([extra] if extra else []) + lines
        return self._get_name() + "(\n  " + "\n  ".join(body) + "\n)"


class RemovableHandle:
    """What ``register_forward_hook`` returns; ``remove()`` unregisters the
    hook (idempotent). Also a context manager that removes it on exit."""

    _next_id = 0

    def __init__(self, hooks, hook):
        self.hooks_dict = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self):
        self.hooks_dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


def _check_name(op, name):
    """PyTorch refuses "" and "." (the state-dict key separator); nnlite also
    refuses "/", which HDF5 reads as a group separator, so a checkpoint with
    such a key would save but never load."""
    if not isinstance(name, str):
        raise TypeError(f"{op}: name must be a str, got {type(name).__name__}")
    if name == "" or "." in name or "/" in name:
        raise InvalidNameError(f"{op}: name {name!r} must be non-empty and contain no '.' "
                               f"(the state-dict key separator) and no '/' (the HDF5 path "
                               f"separator of checkpoints)")


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _indent(text, spaces):
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])


def _converted(array, device, dtype):
    if device is not None and _device.device_of(array) != device:
        array = _device.move(array, device)
    if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
        array = array.astype(dtype)
    return array
