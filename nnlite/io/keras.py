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
* Dense kernel (in, out) -> weight (out, in).
* BatchNormalization gamma, beta, moving_mean, moving_variance -> weight,
  bias, running_mean, running_var (num_batches_tracked is left at 0).
* LSTM kernel (in, 4H) and recurrent_kernel (H, 4H) -> weight_ih (4H, in) and
  weight_hh (4H, H): Keras's gate order i, f, c, o is PyTorch's i, f, g, o, so
  only a transpose. Keras's single bias (4H,) goes to bias_ih and bias_hh is
  zeroed (CuDNNLSTM's (8H,) bias is split into the two). A Bidirectional
  layer's forward/backward halves go to the ``_reverse``-less / ``_reverse``
  parameters; a stacked nn.LSTM takes one Keras layer per layer.

h5py is imported on first use, so ``import nnlite.io`` does not need it.
"""
import json

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


def _read_layers(root, path):
    """[(layer name, {array key: ndarray}, [full weight names])] for every Keras
    layer with weights, in the file's order. Keys are 'kernel', 'bias' ... with
    'forward/' or 'backward/' in front for a Bidirectional layer's halves."""
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
            arrays[key] = np.asarray(group[full_name])
        layers.append((layer_name, arrays))
    return layers


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


def _check_gate_activations(path, handle, lstm_layers):
    """A full-model file names each LSTM's activations; refuse a mismatch
    (standalone Keras <= 2.3 defaulted to hard_sigmoid gates)."""
    config_text = handle.attrs.get("model_config")
    if config_text is None:
        return  # a weights-only file says nothing about activations
    config = json.loads(_text(config_text))
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("LSTM", "CuDNNLSTM"):
                found.append(node.get("config", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
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
    (see the module docstring for the layout rules). Returns `model`."""
    h5py = _h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise KerasImportError(f"load_keras_h5: cannot read {path} as HDF5: {exc}") from exc
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        keras_layers = _read_layers(root, path)
        targets = _nnlite_layers(model)
        if len(keras_layers) != len(targets):
            raise KerasImportError(
                f"load_keras_h5: {path} has {len(keras_layers)} Keras layers with weights "
                f"{[(n, _keras_kind(a)) for n, a in keras_layers]} but the model has "
                f"{len(targets)} weighted layers {[(n, k) for n, _, k in targets]}")
        _check_gate_activations(path, handle, [(n, m) for n, m, k in targets if "lstm" in k])
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
        model.load_state_dict(state)
    return model
