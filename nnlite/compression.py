"""Compression of a trained model for a memory budget: the transforms behind
``nnlite compress`` (DESIGN.md, "Data, pretrained weights and memory").

Every ``nn.Linear`` of the model (or the ones named) is replaced in place by

* "svd":      ``nn.LowRankLinear`` by truncated SVD, rank per layer given
              (``ranks={"fc1": 256}``) or chosen for the budget;
* "fp16":     ``nn.QuantizedLinear`` with float16 weight storage;
* "int8":     ``nn.QuantizedLinear`` with int8 weights, one scale per output row;
* "svd+fp16", "svd+int8": low rank, then both factors stored that way.

Compute stays float32: quantised weights are dequantised chunk by chunk into a
bounded workspace right before each GEMM (nnlite.functional.quantized).

Choosing ranks for a budget ("svd" methods without ``ranks``): the budget is
the memory of batch-1 inference (``nl.summary``'s "required" figure). What the
candidate layers may store is the budget minus everything else that figure
counts (other parameters, buffers, input, activations, the dequantisation
workspace). Ranks are then handed out one at a time, each to the layer where
one more rank keeps the most of its weight's energy per byte (sigma_k^2 /
||W||_F^2 over the bytes of one rank of that layer, so every layer's spectrum
counts alike); the singular values fall along each layer, so this greedy
allocation is the optimum of that relative-energy objective. A layer whose
rank would reach in*out/(in+out) stays dense (stored as the method says),
since low rank would then cost more than the matrix. The relative Frobenius
error of every compressed weight is reported.

Checkpoints: a compressed model saves like any other (``nl.io.save``); the
structure is read back from the checkpoint's own keys and dtypes
(``plan_from_checkpoint``: "fc1.down.weight" means low rank, an int8 or
float16 "fc1.weight" means quantised), so checkpoints written later by the
Trainer (fine-tuning) load the same way. ``build_for_checkpoint`` builds the
model on the meta device, restructures it, and only then allocates: a
compressed DictNet never exists in float32.
"""
import heapq
import json
import os

import numpy as np

from nnlite import device as _device
from nnlite import nn
from nnlite.nn.compressed import (LowRankLinear, QuantizedLinear, block_rows, gram_spectrum,
                                  max_saving_rank, saves_memory, truncated_svd_factors)

METHODS = ("svd", "fp16", "int8", "svd+fp16", "svd+int8")
_STORAGE = {"svd": "float32", "fp16": "float16", "int8": "int8", "svd+fp16": "float16",
            "svd+int8": "int8"}
_ELEMENT_BYTES = {"float32": 4, "float16": 2, "int8": 1}


class CompressionError(ValueError):
    """A compression request that cannot be met (bad method, rank or budget)."""


# ------------------------------------------------------------- model access --

def get_module(model, path):
    module = model
    for name in path.split("."):
        child = module._modules.get(name) if hasattr(module, "_modules") else None
        if child is None:
            raise CompressionError(f"the model has no layer {path!r}")
        module = child
    return module


def set_module(model, path, new):
    """Replace the sub-module at dotted `path`, keeping its place among its
    siblings (a Sequential runs its children in that order)."""
    parent_path, _, name = path.rpartition(".")
    parent = get_module(model, parent_path) if parent_path else model
    if name not in parent._modules:
        raise CompressionError(f"the model has no layer {path!r}")
    parent._modules[name] = new


def linear_layers(model, names=None):
    """[(path, Linear)] of the plain nn.Linear layers (not those inside an
    already compressed layer), in registration order; `names` restricts them."""
    found = [(path, m) for path, m in model.named_modules()
             if type(m) is nn.Linear and path and not _inside_compressed(model, path)]
    if names is None:
        return found
    by_path = dict(found)
    missing = [n for n in names if n not in by_path]
    if missing:
        raise CompressionError(f"no Linear layer named {', '.join(missing)}; the model's are "
                               f"{', '.join(by_path) or 'none'}")
    return [(n, by_path[n]) for n in names]


def _inside_compressed(model, path):
    parts = path.split(".")
    for i in range(1, len(parts)):
        if isinstance(get_module(model, ".".join(parts[:i])), (LowRankLinear, QuantizedLinear)):
            return True
    return False


# ------------------------------------------------------------------ sizes --

def layer_bytes(in_features, out_features, storage="float32", rank=None, bias=True):
    """Bytes of a Linear's weights stored as `storage`, dense or at `rank`
    (float32 biases and int8 row scales included)."""
    element = _ELEMENT_BYTES[storage]
    scales = 4 if storage == "int8" else 0
    total = 4 * out_features if bias else 0
    if rank is None:
        return total + in_features * out_features * element + scales * out_features
    return total + rank * (in_features + out_features) * element + scales * (rank + out_features)


def _rank_cost(in_features, out_features, storage):
    return (in_features + out_features) * _ELEMENT_BYTES[storage] + \
        (4 if storage == "int8" else 0)


def choose_ranks(layers, target_bytes, storage="float32", spectra=None, max_ranks=None,
                 dense_ok=None):
    """{path: rank, or None for dense} for `layers` [(path, Linear)] so that
    their stored bytes fit `target_bytes` (see the module docstring).
    max_ranks {path: rank} caps ranks and dense_ok {path: bool} forbids the
    dense matrix (the workspace limits of _ranks_with_workspace)."""
    spectra = {} if spectra is None else spectra
    max_ranks, dense_ok = max_ranks or {}, dense_ok or {}
    energy, state, spent, heap = {}, {}, 0, []
    for path, layer in layers:
        out_features, in_features = layer.weight.shape
        if path not in spectra:
            spectra[path] = gram_spectrum(_device.to_numpy(layer.weight.data))
        values = spectra[path][0]
        energy[path] = values / (float(values.sum()) or 1.0)
        bias = layer.bias is not None
        if max_saving_rank(in_features, out_features) < 1:
            state[path] = None  # no rank saves memory: stays dense
            spent += layer_bytes(in_features, out_features, storage, bias=bias)
            continue
        state[path] = 1
        spent += layer_bytes(in_features, out_features, storage, 1, bias)
        _push_next(heap, path, layer, 1, energy[path], storage, max_ranks.get(path),
                   dense_ok.get(path, True))
    if spent > target_bytes:
        left = (f"the {_mib(target_bytes)} the budget leaves them" if target_bytes > 0 else
                f"what the budget leaves them: nothing (the rest of inference needs "
                f"{_mib(-target_bytes)} more than the budget)")
        raise CompressionError(f"the budget is too small: even rank 1 needs {_mib(spent)} for "
                               f"{', '.join(p for p, _ in layers)}, more than {left}")
    layer_of = dict(layers)
    while heap:
        _, path, cost, step = heapq.heappop(heap)
        if spent + cost > target_bytes:
            continue  # a cheaper step of another layer may still fit
        spent += cost
        state[path] = None if step == "dense" else state[path] + 1
        if state[path] is not None:
            _push_next(heap, path, layer_of[path], state[path], energy[path], storage,
                       max_ranks.get(path), dense_ok.get(path, True))
    return state


def _push_next(heap, path, layer, rank, energy, storage, max_rank=None, allow_dense=True):
    """Queue the next step of a layer at `rank`: one more rank while that
    still saves memory, else the switch to the dense matrix (which keeps all
    the remaining energy, for the bytes it costs beyond the current rank)."""
    out_features, in_features = layer.weight.shape
    cap = max_saving_rank(in_features, out_features)
    if rank < cap and rank < len(energy) and (max_rank is None or rank < max_rank):
        cost = _rank_cost(in_features, out_features, storage)
        heapq.heappush(heap, (-energy[rank] / cost, path, cost, "rank"))
        return
    if not allow_dense or rank < cap:
        return
    bias = layer.bias is not None
    cost = layer_bytes(in_features, out_features, storage, bias=bias) - \
        layer_bytes(in_features, out_features, storage, rank, bias)
    gain = float(energy[rank:].sum())
    heapq.heappush(heap, (-gain / max(cost, 1), path, max(cost, 0), "dense"))


def _mib(nbytes):
    from nnlite.cuda import format_bytes
    return format_bytes(max(0, int(nbytes)))


# --------------------------------------------------------------- compress --

def compress(model, method="int8", ranks=None, budget=None, layers=None, input_shape=None,
             batch=1):
    """Compress `model` in place by `method` (see the module docstring) and
    return a report: {"method", "layers": [{path, in_features, out_features,
    kind, rank, storage, bytes_before, bytes_after, relative_error}],
    "param_bytes_before", "param_bytes_after"}.

    ranks: {layer path: rank} for the svd methods (the other Linear layers
    stay dense, stored as the method says); else `budget` (bytes or "1.5GiB")
    with `input_shape` (without the batch) chooses them for batch-`batch`
    inference. `layers` restricts which Linear layers are touched."""
    if method not in METHODS:
        raise CompressionError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    storage = _STORAGE[method]
    low_rank = method.startswith("svd")
    candidates = linear_layers(model, layers)
    if not candidates:
        raise CompressionError("the model has no nn.Linear layer to compress")
    before = _param_bytes(model)
    plan_ranks, spectra = {}, {}  # spectra: {path: Gram eigen-decomposition}, computed once
    if low_rank:
        if ranks is not None:
            unknown = sorted(set(ranks) - {p for p, _ in candidates})
            if unknown:
                raise CompressionError(f"--rank names {', '.join(unknown)}, not among the Linear "
                                       f"layers {', '.join(p for p, _ in candidates)}")
            for path, layer in candidates:
                rank = ranks.get(path)
                if rank is not None:
                    out_features, in_features = layer.weight.shape
                    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or \
                            rank < 1 or not saves_memory(in_features, out_features, rank):
                        raise CompressionError(
                            f"rank {rank!r} for {path} ({in_features} -> {out_features}) saves "
                            f"no memory; a saving rank is 1 to "
                            f"{max_saving_rank(in_features, out_features)}")
                plan_ranks[path] = rank
        elif budget is not None:
            target = _layer_budget(model, candidates, budget, input_shape, batch)
            plan_ranks = _ranks_with_workspace(candidates, target, storage, spectra)
        else:
            raise CompressionError(f"method {method} needs ranks or a budget")
    report = {"method": method, "layers": []}
    for index in range(len(candidates)):
        path, layer = candidates[index]
        candidates[index] = None  # each replaced layer is freed as soon as it is done
        out_features, in_features = layer.weight.shape
        rank = plan_ranks.get(path) if low_rank else None
        weight = layer.weight.data
        if rank is not None:
            new = LowRankLinear.from_linear(layer, rank, spectrum=spectra.pop(path, None))
            if storage != "float32":
                new.down = QuantizedLinear.from_linear(new.down, storage)
                new.up = QuantizedLinear.from_linear(new.up, storage)
            kind = "lowrank"
        elif storage != "float32":
            new, kind = QuantizedLinear.from_linear(layer, storage), "quantized"
        else:
            new, kind = layer, "dense"
        error = relative_error(weight, new)
        set_module(model, path, new)
        report["layers"].append(dict(
            path=path, in_features=in_features, out_features=out_features, kind=kind,
            rank=rank, storage=storage,
            bytes_before=layer_bytes(in_features, out_features, "float32",
                                     bias=layer.bias is not None),
            bytes_after=_module_bytes(new), relative_error=error))
    report["param_bytes_before"] = before
    report["param_bytes_after"] = _param_bytes(model)
    return report


def _layer_budget(model, candidates, budget, input_shape, batch):
    """Bytes the candidate layers (and a dequantisation workspace) may take:
    the budget minus what batch-`batch` inference needs besides them (a
    shapes-only summary of the model)."""
    from nnlite import cuda
    from nnlite.model_summary import summary
    if input_shape is None:
        raise CompressionError("choosing ranks for a budget needs the model's input_shape")
    budget = cuda.parse_bytes(budget)
    result = summary(model, input_shape, batch=batch, memory=1)  # 1 byte: shapes only
    if result.totals["required_bytes"] is None:
        raise CompressionError("the summary could not run a shapes-only forward of this model")
    layer_total = sum(_module_bytes(layer) for _, layer in candidates)
    return budget - (result.totals["required_bytes"] - result.totals["workspace_bytes"]
                     - layer_total)


def _plan_workspace(candidates, ranks, storage):
    """The largest dequantisation workspace of the layers a plan makes (0 for float32)."""
    from nnlite.functional.quantized import workspace_bytes
    if storage == "float32":
        return 0
    largest = 0
    for path, layer in candidates:
        out_features, in_features = layer.weight.shape
        rank = ranks.get(path)
        shapes = [(out_features, in_features)] if rank is None else \
            [(rank, in_features), (out_features, rank)]
        largest = max([largest] + [workspace_bytes(o, i, 4) for o, i in shapes])
    return largest


def _ranks_with_workspace(candidates, target, storage, spectra=None):
    """choose_ranks with room for the dequantisation workspace of the layers
    it makes (quantised storage only). The workspace grows with the rank, so
    for each of a ladder of workspace sizes W (doubling from what rank 1
    needs up to what the dense layers need) the ranks are capped so that no
    layer needs more than W, the layers get target - W, and the plan keeping
    the most energy (summed over layers, each layer's share of its own) wins."""
    spectra = {} if spectra is None else spectra
    if storage == "float32":
        return choose_ranks(candidates, target, storage, spectra)
    smallest = _plan_workspace(candidates, {p: 1 for p, _ in candidates}, storage)
    largest = _plan_workspace(candidates, {p: None for p, _ in candidates}, storage)
    ladder, size = [], max(smallest, 1)
    while size < largest:
        ladder.append(size)
        size *= 2
    ladder.append(max(largest, smallest))
    best, best_score = None, None
    for workspace in ladder:
        caps, dense_ok = {}, {}
        for path, layer in candidates:
            out_features, in_features = layer.weight.shape
            caps[path] = _largest_rank_within(in_features, out_features, workspace)
            dense_ok[path] = _plan_workspace([(path, layer)], {path: None}, storage) <= \
                workspace
        if min(caps.values()) < 1:
            continue
        try:
            ranks = choose_ranks(candidates, target - workspace, storage, spectra, caps,
                                 dense_ok)
        except CompressionError:
            continue
        score = 0.0
        for path, _ in candidates:
            values = spectra[path][0]
            kept = values if ranks[path] is None else values[:ranks[path]]
            score += float(kept.sum()) / (float(values.sum()) or 1.0)
        if best_score is None or score > best_score:
            best, best_score = ranks, score
    if best is None:
        raise CompressionError(f"the budget is too small for {', '.join(p for p, _ in candidates)}"
                               f" with the dequantisation workspace they need (at least "
                               f"{_mib(smallest)}); raise the budget, give --rank values or "
                               f"lower nnlite.functional.set_dequant_workspace")
    return best


def _largest_rank_within(in_features, out_features, workspace):
    """The largest saving rank whose two factors each need a workspace <= `workspace`."""
    from nnlite.functional.quantized import workspace_bytes
    lo, hi = 0, max_saving_rank(in_features, out_features)
    while lo < hi:  # the factors' workspace grows with the rank
        mid = (lo + hi + 1) // 2
        if max(workspace_bytes(mid, in_features, 4),
               workspace_bytes(out_features, mid, 4)) <= workspace:
            lo = mid
        else:
            hi = mid - 1
    return lo


def relative_error(weight, layer):
    """||W - W_hat||_F / ||W||_F of a compressed layer's weight, a chunk of rows at a time."""
    weight = _device.to_numpy(weight)
    if isinstance(layer, nn.Linear):
        return 0.0
    if isinstance(layer, LowRankLinear):
        up, down = _dense_of(layer.up), _dense_of(layer.down)
        rows_of = lambda r0, r1: up[r0:r1] @ down  # noqa: E731
    else:
        stored = _device.to_numpy(layer.weight.data)
        scale = None if layer.weight_scale is None else \
            _device.to_numpy(layer.weight_scale.data).astype(np.float64)
        rows_of = lambda r0, r1: stored[r0:r1].astype(np.float64) * (  # noqa: E731
            1.0 if scale is None else scale[r0:r1, None])
    err = total = 0.0
    step = block_rows(weight.shape[1])
    for r0 in range(0, weight.shape[0], step):
        r1 = min(weight.shape[0], r0 + step)
        block = weight[r0:r1].astype(np.float64)
        err += float(((block - rows_of(r0, r1)) ** 2).sum())
        total += float((block ** 2).sum())
    return float(np.sqrt(err / total)) if total else 0.0


def _dense_of(layer):
    if isinstance(layer, QuantizedLinear):
        return layer.dense_weight()
    return _device.to_numpy(layer.weight.data).astype(np.float64)


def _module_bytes(module):
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(int(t.data.nbytes) for t in tensors)


def _param_bytes(model):
    return _module_bytes(model)


# ------------------------------------------------- structure and checkpoints --

def describe(model):
    """{path: {"kind": "lowrank"|"quantized", "rank", "storage"}} of the
    compressed layers of `model` (what plan_from_checkpoint reads back)."""
    plan = {}
    for path, module in model.named_modules():
        if _inside_compressed(model, path) if path else False:
            continue
        if isinstance(module, LowRankLinear):
            plan[path] = {"kind": "lowrank", "rank": module.rank, "storage": module.storage}
        elif isinstance(module, QuantizedLinear):
            plan[path] = {"kind": "quantized", "rank": None, "storage": module.storage}
    return plan


def plan_from_state(entries):
    """The compression plan of a state dict described as {key: (shape, dtype)}."""
    plan = {}
    for key, (shape, dtype) in entries.items():
        dtype = np.dtype(dtype)
        if key.endswith(".down.weight"):
            path = key[:-len(".down.weight")]
            storage = dtype.name if dtype.name in ("int8", "float16") else "float32"
            plan[path] = {"kind": "lowrank", "rank": int(shape[0]), "storage": storage}
    for key, (shape, dtype) in entries.items():
        dtype = np.dtype(dtype)
        if key.endswith(".weight") and dtype.name in ("int8", "float16"):
            path = key[:-len(".weight")]
            if any(path == p + ".down" or path == p + ".up" for p in plan):
                continue
            plan[path] = {"kind": "quantized", "rank": None, "storage": dtype.name}
    return plan


def plan_from_checkpoint(path):
    """The compression plan of an nnlite checkpoint, from its datasets' names,
    shapes and dtypes (no array is read)."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            if "model" not in f:
                raise CompressionError(f"{path!r} holds no model group (not an nnlite checkpoint)")
            entries = {key: (f["model"][key].shape, f["model"][key].dtype)
                       for key in f["model"].keys()}
    except OSError as exc:
        raise CompressionError(f"cannot read {path!r} as an HDF5 checkpoint: {exc}") from None
    return plan_from_state(entries)


def restructure(model, plan):
    """Replace the Linear layers named in `plan` by empty compressed layers of
    that structure (on the meta device if the model's parameters are), so a
    compressed checkpoint loads into `model`. Returns the model."""
    for path, entry in plan.items():
        old = get_module(model, path)
        if isinstance(old, (LowRankLinear, QuantizedLinear)) and describe_layer(old) == entry:
            continue
        if type(old) is not nn.Linear:
            raise CompressionError(f"cannot restructure {path}: it is a {type(old).__name__}, "
                                   f"not an nn.Linear")
        device = "meta" if _device.is_meta(old.weight.data) else old.weight.device
        bias = old.bias is not None
        if entry["kind"] == "lowrank":
            new = LowRankLinear(old.in_features, old.out_features, entry["rank"], bias=bias,
                                device=device, storage=entry["storage"])
        else:
            new = QuantizedLinear(old.in_features, old.out_features, entry["storage"],
                                  bias=bias, device=device)
        set_module(model, path, new)
    return model


def describe_layer(layer):
    if isinstance(layer, LowRankLinear):
        return {"kind": "lowrank", "rank": layer.rank, "storage": layer.storage}
    return {"kind": "quantized", "rank": None, "storage": layer.storage}


def prepare_for_checkpoint(model, path):
    """Restructure `model` (in place) to the compressed structure saved in
    checkpoint `path`, if any; returns the plan ({} for an uncompressed one)."""
    plan = plan_from_checkpoint(path)
    restructure(model, plan)
    return plan


def build_for_checkpoint(name, path, device="cpu"):
    """Model `name` shaped as saved in checkpoint `path` (its recipe module's
    build_for_checkpoint when it has one, else the registered builder), built
    on the meta device, restructured to the checkpoint's compression, then
    given uninitialised arrays on `device` (nothing when device="meta"), ready
    for ``nl.io.load``."""
    from nnlite import models
    from nnlite.nn.meta import meta
    builder, _ = models.get(name)
    module = models.recipe_module(name)
    build = getattr(module, "build_for_checkpoint", None)
    with meta():
        model = build(path, name) if callable(build) else builder()
    prepare_for_checkpoint(model, path)
    if device != "meta":
        model.to_empty(device=device)
    return model


def report_text(report):
    """The per-layer lines of a compression report."""
    lines = []
    for layer in report["layers"]:
        what = {"lowrank": f"rank {layer['rank']}", "quantized": "dense",
                "dense": "dense"}[layer["kind"]]
        lines.append(f"  {layer['path']}: {layer['in_features']} -> {layer['out_features']}, "
                     f"{what}, {layer['storage']}: {_mib(layer['bytes_before'])} -> "
                     f"{_mib(layer['bytes_after'])}, relative error "
                     f"{layer['relative_error']:.4f}")
    return "\n".join(lines)


def report_json(report):
    return json.loads(json.dumps(report))


def checkpoint_size(path):
    return os.path.getsize(path)
