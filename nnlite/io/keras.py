"""Keras 2 / tf.keras HDF5 weights into an nnlite model (the CRNN seed's files).

    model = nnlite.models.crnn.crnn()
    nnlite.io.load_keras_h5(model, "best_model.hdf5")

Reads both layouts Keras 2 writes: ``model.save_weights("w.h5")`` (layer groups
at the root) and ``model.save("m.h5")`` / ``ModelCheckpoint`` (the same groups
under ``model_weights``, plus the model's JSON config). Keras layers that hold
weights are paired IN ORDER with nnlite's weighted layers (Conv2d, BatchNorm,
LSTM, Linear, in module registration order), so layer names do not matter but
the architecture must match; every kind and shape is checked before anything
is copied. Conversions:

* Conv2D kernel (kh, kw, in, out) -> weight (out, in, kh, kw); no flip (both
  libraries cross-correlate).
* Dense kernel (in, out) -> weight (out, in). Keras flattens a channels-last
  (h, w, c) feature map, nnlite (nn.Flatten, ``x.reshape(n, -1)``) a (c, h,
  w) one: the first Dense after the Flatten of a convolution's output (whose
  input size is a multiple of the last Conv2D's channels c, but not c itself)
  gets its rows permuted from (h, w, c) to (c, h, w) order, and so does a
  BatchNormalization over the flattened vector. A Conv2D or Flatten with
  data_format="channels_first" in a model file is refused; a weights-only file
  does not say, and is read as channels-last (Keras's default).
* BatchNormalization gamma, beta, moving_mean, moving_variance -> weight,
  bias, running_mean, running_var (num_batches_tracked is left at 0).
* LSTM kernel (in, 4H) and recurrent_kernel (H, 4H) -> weight_ih (4H, in) and
  weight_hh (4H, H): Keras's gate order i, f, c, o is PyTorch's i, f, g, o, so
  only a transpose. Keras's single bias (4H,) goes to bias_ih and bias_hh is
  zeroed (CuDNNLSTM's (8H,) bias is split into the two). A Bidirectional
  layer's forward/backward halves go to the ``_reverse``-less / ``_reverse``
  parameters; a stacked nn.LSTM takes one Keras layer per layer.

Every failure is a KerasImportError naming the file, whatever a damaged file
makes h5py raise. Keras files carry no checksums, so a flipped bit inside a
weight array cannot be detected: it loads as a different weight unless it
makes the value NaN or infinite (refused). Structure (layer lists, names,
shapes, dtypes, the JSON config) is checked, and an array's size before it is
read, so a damaged file cannot make the import allocate more than its size.
One kind of damage cannot become an exception: Keras stores layer names and
the config as HDF5 variable-length strings, and a corrupt one can make HDF5
itself hang or crash (seen with HDF5 2.0.0 for about 1 in 3,000 single-bit
flips). nnlite's own checkpoints store no such strings.

h5py is imported on first use, so ``import nnlite.io`` does not need it.
"""
import json
import os

import numpy as np

__all__ = ["KerasImportError", "load_keras_h5"]

_BN_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


class KerasImportError(ValueError):
    """A Keras file that does not fit the model (names the file, layer and arrays)."""


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ImportError("load_keras_h5 needs h5py (pip install h5py)") from exc
    return h5py


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read_layers(root, path, largest):
    """[(layer name, {array key: ndarray})] for every Keras layer with weights,
    in the file's order. Keys are 'kernel', 'bias' ... with 'forward/' or
    'backward/' in front for a Bidirectional layer's halves. An array is
    checked before it is read: floating point, at most `largest` bytes."""
    if "layer_names" not in root.attrs:
        raise KerasImportError(f"load_keras_h5: {path} holds no Keras weights (no 'layer_names' "
                               f"attribute at the root or under 'model_weights'); top-level "
                               f"keys: {sorted(root.keys())}")
    layers = []
    for layer_name in (_text(n) for n in root.attrs["layer_names"]):
        group = root[layer_name]
        weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
        if not weight_names:
            continue
        arrays = {}
        for full_name in weight_names:
            parts = full_name.split("/")
            key = parts[-1].split(":")[0]
            direction = next((d for d in ("forward", "backward")
                              if any(p.startswith(d) for p in parts[:-1])), None)
            if direction is not None:
                key = f"{direction}/{key}"
            if full_name not in group:
                raise KerasImportError(f"load_keras_h5: {path}: layer '{layer_name}' lists weight "
                                       f"'{full_name}' but holds no such array")
            arrays[key] = _read_weight(path, layer_name, full_name, group[full_name], largest)
        layers.append((layer_name, arrays))
    return layers


def _read_weight(path, layer_name, full_name, dataset, largest):
    dtype, shape = getattr(dataset, "dtype", None), getattr(dataset, "shape", None)
    if dtype is None or dtype.kind != "f" or int(np.prod(shape)) * dtype.itemsize > largest:
        raise KerasImportError(f"load_keras_h5: {path}: layer '{layer_name}' weight "
                               f"'{full_name}' is {dtype} {shape}, not a floating-point array "
                               f"this file can hold ({largest} bytes); the file is damaged")
    array = np.asarray(dataset[()])
    if not np.all(np.isfinite(array)):
        raise KerasImportError(f"load_keras_h5: {path}: layer '{layer_name}' weight "
                               f"'{full_name}' holds NaN or infinite values (a diverged "
                               f"training, or a corrupt file)")
    return array


def _keras_kind(arrays):
    keys = set(arrays)
    if keys & set(_BN_NAMES):
        return "batchnorm"
    if any(k.endswith("recurrent_kernel") for k in keys):
        return "bidirectional_lstm" if any(k.startswith("backward/") for k in keys) else "lstm"
    kernel = arrays.get("kernel")
    if kernel is not None and kernel.ndim == 4:
        return "conv2d"
    if kernel is not None and kernel.ndim == 2:
        return "dense"
    return "unknown (" + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()) + ")"


def _nnlite_layers(model):
    """[(qualified name, module, kind)] of the weighted layers, in order."""
    from nnlite.nn.conv import Conv2d
    from nnlite.nn.linear import Linear
    from nnlite.nn.normalization import _BatchNorm
    from nnlite.nn.rnn import LSTM

    layers = []
    for name, module in model.named_modules():
        if isinstance(module, Conv2d):
            layers.append((name, module, "conv2d"))
        elif isinstance(module, _BatchNorm):
            layers.append((name, module, "batchnorm"))
        elif isinstance(module, Linear):
            layers.append((name, module, "dense"))
        elif isinstance(module, LSTM):
            kind = "bidirectional_lstm" if module.bidirectional else "lstm"
            layers += [(f"{name} (layer {i})", (module, i), kind)
                       for i in range(module.num_layers)]
        elif any(True for _ in module.parameters(recurse=False)):
            raise KerasImportError(f"load_keras_h5: the model's layer '{name}' "
                                   f"({type(module).__name__}) has no Keras counterpart this "
                                   f"importer knows (Conv2d, BatchNorm, LSTM, Linear)")
    return layers


def _get(path, layer_name, arrays, key):
    if key not in arrays:
        raise KerasImportError(f"load_keras_h5: {path}: Keras layer '{layer_name}' has no "
                               f"'{key}' array; it holds {sorted(arrays)}")
    return arrays[key]


def _lstm_arrays(path, layer_name, arrays, prefix, hidden):
    kernel = _get(path, layer_name, arrays, prefix + "kernel")
    recurrent = _get(path, layer_name, arrays, prefix + "recurrent_kernel")
    bias = arrays.get(prefix + "bias")
    result = {"weight_ih": kernel.T, "weight_hh": recurrent.T}
    if bias is not None:
        if bias.shape == (8 * hidden,):  # CuDNNLSTM: input bias, then recurrent bias
            result["bias_ih"], result["bias_hh"] = bias[:4 * hidden], bias[4 * hidden:]
        else:
            result["bias_ih"], result["bias_hh"] = bias, np.zeros_like(bias)
    return result


def _converted(path, layer_name, arrays, module, kind):
    """{nnlite parameter/buffer name relative to the module: array}."""
    if kind == "conv2d":
        result = {"weight": _get(path, layer_name, arrays, "kernel").transpose(3, 2, 0, 1)}
    elif kind == "dense":
        result = {"weight": _get(path, layer_name, arrays, "kernel").T}
    elif kind == "batchnorm":
        result = {"running_mean": _get(path, layer_name, arrays, "moving_mean"),
                  "running_var": _get(path, layer_name, arrays, "moving_variance")}
        for keras_key, name in (("gamma", "weight"), ("beta", "bias")):
            if keras_key in arrays:
                result[name] = arrays[keras_key]
        return result
    else:  # (bidirectional) LSTM; module is (nn.LSTM, layer index)
        lstm, layer = module
        hidden = lstm.hidden_size
        halves = (("forward/", ""), ("backward/", "_reverse")) if kind == "bidirectional_lstm" \
            else (("", ""),)
        result = {}
        for prefix, suffix in halves:
            for name, array in _lstm_arrays(path, layer_name, arrays, prefix, hidden).items():
                result[f"{name}_l{layer}{suffix}"] = array
        return result
    if "bias" in arrays:
        result["bias"] = arrays["bias"]
    return result


def _to_chw_rows(array, channels):
    """`array` whose first axis runs over a flattened channels-last (h, w, c)
    map, with that axis in nnlite's (c, h, w) order instead."""
    positions = array.shape[0] // channels
    return (array.reshape((positions, channels) + array.shape[1:]).swapaxes(0, 1)
            .reshape(array.shape))


def _reorder_flattened(keras_layers):
    """Permute the arrays of the layers that read a flattened convolution
    output: Keras flattened it as (h, w, c), nnlite flattens (c, h, w).

    Walks the weighted layers in order, following the channel count of the
    channels-last map the next layer sees (set by a Conv2D, kept by a
    per-channel BatchNormalization or a Dense on the channel axis). A Dense or
    BatchNormalization whose input size is a multiple of those channels, but
    not the channels themselves, reads the flattened map: its rows are
    permuted. A BatchNormalization keeps the flattened size for the Dense
    after it; anything else (an LSTM, a Dense on plain vectors) ends the map.
    A map of one position (h = w = 1) needs no permutation and gets none."""
    channels = flattened = None
    result = []
    for name, arrays in keras_layers:
        kind, arrays = _keras_kind(arrays), dict(arrays)
        size = {"batchnorm": arrays.get("moving_mean"), "dense": arrays.get("kernel")}.get(kind)
        size = None if size is None else size.shape[0]
        reads_flattened = bool(channels) and size is not None and (
            size == flattened or (size != channels and size % channels == 0))
        if kind == "conv2d":
            channels, flattened = arrays["kernel"].shape[3], None
        elif reads_flattened:
            keys = _BN_NAMES if kind == "batchnorm" else ("kernel",)
            for key in keys:
                if key in arrays:
                    arrays[key] = _to_chw_rows(arrays[key], channels)
            flattened = size if kind == "batchnorm" else None
            channels = channels if kind == "batchnorm" else None
        elif kind == "batchnorm" and size == channels and flattened is None:
            pass  # per-channel statistics of the map: the map goes on
        elif kind == "dense" and size == channels and flattened is None:
            channels = arrays["kernel"].shape[1]  # a Dense on the channel axis of the map
        else:
            channels = flattened = None
        result.append((name, arrays))
    return result


def _model_config(path, handle):
    """The JSON config of a model file, or None for a weights-only file."""
    text = handle.attrs.get("model_config")
    if text is None:
        return None
    try:
        return json.loads(_text(text))
    except ValueError as exc:
        raise KerasImportError(f"load_keras_h5: {path}: its model_config attribute is not "
                               f"valid JSON ({exc}); the file is damaged") from None


def _config_layers(config):
    """The config dict of every layer (those with a class_name), nested ones
    (a Bidirectional's LSTM) included, in order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict):
                found.append((node["class_name"], node["config"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def _check_channels_last(path, config):
    for class_name, layer in _config_layers(config):
        if layer.get("data_format") == "channels_first":
            raise KerasImportError(f"load_keras_h5: {path}: Keras layer '{layer.get('name')}' "
                                   f"({class_name}) uses data_format='channels_first'; this "
                                   f"importer reads channels-last models (Keras's default)")


def _check_gate_activations(path, config, lstm_layers):
    """A full-model file names each LSTM's activations; refuse a mismatch
    (standalone Keras <= 2.3 defaulted to hard_sigmoid gates)."""
    found = [layer for class_name, layer in _config_layers(config)
             if class_name in ("LSTM", "CuDNNLSTM")]
    for (name, module), keras_config in zip(lstm_layers, found):
        want = keras_config.get("recurrent_activation", "sigmoid")
        lstm = module[0]
        if want != lstm.gate_activation or keras_config.get("activation", "tanh") != "tanh":
            raise KerasImportError(
                f"load_keras_h5: {path}: Keras LSTM '{keras_config.get('name')}' uses "
                f"recurrent_activation={want!r}, activation={keras_config.get('activation')!r} "
                f"but nnlite's '{name}' has gate_activation={lstm.gate_activation!r} and tanh; "
                f"build the model with gate_activation={want!r}")


def load_keras_h5(model, path):
    """Copy the weights of a Keras 2 HDF5 weights or model file into `model`
    (see the module docstring for the layout rules). Returns `model`.
    Everything is read and checked before the model changes; every failure,
    a damaged file included, is a KerasImportError naming the file."""
    h5py = _h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise KerasImportError(f"load_keras_h5: cannot read {path} as HDF5: {exc}") from exc
    try:
        with handle:
            state = _read_state(path, handle, model)
        model.load_state_dict(state)
    except KerasImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes h5py raise
        raise KerasImportError(f"load_keras_h5: {path} is damaged or not a Keras 2 weights "
                               f"file: {type(exc).__name__}: {exc}") from exc
    return model


def _read_state(path, handle, model):
    """{state-dict key: array} for `model` from the open Keras file."""
    root = handle["model_weights"] if "model_weights" in handle else handle
    targets = _nnlite_layers(model)
    # Keras stores weights uncompressed: no array is larger than the file, a
    # bound on what a corrupt shape can make us allocate.
    largest = os.path.getsize(path)
    keras_layers = _reorder_flattened(_read_layers(root, path, largest))
    if len(keras_layers) != len(targets):
        raise KerasImportError(
            f"load_keras_h5: {path} has {len(keras_layers)} Keras layers with weights "
            f"{[(n, _keras_kind(a)) for n, a in keras_layers]} but the model has "
            f"{len(targets)} weighted layers {[(n, k) for n, _, k in targets]}")
    config = _model_config(path, handle)
    if config is not None:
        _check_channels_last(path, config)
        _check_gate_activations(path, config, [(n, m) for n, m, k in targets if "lstm" in k])
    state = {}
    for (layer_name, arrays), (name, module, kind) in zip(keras_layers, targets):
        keras_kind = _keras_kind(arrays)
        if keras_kind != kind:
            raise KerasImportError(f"load_keras_h5: {path}: Keras layer '{layer_name}' is a "
                                   f"{keras_kind} but the model's layer at that position, "
                                   f"'{name}', is a {kind}")
        owner = module[0] if isinstance(module, tuple) else module
        prefix = name.split(" (layer")[0]
        own = dict(owner.named_parameters(recurse=False))
        own.update(owner.named_buffers(recurse=False))
        for key, array in _converted(path, layer_name, arrays, module, kind).items():
            if key not in own or own[key] is None:
                raise KerasImportError(f"load_keras_h5: {path}: Keras layer '{layer_name}' "
                                       f"has an array for '{key}' but the model's "
                                       f"'{prefix}' has no such parameter")
            expected = tuple(own[key].shape)
            if tuple(array.shape) != expected:
                raise KerasImportError(
                    f"load_keras_h5: {path}: Keras layer '{layer_name}' gives "
                    f"{prefix}.{key} the shape {tuple(array.shape)} (after conversion) but "
                    f"the model expects {expected}")
            state[f"{prefix}.{key}" if prefix else key] = array
    missing = [k for k, v in model.state_dict().items()
               if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise KerasImportError(f"load_keras_h5: {path} gives no values for the model's "
                               f"{missing}")
    # BatchNorm's num_batches_tracked is optional in load_state_dict (Keras has none).
    return state
