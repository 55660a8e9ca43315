"""``nl.summary``: per-layer shapes, parameters, FLOPs and memory of a model,
and whether it fits a device-memory budget (the TK1 profile by default).

Figures are measured, not estimated: a forward pass runs at the requested
batch size with forward hooks on every layer, and memory is the ``nbytes`` of
the arrays that pass actually allocated. When the parameters are not
allocated (a model built inside ``nl.nn.meta()``) or alone exceed the budget,
the forward is "shapes only": each layer with weights (Linear, Conv2d,
BatchNorm, QuantizedLinear) is replaced by its shape rule, which returns a
zero array of the output's shape, and everything between them (ReLU, pooling,
reshapes) runs for real, so output shapes, FLOPs and activations are the same
as a real forward's, for the cost of the activations alone.

Conventions
-----------
- Rows: every module without children (and any module that owns parameters
  or buffers itself), in the order the forward first calls them (registration
  order when the forward does not run; rows it never calls come last). A
  module called several times in
  one forward (an unrolled cell) is one row; its FLOPs and memory add up over
  the calls, its output shape is the last call's.
- Parameters: the row's own parameters, and the weights it stores in another
  dtype as buffers (a quantised Linear's int8 / float16 weight, listed in the
  layer's ``_keep_dtype``); the column sums to the model's total.
- FLOPs: 2 x multiply-adds of Conv2d, Linear, LSTM, GRU, LSTMCell and GRUCell
  (bias additions, activations, normalisation and pooling are not counted and
  show "-"). For a recurrent layer: 2 * N * T * gates * H * (input + H) per
  layer and direction.
- Activation memory: the bytes of the distinct arrays a row's outputs live in
  that no earlier row produced (a reshape or a returned input costs 0 B), so
  the column sums to the forward total: all layer outputs kept at once. The
  input batch is listed separately.
- train=True runs the forward in training mode with autograd recording and
  then walks the graph: "kept for backward" is the bytes of every distinct
  array the graph holds (op inputs and the arrays the ops saved), parameters
  and buffers excluded, the output included. It then runs the backward (of
  the sum of the outputs; gradients and statistics are put back afterwards)
  and measures, with tracemalloc (NumPy reports its allocations to it) or on
  a GPU with the peak of CuPy's memory pool (nnlite.cuda.max_memory_allocated;
  the budget allocator sees every allocation), the
  peak of everything the forward and backward allocated: what the graph
  keeps, the parameter gradients and the transients (activation gradients in
  flight, the convolution's column buffers), less what the backward frees as
  it goes. Training memory = parameters + buffers + that peak (never less
  than kept for backward + gradients). In a shapes-only forward
  it is kept for backward + gradients, an underestimate (the seed CRNN at
  batch 32: 299 MiB against a measured 397 MiB before conv2d kept its
  buffers, 425 MiB since). No optimiser state is
  included (SGD with momentum adds one parameter-sized copy, Adam two). If
  tracemalloc is already tracing, its peak is reset (on a GPU, the pool's
  peak is, as torch.cuda.reset_peak_memory_stats does).
- Workspace: the largest transient buffer one layer allocates inside its
  forward and frees before returning (a quantised Linear's float32
  dequantisation chunk, ``layer.workspace_bytes(input_shape)``), added once
  to the required memory: layers run one at a time.
- Budget: `memory` (bytes or a string such as "1.5GiB"; default the TK1
  profile, nnlite.cuda.TK1_MEMORY_BUDGET). Parameters + buffers alone are
  compared first (``params_fit``).
- run: None (default) runs a real forward when the parameters are allocated
  and fit the budget, else a shapes-only forward (a 2 GB DictNet forward is
  not something a summary should cost, and a meta model cannot run one);
  True runs a real forward whenever the parameters are allocated; False
  runs none. Without a forward, output shapes, FLOPs and activations are
  unknown and ``fits`` is False when the parameters do not fit, else None
  (unknown). ``totals["forward"]`` says which ran: "real", "shapes" or None.

The model is left as it was: its train/eval modes, buffers (BatchNorm
running statistics) and nnlite's CPU random state are restored afterwards.
"""
import numpy as np

from nnlite import cuda as _cuda
from nnlite import device as _device
from nnlite import random as _random
from nnlite.tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad

_GATES = {"LSTM": 4, "GRU": 3, "LSTMCell": 4, "GRUCell": 3}


class Row:
    """One layer of the summary."""

    def __init__(self, path, module):
        self.path = path or "(model)"
        self.type = type(module).__name__
        own = [p for p in module._parameters.values() if p is not None] + \
            _stored_weights(module)
        self.params = sum(p.numel() for p in own)
        self.param_bytes = sum(int(p.data.nbytes) for p in own)
        self.output_shape = None
        self.flops = None
        self.activation_bytes = None
        self.workspace_bytes = None
        self.calls = 0
        self.first_call = None  # position among the forward's module calls

    def as_dict(self):
        return dict(path=self.path, type=self.type, output_shape=self.output_shape,
                    params=self.params, param_bytes=self.param_bytes, flops=self.flops,
                    activation_bytes=self.activation_bytes,
                    workspace_bytes=self.workspace_bytes, calls=self.calls)


class ModelSummary:
    """What ``summary`` returns: ``rows`` (a list of Row), ``totals`` (a dict)
    and ``fits`` (True, False, or None when unknown); ``str()`` is the table."""

    def __init__(self, name, rows, totals, fits):
        self.name, self.rows, self.totals, self.fits = name, rows, totals, fits

    def __repr__(self):
        return (f"<ModelSummary {self.name}: {self.totals['params']:,} parameters, "
                f"fits={self.fits}>")

    def __str__(self):
        return _format_table(self)


def summary(model, input_shape, batch=1, train=False, memory=None, dtype=np.float32,
            run=None):
    """Summarise `model` for inputs of shape (batch, *input_shape); see the
    module docstring for what each figure means."""
    input_shape = _check_arguments(input_shape, batch)
    budget = _cuda.TK1_MEMORY_BUDGET if memory is None else _cuda.parse_bytes(memory)
    parameters = list(model.parameters())
    stored = [w for m in model.modules() for w in _stored_weights(m)]
    stored_ids = {id(w) for w in stored}
    buffers = [b for b in model.buffers() if id(b) not in stored_ids]
    weights = parameters + stored
    totals = {
        "params": sum(p.numel() for p in weights),
        "trainable_params": sum(p.numel() for p in parameters if p.requires_grad),
        "param_bytes": sum(int(p.data.nbytes) for p in weights),
        "buffer_bytes": sum(int(b.data.nbytes) for b in buffers),
        "gradient_bytes": sum(int(p.data.nbytes) for p in parameters if p.requires_grad),
        "budget": budget, "batch": batch, "input_shape": (batch,) + input_shape,
        "train": bool(train), "ran_forward": False, "forward": None,
        "meta": any(_device.is_meta(t.data) for t in weights),
    }
    resident = totals["param_bytes"] + totals["buffer_bytes"]
    totals["params_fit"] = resident <= budget
    rows, owners_of_row = _rows(model)
    if run is False:
        mode = None
    elif totals["meta"] or (run is None and not totals["params_fit"]):
        mode = "shapes"
    else:
        mode = "real"
    if mode is not None:
        try:
            _run_forward(model, rows, owners_of_row, totals, dtype, train, mode == "shapes")
        except ShapeRuleMissing:
            if run:
                raise
            mode = None
            for row in rows:  # a partial shapes-only pass: forget what it recorded
                row.output_shape = row.flops = row.activation_bytes = None
                row.workspace_bytes, row.calls, row.first_call = None, 0, None
    totals["forward"] = mode
    if mode is not None:
        # Execution order reads like the network; sorted() keeps registration
        # order among rows the forward never called.
        never = len(rows)
        rows = sorted(rows, key=lambda r: never if r.first_call is None else r.first_call)
        if train:
            required = resident + max(totals["gradient_bytes"]
                                      + totals["kept_for_backward_bytes"],
                                      totals.get("training_peak_bytes") or 0)
        else:
            required = resident + totals["input_bytes"] + totals["activation_bytes"]
        required += totals["workspace_bytes"]
        totals["required_bytes"] = required
        fits = required <= budget
    else:
        totals["required_bytes"] = None
        fits = False if not totals["params_fit"] else None
    return ModelSummary(type(model).__name__, rows, totals, fits)


class ShapeRuleMissing(ValueError):
    """A shapes-only forward met a layer with weights and no shape rule."""


def _stored_weights(module):
    """The buffers `module` keeps as weights in a storage dtype (``_keep_dtype``)."""
    return [module._buffers[name] for name in getattr(module, "_keep_dtype", ())
            if module._buffers.get(name) is not None]


def _check_arguments(input_shape, batch):
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    try:
        input_shape = tuple(int(n) for n in input_shape)
    except TypeError:
        raise TypeError(f"summary: input_shape must be a tuple of ints such as (1, 32, 128) "
                        f"(the batch size is separate), got {input_shape!r}") from None
    if not input_shape or min(input_shape) <= 0:
        raise ValueError(f"summary: input_shape must be non-empty positive sizes, got "
                         f"{input_shape}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
        raise ValueError(f"summary: batch must be a positive int, got {batch!r}")
    return input_shape


def _rows(model):
    rows, modules = [], []
    for path, module in model.named_modules():
        has_children = any(True for _ in module.children())
        owns_state = any(v is not None for v in module._parameters.values()) or \
            any(v is not None for v in module._buffers.values())
        if not has_children or owns_state:
            rows.append(Row(path, module))
            modules.append(module)
    return rows, modules


def _run_forward(model, rows, modules, totals, dtype, train, shapes_only):
    device = next((p.device for p in model.parameters() if p.device != "meta"), "cpu")
    xp = _device.xp(device)
    modes = [(m, m.training) for m in model.modules()]
    # A forward may update buffers (BatchNorm's running statistics); stored
    # weights (a quantised Linear's) it never writes, and copying them would
    # double the memory of a compressed model.
    stored = {id(w) for m in model.modules() for w in _stored_weights(m)}
    saved_buffers = [(b, b.data.copy()) for b in model.buffers()
                     if not _device.is_meta(b.data) and id(b) not in stored]
    rng_state = _random.generator().bit_generator.state
    seen = {}  # id(owner array) -> owner, kept referenced so ids stay unique
    handles, tracer = [], None
    replaced = []
    call_counter = [0]
    try:
        for row, module in zip(rows, modules):
            handles.append(module.register_forward_hook(_recorder(row, seen, call_counter)))
            if shapes_only and _has_weights(module):
                rule = _shape_rule(module)
                object.__setattr__(module, "forward", _shape_forward(module, rule))
                replaced.append(module)
        tracer = None
        if train and not shapes_only:
            from nnlite.functional.conv import release_conv_buffers
            release_conv_buffers()  # kept from earlier calls: the trace must see them made
            tracer = _Tracer() if device == "cpu" else _DeviceTracer()
        x = Tensor(_random.normal(xp, totals["input_shape"], dtype=np.dtype(dtype)))
        seen[id(_owner(x.data))] = _owner(x.data)
        totals["input_bytes"] = int(_owner(x.data).nbytes)
        model.train(bool(train))
        with (enable_grad() if train else no_grad()):
            output = model(x)
        outputs = _tensors(output)
        totals["output_shape"] = _shape_text(outputs)
        totals["output_bytes"] = _distinct_bytes(t.data for t in outputs)
        totals["activation_bytes"] = sum(r.activation_bytes or 0 for r in rows)
        totals["workspace_bytes"] = max([r.workspace_bytes or 0 for r in rows] + [0])
        totals["flops"] = sum(r.flops or 0 for r in rows)
        if train:
            resident = {id(_owner(t.data)) for t in list(model.parameters())
                        + list(model.buffers())}
            totals["kept_for_backward_bytes"] = _graph_bytes(outputs, resident)
            totals["training_peak_bytes"] = None
            if tracer is not None:
                seen.clear()  # references of the summary's own: the backward may free them
                x = output = None
                totals["training_peak_bytes"] = _backward(model, outputs, tracer)
                totals["peak_measured_by"] = ("tracemalloc" if isinstance(tracer, _Tracer)
                                              else "CuPy pool")
        totals["ran_forward"] = True
    finally:
        if tracer is not None:
            tracer.stop()
        for handle in handles:
            handle.remove()
        for module in replaced:
            del module.__dict__["forward"]
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
        for buffer, data in saved_buffers:
            buffer.data[...] = data
        _random.generator().bit_generator.state = rng_state


class _Tracer:
    """tracemalloc from here on: the peak of what was allocated since."""

    def __init__(self):
        import tracemalloc
        self.tracemalloc = tracemalloc
        self.started = not tracemalloc.is_tracing()
        if self.started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]

    def peak(self):
        return max(0, self.tracemalloc.get_traced_memory()[1] - self.base)

    def stop(self):
        if self.started and self.tracemalloc.is_tracing():
            self.tracemalloc.stop()
        self.started = False


class _DeviceTracer:
    """The GPU's counterpart of _Tracer: the peak of CuPy's pool (which every
    CuPy allocation goes through) over what was in use at the start."""

    def __init__(self):
        _cuda.synchronize()
        _cuda.reset_peak_memory_stats()
        self.base = _cuda.memory_allocated()

    def peak(self):
        _cuda.synchronize()
        return max(0, _cuda.max_memory_allocated() - self.base)

    def stop(self):
        pass


def _backward(model, outputs, tracer):
    """Runs the backward of sum(outputs) and returns the peak of what the
    forward and backward allocated (the parameters' .grad are put back)."""
    differentiable = [t for t in outputs if t.requires_grad]
    saved = [(p, p.grad) for p in model.parameters()]
    try:
        if differentiable:
            for p, _ in saved:
                p.grad = None
            loss = differentiable[0].sum()
            for t in differentiable[1:]:
                loss = loss + t.sum()
            loss.backward()
        return tracer.peak()
    finally:
        for p, grad in saved:
            p.grad = grad


def _has_weights(module):
    return any(p is not None for p in module._parameters.values()) or \
        bool(_stored_weights(module))


def _linear_shape(module, x):
    return tuple(x.shape[:-1]) + (module.out_features,)


def _conv_shape(module, x):
    from nnlite.functional.conv import conv_padding
    from nnlite.kernels.shapes import output_size
    top, bottom, left, right = conv_padding(module.padding, module.kernel_size, module.stride,
                                            module.dilation)
    height = output_size(x.shape[2], module.kernel_size[0], module.stride[0], top, bottom,
                         module.dilation[0], op="conv2d")
    width = output_size(x.shape[3], module.kernel_size[1], module.stride[1], left, right,
                        module.dilation[1], op="conv2d")
    return (x.shape[0], module.out_channels, height, width)


def _same_shape(module, x):
    return tuple(x.shape)


# Output shape of a layer with weights from its input, for shapes-only forwards.
SHAPE_RULES = {"Linear": _linear_shape, "QuantizedLinear": _linear_shape, "NAC": _linear_shape,
               "NALU": _linear_shape, "Conv2d": _conv_shape, "BatchNorm1d": _same_shape,
               "BatchNorm2d": _same_shape}


def _batch_norm_saves(module, x):
    # F.batch_norm keeps the normalised input and one inverse std per channel.
    return [tuple(x.shape), (module.num_features,)] if module.training else []


# Arrays (by shape) a layer's backward keeps besides its input, which a
# shapes-only training summary allocates too, so "kept for backward" agrees.
SHAPE_SAVES = {"BatchNorm1d": _batch_norm_saves, "BatchNorm2d": _batch_norm_saves}


def _shape_rule(module):
    name = type(module).__name__
    if name not in SHAPE_RULES:
        raise ShapeRuleMissing(f"summary: a shapes-only forward (the parameters are on the "
                               f"meta device or exceed the budget) cannot pass {name}, which "
                               f"has weights and no shape rule; materialise the model "
                               f"(nl.nn.materialize) and pass run=True")
    return SHAPE_RULES[name]


class _ShapeOnly(Function):
    """A layer's output as zeros of its shape. Its inputs (the layer's input
    and weights) are recorded, so a training summary counts the input as
    kept for backward, as the real layer's graph node would."""

    @staticmethod
    def forward(ctx, x, *weights, shape, saves=()):
        xp = _device.xp_of(x)
        ctx.kept = [xp.zeros(kept, dtype=x.dtype) for kept in saves]
        return xp.zeros(shape, dtype=x.dtype)

    @staticmethod
    def backward(ctx, gy):  # pragma: no cover - summaries never run backward
        raise RuntimeError("a shapes-only summary forward has no backward")


def _shape_forward(module, rule):
    def forward(x, *args, **kwargs):
        trainable = any(p is not None and p.requires_grad
                        for p in module._parameters.values())
        # An empty stand-in for the weights (which may be on the meta device):
        # it makes the node recorded exactly when the real layer's would be.
        anchor = Tensor(_device.xp_of(x.data).zeros((0,), x.dtype), requires_grad=trainable)
        saves = SHAPE_SAVES.get(type(module).__name__)
        saves = saves(module, x) if saves is not None and is_grad_enabled() else ()
        return _ShapeOnly.apply(x, anchor, shape=rule(module, x), saves=saves)
    return forward


def _recorder(row, seen, call_counter):
    def hook(module, inputs, output):
        outputs = _tensors(output)
        if row.first_call is None:
            row.first_call = call_counter[0]
        call_counter[0] += 1
        row.calls += 1
        row.output_shape = _shape_text(outputs)
        new_bytes = 0
        for t in outputs:
            owner = _owner(t.data)
            if id(owner) not in seen:
                seen[id(owner)] = owner
                new_bytes += int(owner.nbytes)
        row.activation_bytes = (row.activation_bytes or 0) + new_bytes
        workspace = getattr(module, "workspace_bytes", None)
        if callable(workspace) and inputs and isinstance(inputs[0], Tensor):
            row.workspace_bytes = max(row.workspace_bytes or 0,
                                      int(workspace(tuple(inputs[0].shape))))
        flops = _flops(module, inputs, outputs)
        if flops is not None:
            row.flops = (row.flops or 0) + flops
    return hook


def _flops(module, inputs, outputs):
    name = type(module).__name__
    if name == "Conv2d" and outputs:
        kh, kw = module.kernel_size
        return 2 * outputs[0].numel() * module.in_channels * kh * kw // \
            getattr(module, "groups", 1)
    if name in ("Linear", "QuantizedLinear") and outputs:
        return 2 * outputs[0].numel() * module.in_features
    if name in ("LSTM", "GRU") and inputs and isinstance(inputs[0], Tensor):
        x = inputs[0]
        steps, batch = (x.shape[0], 1) if x.ndim == 2 else \
            ((x.shape[1], x.shape[0]) if module.batch_first else x.shape[:2])
        directions = 2 if module.bidirectional else 1
        hidden, total = module.hidden_size, 0
        for layer in range(module.num_layers):
            size = module.input_size if layer == 0 else hidden * directions
            total += directions * 2 * batch * steps * _GATES[name] * hidden * (size + hidden)
        return total
    if name in ("LSTMCell", "GRUCell") and inputs and isinstance(inputs[0], Tensor):
        batch = inputs[0].shape[0] if inputs[0].ndim == 2 else 1
        hidden = module.hidden_size
        return 2 * batch * _GATES[name] * hidden * (module.input_size + hidden)
    return None


def _tensors(value):
    """The Tensors in a module's output (a Tensor, or nested tuples/lists/dicts)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def _owner(array):
    """The array that owns `array`'s memory (views point at it through .base)."""
    while getattr(array, "base", None) is not None and hasattr(array.base, "nbytes") \
            and not isinstance(array.base, (bytes, bytearray, memoryview)):
        array = array.base
    return array


def _distinct_bytes(arrays, exclude=()):
    owners = {}
    for array in arrays:
        owner = _owner(array)
        if id(owner) not in exclude:
            owners[id(owner)] = owner
    return sum(int(o.nbytes) for o in owners.values())


def _graph_bytes(outputs, resident):
    """Bytes of the distinct arrays alive for backward: the outputs, and what
    the autograd graph behind them holds (every op's tensor inputs, and its
    context's saved arrays and attributes), parameters and buffers excluded."""
    arrays, visited = [t.data for t in outputs], set()
    stack = [t._node[0] for t in outputs if t._node is not None]
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for t in node.inputs:
            if t is None:
                continue
            arrays.append(t.data)
            if t._node is not None:
                stack.append(t._node[0])
        _collect_arrays(node.ctx.__dict__.values(), arrays)
    return _distinct_bytes(arrays, exclude=resident)


def _collect_arrays(values, found):
    for value in values:
        if isinstance(value, Tensor):
            found.append(value.data)
        elif isinstance(value, np.ndarray) or _device.is_device_array(value):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            _collect_arrays(value, found)
        elif isinstance(value, dict):
            _collect_arrays(value.values(), found)


def _shape_text(tensors):
    shapes = [str(tuple(t.shape)) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


# ----------------------------------------------------------------- table --

def _format_table(result):
    totals = result.totals
    headers = ("Layer", "Type", "Output shape", "Param #", "FLOPs", "Activations")
    body = []
    for row in result.rows:
        calls = f" x{row.calls}" if row.calls > 1 else ""
        body.append((row.path, row.type + calls, row.output_shape or "-", f"{row.params:,}",
                     _count(row.flops), _bytes(row.activation_bytes)))
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(headers)]
    right = (False, False, False, True, True, True)

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    rule = "=" * len(line(headers))
    out = [f"Model: {result.name}, input {totals['input_shape']}, "
           f"{'training' if totals['train'] else 'inference'}", rule, line(headers),
           rule.replace("=", "-")]
    out += [line(r) for r in body]
    out.append(rule)
    out += _totals_lines(result)
    return "\n".join(out)


def _totals_lines(result):
    t = result.totals
    where = " (meta: not allocated)" if t.get("meta") else ""
    lines = [f"Total params: {t['params']:,} ({_bytes(t['param_bytes'])}){where}",
             f"Trainable params: {t['trainable_params']:,}",
             f"Buffers: {_bytes(t['buffer_bytes'])}"]
    if t["ran_forward"]:
        lines += [f"FLOPs (2 x multiply-adds, conv/linear/recurrent): {_count(t['flops'])}",
                  f"Input: {_bytes(t['input_bytes'])}",
                  f"Forward activations (all layer outputs): {_bytes(t['activation_bytes'])}"]
        if t["workspace_bytes"]:
            lines.append(f"Largest layer workspace (dequantisation): "
                         f"{_bytes(t['workspace_bytes'])}")
        if t["train"]:
            lines += [f"Gradients: {_bytes(t['gradient_bytes'])}",
                      f"Kept for backward (autograd graph): "
                      f"{_bytes(t['kept_for_backward_bytes'])}"]
            if t.get("training_peak_bytes") is not None:
                lines.append(f"Forward + backward peak (measured, "
                             f"{t.get('peak_measured_by', 'tracemalloc')}): "
                             f"{_bytes(t['training_peak_bytes'])}")
        what = "training (no optimiser state)" if t["train"] else "inference"
        lines.append(f"Required for {what}: {_bytes(t['required_bytes'])}")
        if t["forward"] == "shapes":
            lines.append("Forward: shapes only (parameters not allocated or over budget; "
                         "layers with weights replaced by their shape rules)")
    else:
        lines.append("Forward not run: output shapes, FLOPs and activations unknown")
    budget = _bytes(t["budget"])
    lines.append(f"Parameters + buffers vs budget {budget}: "
                 f"{'fit' if t['params_fit'] else 'DO NOT FIT'}")
    verdict = {True: "fits", False: "DOES NOT FIT", None: "unknown (forward not run)"}
    lines.append(f"Verdict for budget {budget}: {verdict[result.fits]}")
    return lines


def _bytes(nbytes):
    if nbytes is None:
        return "-"
    return f"{_cuda.format_bytes(nbytes)}" if nbytes >= 1024 else f"{nbytes} B"


def _count(n):
    if n is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)
