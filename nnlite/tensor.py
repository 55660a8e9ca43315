"""Tensor, Function and the define-by-run autograd engine.

A ``Tensor`` wraps one raw array (NumPy on the CPU, CuPy on the GPU). Every
differentiable op is a ``Function`` whose ``forward`` and ``backward`` work on
raw arrays; ``Function.apply`` unwraps tensors, runs ``forward``, and, when a
gradient is needed, records a node that ``Tensor.backward`` later visits in
reverse topological order. The ops themselves live in ``nnlite.functional``;
this module knows none of them.
"""
import threading
from contextlib import contextmanager

import numpy as np

from nnlite import device as _device
from nnlite.errors import AnomalyError, DeviceMismatchError

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(mode):
    previous = is_grad_enabled()
    _state.grad_enabled = bool(mode)
    return previous


@contextmanager
def no_grad():
    """Run ops without recording them for backward (evaluation, optimiser steps)."""
    previous = _set_grad_enabled(False)
    try:
        yield
    finally:
        _set_grad_enabled(previous)


@contextmanager
def enable_grad():
    previous = _set_grad_enabled(True)
    try:
        yield
    finally:
        _set_grad_enabled(previous)


_anomaly = {"enabled": False}


def set_detect_anomaly(mode):
    """When on, every op's forward outputs and backward gradients are checked
    for NaN, and the first op to produce one raises ``AnomalyError``."""
    _anomaly["enabled"] = bool(mode)


def is_anomaly_enabled():
    return _anomaly["enabled"]


def _has_nan(array):
    return array.dtype.kind in "fc" and bool(_device.xp_of(array).isnan(array).any())


# ----------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------

_FLOAT_KINDS = "fc"


def _as_array(data, dtype, device):
    """Wrap user data as an array on `device`, without copying when it is
    already an array of the right dtype there. Python floats become float32
    (the compute type); arrays keep their dtype, so float64 stays float64."""
    if isinstance(data, Tensor):
        data = data.data
    if _device.is_meta(data) or device == "meta":
        if not _device.is_meta(data):
            data = _device.move(np.asarray(data) if not hasattr(data, "shape") else data,
                                "meta")
        return data if dtype is None else data.astype(dtype)
    if isinstance(data, np.generic):  # NumPy reductions return scalars: keep their dtype
        data = np.asarray(data)
    if not (isinstance(data, np.ndarray) or _device.is_device_array(data)):
        data = np.asarray(data)
        if dtype is None and data.dtype == np.float64:
            data = data.astype(np.float32)
    if dtype is not None and data.dtype != np.dtype(dtype):
        data = data.astype(dtype)
    if _device.device_of(data) != device:
        data = _device.move(data, device)
    return data


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    Attributes follow PyTorch: ``data`` (the raw array), ``grad`` (a Tensor or
    None), ``requires_grad``, ``shape``, ``dtype``, ``device`` ("cpu" or "cuda").
    """

    __array_priority__ = 1000  # make ndarray + Tensor defer to Tensor.__radd__

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        if device is None:
            raw = data.data if isinstance(data, Tensor) else data
            device = _device.device_of(raw) if (_device.is_device_array(raw)
                                                or _device.is_meta(raw)) else "cpu"
        self.data = _as_array(data, dtype, _device.canonical(device))
        self.grad = None
        self._node = None  # (Node, output index) when produced by a recorded op
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # -- basic properties ----------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return _device.device_of(self.data)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return None if self._node is None else self._node[0]

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def requires_grad_(self, mode=True):
        if mode and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients, "
                f"got dtype {self.data.dtype}")
        if not self.is_leaf and not mode:
            raise RuntimeError("requires_grad_: cannot turn off gradients of a non-leaf "
                               "tensor; use .detach()")
        self.requires_grad = bool(mode)
        return self

    def retain_grad(self):
        """Keep ``.grad`` on a non-leaf tensor after backward (leaves always keep it)."""
        self._retains_grad = True
        return self

    def register_grad_ready_hook(self, hook):
        """Call ``hook(tensor)`` during each backward that reaches this leaf,
        as soon as its gradient from that backward is complete (every node
        that could add to it has run), while the rest of the graph is still
        being differentiated. This is where data-parallel training starts
        the all-reduce of a gradient bucket (nnlite.distributed), so that
        communication overlaps the remaining backward.

        Unlike PyTorch's post-accumulate-grad hook it also fires when no
        gradient flowed into the leaf in that backward (``.grad`` is then
        unchanged, possibly None). Returns a handle whose ``remove()``
        unregisters the hook."""
        if not self.is_leaf:
            raise RuntimeError("register_grad_ready_hook: only leaf tensors (parameters) "
                               "accumulate a .grad; this tensor has a grad_fn")
        if not callable(hook):
            raise TypeError(f"register_grad_ready_hook: hook must be callable, got "
                            f"{type(hook).__name__}")
        hooks = self.__dict__.setdefault("_grad_ready_hooks", {})
        return _HookHandle(hooks, hook)

    # -- conversion -----------------------------------------------------------
    def numpy(self):
        """The data as a NumPy array (copied from the GPU if needed). Shares
        memory with the tensor on the CPU, as in PyTorch."""
        return _device.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(tensor), np.stack([tensors]) ...: the values as numpy()
        gives them (without this NumPy would read a tensor element by element
        through indexing, each element an autograd op). copy=False is refused
        where a copy cannot be avoided (a GPU tensor, another dtype)."""
        array = self.numpy()
        if dtype is not None and np.dtype(dtype) != array.dtype:
            if copy is False:
                raise ValueError(f"Tensor.__array__: copy=False, but converting {array.dtype} "
                                 f"to {np.dtype(dtype)} needs a copy")
            return array.astype(dtype)
        if copy is False and array is not self.data:
            raise ValueError(f"Tensor.__array__: copy=False, but a {self.device} tensor's "
                             f"values must be copied to the CPU")
        return array.copy() if copy else array

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python "
                             f"scalar, got shape {self.shape}")
        return self.data.reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device=None, dtype=None):
        """A copy on `device` and/or with `dtype`; gradients flow back through it.
        Returns self when nothing changes."""
        from_device = self.device
        device = from_device if device is None else _device.canonical(device)
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if device == from_device and dtype == self.dtype:
            return self
        return _Convert.apply(self, device=device, dtype=dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def long(self):
        return self.to(dtype=np.int64)

    def astype(self, dtype):
        return self.to(dtype=dtype)

    def detach(self):
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor(self.data)

    def clone(self):
        return _Clone.apply(self)

    def __repr__(self):
        extra = ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.dtype != np.float32:
            extra += f", dtype={self.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{type(self._node[0]).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if _device.is_meta(self.data):
            return f"tensor(..., size={self.shape}{extra})"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}{extra})"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} "
                             f"elements is ambiguous")
        return bool(self.data)

    def __hash__(self):
        return id(self)

    # -- autograd -------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        `grad` may be omitted only for a one-element tensor (a loss)."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no grad_fn; "
                "did you create the graph under no_grad() or forget requires_grad=True?")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for a one-element "
                    f"(scalar) output, got shape {self.shape}; pass grad= of that shape")
            grad = _device.xp_of(self.data).ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            grad = _device.xp_of(self.data).asarray(grad, dtype=self.dtype)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: grad has shape {tuple(grad.shape)}, expected "
                                 f"the output's shape {self.shape}")
        run_backward(self, grad, retain_graph)


# ----------------------------------------------------------------------------
# Function and the graph
# ----------------------------------------------------------------------------


class Context:
    """What ``forward`` hands to ``backward``: saved arrays and flags."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._freed = False

    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_tensors(self):
        self.check_not_freed()
        return self._saved

    def check_not_freed(self):
        if self._freed:
            raise RuntimeError(
                "backward: trying to go through the graph a second time after its saved "
                "arrays were freed; pass retain_graph=True to the first backward()")


class Node:
    """One recorded application of a Function: its context and its inputs."""

    __slots__ = ("function", "ctx", "inputs", "n_outputs", "output_meta")

    def __init__(self, function, ctx, inputs, outputs):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the Tensors passed positionally (None for non-tensors)
        self.n_outputs = len(outputs)
        self.output_meta = [(o.shape, o.dtype) for o in outputs]

    @property
    def name(self):
        return self.function.__name__

    def __repr__(self):
        return f"<{self.name}Backward>"


class Function:
    """Base class of differentiable ops, spelled as in PyTorch::

        class Square(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x
            @staticmethod
            def backward(ctx, gy):
                x, = ctx.saved_tensors
                return 2 * x * gy

        y = Square.apply(t)

    ``forward`` receives raw arrays (NumPy or CuPy) for tensor arguments and
    returns an array or a tuple of arrays; ``backward`` receives one gradient
    array per output and returns one gradient (or None) per positional input.
    Keyword arguments are passed to ``forward`` unchanged and are not
    differentiable.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        tensors = [a if isinstance(a, Tensor) else None for a in args]
        devices = {t.device for t in tensors if t is not None}
        if len(devices) > 1:
            described = ", ".join(f"{type(a).__name__}{'' if t is None else '@' + t.device}"
                                  for a, t in zip(args, tensors))
            raise DeviceMismatchError(
                f"{cls.__name__}: inputs are on different devices ({described}); "
                f"expected all on one device, move them with .to(device)")
        needs = tuple(t is not None and t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(needs)
        ctx = Context(needs)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        result = cls.forward(ctx, *raw, **kwargs)
        is_tuple = isinstance(result, tuple)
        results = result if is_tuple else (result,)
        if _anomaly["enabled"]:
            for index, array in enumerate(results):
                if _has_nan(array):
                    raise AnomalyError(
                        f"anomaly detected: {cls.__name__}.forward produced NaN in output "
                        f"{index} (shape {tuple(array.shape)})")
        outputs = tuple(Tensor(r) for r in results)
        if record:
            node = Node(cls, ctx, tensors, results)
            for index, out in enumerate(outputs):
                if out.dtype.kind in _FLOAT_KINDS:
                    out.requires_grad = True
                    out._node = (node, index)
        return outputs if is_tuple else outputs[0]


class _Convert(Function):
    """Device and dtype conversion, differentiable both ways."""

    @staticmethod
    def forward(ctx, x, device, dtype):
        ctx.source = (_device.device_of(x), x.dtype)
        y = _device.move(x, device) if _device.device_of(x) != device else x
        return y.astype(dtype, copy=y is x)

    @staticmethod
    def backward(ctx, gy):
        source_device, source_dtype = ctx.source
        g = _device.move(gy, source_device) if _device.device_of(gy) != source_device else gy
        return g.astype(source_dtype, copy=False)


class _Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, gy):
        return gy


def sum_to_shape(grad, shape):
    """Sum a broadcast gradient back to `shape` (the input's shape)."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _broadcastable_to(grad_shape, shape):
    if len(grad_shape) < len(shape):
        return False
    tail = grad_shape[len(grad_shape) - len(shape):]
    return all(s == g or s == 1 for g, s in zip(tail, shape))


def _topological_order(root_node):
    """Nodes reachable from `root_node`, each after every node that consumes it."""
    order, visited = [], set()
    stack = [(root_node, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t._node is not None and id(t._node[0]) not in visited:
                stack.append((t._node[0], False))
    order.reverse()
    return order


def _accumulate_leaf(tensor, grad):
    current = tensor.grad
    if current is None:
        # Always a private copy: Functions may hand the same array to several
        # inputs (Add does), and users modify .grad in place (clipping).
        tensor.grad = Tensor(grad.copy())
        tensor.grad._private_grad = True
    elif current.__dict__.get("_private_grad") and current.data.shape == grad.shape and \
            current.data.dtype == grad.dtype:
        # Into the copy made above, as PyTorch accumulates: a new array per
        # contribution costs fresh pages, and an unrolled recurrent cell adds
        # one per step (deep_reader: five 75 MB LSTM weight gradients a step).
        # A .grad the user or the data-parallel reducer set (a view of its
        # buffer) is never written; it is replaced, as before.
        current.data += grad
    else:
        tensor.grad = Tensor(current.data + grad)


class _HookHandle:
    """What ``register_grad_ready_hook`` returns; ``remove()`` is idempotent."""
    _next_id = 0

    def __init__(self, hooks, hook):
        self.hooks, self.id = hooks, _HookHandle._next_id
        _HookHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self):
        self.hooks.pop(self.id, None)


def queue_backward_callback(callback):
    """Run ``callback()`` once the backward now in progress (on this thread)
    has visited every node, before ``backward()`` returns: data-parallel
    training waits there for its last gradient buckets. Only callable from
    inside a backward (a grad-ready hook or a Function's backward)."""
    stack = getattr(_state, "backward_callbacks", None)
    if not stack:
        raise RuntimeError("queue_backward_callback: no backward is running on this thread")
    stack[-1].append(callback)


def _grad_ready_schedule(order):
    """{index in `order`: [leaves]}: each leaf with grad-ready hooks under the
    last node that lists it as an input; after that node has run, nothing
    can add to the leaf's gradient any more."""
    last = {}
    for index, node in enumerate(order):
        for tensor in node.inputs:
            if tensor is not None and tensor._node is None and \
                    tensor.__dict__.get("_grad_ready_hooks"):
                last[id(tensor)] = (index, tensor)
    schedule = {}
    for index, tensor in last.values():
        schedule.setdefault(index, []).append(tensor)
    return schedule


def _grad_ready(tensor):
    for hook in list(tensor.__dict__.get("_grad_ready_hooks", {}).values()):
        hook(tensor)


def run_backward(root, grad, retain_graph=False):
    """Propagate `grad` (d loss / d root) to every leaf that requires grad,
    firing grad-ready hooks as leaves complete and then the callbacks that
    they (or Functions) queued."""
    stack = _state.__dict__.setdefault("backward_callbacks", [])
    stack.append([])
    try:
        _propagate(root, grad, retain_graph)
        callbacks = stack[-1]
        while callbacks:  # a callback may queue another
            callbacks.pop(0)()
    finally:
        stack.pop()


def _propagate(root, grad, retain_graph):
    if root._node is None:  # a leaf: its gradient is `grad` itself
        _accumulate_leaf(root, grad)
        if root.__dict__.get("_grad_ready_hooks"):
            _grad_ready(root)
        return
    root_node, root_index = root._node
    pending = {id(root_node): [None] * root_node.n_outputs}
    pending[id(root_node)][root_index] = grad
    order = _topological_order(root_node)
    ready = _grad_ready_schedule(order)
    for index, node in enumerate(order):
        out_grads = pending.pop(id(node), None)
        if out_grads is not None:
            _run_node(node, out_grads, pending, retain_graph)
        for leaf in ready.get(index, ()):
            _grad_ready(leaf)


def _run_node(node, out_grads, pending, retain_graph):
    grads_in = _call_backward(node, out_grads)
    if not retain_graph:
        node.ctx._saved = ()
        node.ctx._freed = True
    for tensor, g in zip(node.inputs, grads_in):
        if tensor is None or g is None or not tensor.requires_grad:
            continue
        g = _fit_gradient(node, tensor, g)
        if tensor._node is None:
            _accumulate_leaf(tensor, g)
            continue
        if tensor._retains_grad:
            _accumulate_leaf(tensor, g)
        parent, index = tensor._node
        slots = pending.setdefault(id(parent), [None] * parent.n_outputs)
        slots[index] = g if slots[index] is None else slots[index] + g


def _call_backward(node, out_grads):
    node.ctx.check_not_freed()
    xp = None
    filled = []
    for g, (shape, dtype) in zip(out_grads, node.output_meta):
        if g is None:  # an output that did not reach the loss: its gradient is zero
            if xp is None:
                xp = _device.xp_of(next(x for x in out_grads if x is not None))
            g = xp.zeros(shape, dtype=dtype)
        filled.append(g)
    grads_in = node.function.backward(node.ctx, *filled)
    if not isinstance(grads_in, tuple):
        grads_in = (grads_in,)
    if len(grads_in) < len(node.inputs):
        raise RuntimeError(
            f"{node.name}.backward returned {len(grads_in)} gradients, expected one per "
            f"positional input ({len(node.inputs)})")
    if _anomaly["enabled"]:
        for index, g in enumerate(grads_in):
            if g is not None and _has_nan(g):
                raise AnomalyError(
                    f"anomaly detected: {node.name}.backward produced NaN in the gradient "
                    f"of input {index}")
    return grads_in


def _fit_gradient(node, tensor, g):
    """Bring a Function's gradient to its input's shape and dtype, summing
    over broadcast dimensions, and refuse gradients that cannot belong."""
    if not hasattr(g, "shape"):  # a Python scalar from a hand-written backward
        g = _device.xp_of(tensor.data).full(tensor.shape, g, dtype=tensor.dtype)
    if tuple(g.shape) != tensor.shape:
        if not _broadcastable_to(tuple(g.shape), tensor.shape):
            raise RuntimeError(
                f"{node.name}.backward returned a gradient of shape {tuple(g.shape)} for "
                f"an input of shape {tensor.shape}; expected that shape or one that "
                f"broadcasts from it")
        g = sum_to_shape(g, tensor.shape)
    if g.dtype != tensor.dtype:
        g = g.astype(tensor.dtype)
    return g


# ----------------------------------------------------------------------------
# Construction helpers
# ----------------------------------------------------------------------------


def tensor(data, dtype=None, device=None, requires_grad=False):
    """Make a tensor from data (nested lists, scalars, NumPy or CuPy arrays).

    Python floats become float32; arrays keep their dtype (float64 stays
    float64), and the data is copied, as ``torch.tensor`` does. ``device``
    None keeps the data where it is, as ``torch.tensor`` does: a CuPy array
    (or a tensor on the GPU) stays on the GPU, anything else is on the CPU."""
    if isinstance(data, Tensor):
        data = data.data
    device = None if device is None else _device.canonical(device)
    if _device.is_device_array(data) or isinstance(data, np.ndarray):
        array = data.astype(dtype if dtype is not None else data.dtype, copy=True)
    else:
        array = np.array(data, dtype=dtype)
        if dtype is None and array.dtype == np.float64:
            array = array.astype(np.float32)
    return Tensor(array, device=device, requires_grad=requires_grad)


def clear_grad(tensor, set_to_none=True):
    """Forget or zero a tensor's ``.grad`` (what ``zero_grad`` does per
    parameter). Zeroing in place is safe: every leaf owns its gradient array."""
    if tensor.grad is None:
        return
    if set_to_none:
        tensor.grad = None
    else:
        tensor.grad.data[...] = 0


def raw(value):
    """The array behind a Tensor; anything else unchanged."""
    return value.data if isinstance(value, Tensor) else value


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory when possible; Tensors pass through."""
    if isinstance(data, Tensor) and dtype is None and (device is None or
                                                        _device.canonical(device) == data.device):
        return data
    return Tensor(data, dtype=dtype, device=device)
