"""Sequential, ModuleList and ModuleDict: modules that hold modules.

Children are named "0", "1", ... so state_dict keys match PyTorch's
("0.weight", "features.3.bias").
"""
from collections import OrderedDict

from nnlite.nn.module import Module


def _index(op, length, idx):
    if not isinstance(idx, int):
        raise TypeError(f"{op}: index must be an int or a slice, got {type(idx).__name__}")
    if not -length <= idx < length:
        raise IndexError(f"{op}: index {idx} is out of range for {length} modules")
    return idx % length


class _Indexed(Module):
    """Shared list behaviour of Sequential and ModuleList."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def _renumber(self, modules):
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)._from_items(list(self._modules.items())[idx])
        key = list(self._modules)[_index(f"{self._get_name()}[]", len(self), idx)]
        return self._modules[key]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(f"{self._get_name()}[]=", len(self), idx)]
        self.add_module(key, module)

    def __delitem__(self, idx):
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(f"del {self._get_name()}[]", len(self), idx)]
        self._renumber(modules)  # PyTorch keeps the names contiguous

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]


class Sequential(_Indexed):
    """Chain of modules: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 2))``,
    or ``Sequential(OrderedDict(fc1=..., act=...))`` for named children."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            super().__init__()
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            super().__init__(args)

    @classmethod
    def _from_items(cls, items):
        return cls(OrderedDict(items))

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class ModuleList(_Indexed):
    """A list of modules whose parameters the parent registers."""

    def __init__(self, modules=None):
        super().__init__(() if modules is None else modules)

    @classmethod
    def _from_items(cls, items):
        return cls(module for _, module in items)

    def __iadd__(self, modules):
        return self.extend(modules)


class ModuleDict(Module):
    """A dict of modules whose parameters the parent registers."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module
