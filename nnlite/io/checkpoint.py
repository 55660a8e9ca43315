"""nnlite checkpoints: one HDF5 file holding a model, optionally its
optimiser, and JSON metadata.

Layout (format version 1)::

    /                 attrs: nnlite_format="nnlite-checkpoint", format_version=1,
                             nnlite_version, meta (JSON text)
    /model/<name>     one dataset per state-dict entry ("features.0.weight")
    /optimizer        attrs: class, param_groups (JSON; "params" are indices)
    /optimizer/state/<index>/<key>   per-parameter arrays (momentum, Adam moments);
                      the group's attr "scalars" (JSON) holds its non-array
                      entries (Adam's step count)

Arrays are stored in the dtype they have (read through nnlite.device.to_numpy,
so GPU models save the same way) and loaded onto the device of the parameter
they belong to. A save writes a temporary file in the target's directory,
fsyncs it and renames it over the target: the previous checkpoint survives any
failure before the rename. h5py is imported on first use, so ``import nnlite``
works without it.
"""
import json
import os

import numpy as np

from nnlite import device as _device
from nnlite._version import __version__
from nnlite.io.atomic import atomic_path

FORMAT_NAME = "nnlite-checkpoint"
FORMAT_VERSION = 1
_TUPLE = "__tuple__"  # JSON has no tuples; Adam's betas must come back as one


class CheckpointError(ValueError):
    """The file is not a usable nnlite checkpoint for this model/optimiser."""


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ImportError("nnlite.io needs h5py for checkpoints: pip install h5py") from exc
    return h5py


# ------------------------------------------------------------------ save --

def save(path, model, optimizer=None, **meta):
    """Write `model`'s parameters and buffers (and `optimizer`'s state, and
    the JSON-able keyword arguments `meta`) to the HDF5 file `path`, atomically."""
    path = os.fspath(path)
    meta_text = _dumps("save", "meta", meta)
    groups = None
    if optimizer is not None:
        optimizer_state = optimizer.state_dict()
        groups = _dumps("save", "optimizer param_groups", optimizer_state["param_groups"])
    state = model.state_dict()
    with atomic_path(path) as temporary:
        with _h5py().File(temporary, "w") as f:
            f.attrs["nnlite_format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["nnlite_version"] = __version__
            f.attrs["meta"] = meta_text
            model_group = f.create_group("model", track_order=True)  # state-dict order
            for name, tensor in state.items():
                model_group.create_dataset(name, data=_device.to_numpy(tensor.data))
            if optimizer is not None:
                _write_optimizer(f.create_group("optimizer"), optimizer, optimizer_state,
                                 groups)
        _fsync_file(temporary)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))
    return path


def _write_optimizer(group, optimizer, optimizer_state, param_groups_json):
    group.attrs["class"] = type(optimizer).__name__
    group.attrs["param_groups"] = param_groups_json
    states = group.create_group("state")
    for index, entries in optimizer_state["state"].items():
        entry_group = states.create_group(str(index))
        scalars = {}
        for key, value in entries.items():
            if isinstance(value, np.ndarray) or _device.is_device_array(value):
                entry_group.create_dataset(key, data=_device.to_numpy(value))
            else:
                scalars[key] = value
        entry_group.attrs["scalars"] = _dumps("save", f"optimizer state {index}", scalars)


def _dumps(op, what, value):
    try:
        return json.dumps(_encode(value), allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"{op}: {what} must be JSON-serialisable (numbers, strings, lists, "
                        f"dicts, None): {exc}") from None


def _encode(value):
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_decode(v) for v in value[_TUPLE])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------ load --

def load(path, model, optimizer=None):
    """Load a checkpoint written by ``save`` into `model` (and `optimizer`);
    returns the metadata dict. Everything is read and checked before the model
    or optimiser is changed. Raises CheckpointError naming the file and the
    problem for a missing, truncated or foreign file or one saved from another
    model."""
    path = os.fspath(path)
    h5py = _h5py()
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: checkpoint {path!r} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"load: {path!r} is not a readable HDF5 file (truncated, "
                              f"corrupt or another format): {exc}") from None
    try:
        with f:
            _check_format(path, f)
            arrays = _read_model(path, f, model)
            optimizer_state = _read_optimizer(path, f, optimizer) if optimizer else None
            meta = _loads(path, "meta", f.attrs.get("meta", "{}"))
    except OSError as exc:  # HDF5 read errors inside a damaged file
        raise CheckpointError(f"load: {path!r} is damaged (truncated or corrupt): "
                              f"{exc}") from None
    try:
        model.load_state_dict(arrays)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"load: {path!r} does not fit: {exc}") from None
    return meta


def _check_format(path, f):
    marker = f.attrs.get("nnlite_format")
    if isinstance(marker, bytes):
        marker = marker.decode()
    if marker != FORMAT_NAME:
        raise CheckpointError(f"load: {path!r} is an HDF5 file but not an nnlite checkpoint "
                              f"(no nnlite_format={FORMAT_NAME!r} attribute; top-level "
                              f"entries: {sorted(f.keys())[:10]})")
    version = f.attrs.get("format_version")
    version = version.item() if isinstance(version, np.generic) else version
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        readable = "1" if FORMAT_VERSION == 1 else f"1 to {FORMAT_VERSION}"
        raise CheckpointError(f"load: {path!r} has checkpoint format version {version!r}; "
                              f"this nnlite ({__version__}) reads version {readable}")
    if "model" not in f:
        raise CheckpointError(f"load: {path!r} has no 'model' group")


def _read_model(path, f, model):
    group = f["model"]
    expected = model.state_dict()
    stored = list(group.keys())
    missing = [k for k in expected if k not in group]
    unexpected = [k for k in stored if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listing(unexpected)}")
    for key, tensor in expected.items():
        if key in group and tuple(group[key].shape) != tuple(tensor.shape):
            problems.append(f"shape mismatch for {key}: file has {tuple(group[key].shape)}, "
                            f"model has {tuple(tensor.shape)}")
    if problems:
        raise CheckpointError(f"load: {path!r} was saved from a different model ("
                              f"{type(model).__name__}): " + "; ".join(problems))
    return {key: group[key][()] for key in expected}


def _read_optimizer(path, f, optimizer):
    if "optimizer" not in f:
        raise CheckpointError(f"load: {path!r} holds no optimizer state, but an optimizer "
                              f"({type(optimizer).__name__}) was passed to load")
    group = f["optimizer"]
    saved_class = group.attrs.get("class")
    if isinstance(saved_class, bytes):
        saved_class = saved_class.decode()
    if saved_class != type(optimizer).__name__:
        raise CheckpointError(f"load: {path!r} holds {saved_class} state, but the optimizer "
                              f"passed is a {type(optimizer).__name__}")
    param_groups = _loads(path, "optimizer param_groups", group.attrs["param_groups"])
    state = {}
    for index, entry_group in group["state"].items():
        entry = _loads(path, f"optimizer state {index}", entry_group.attrs.get("scalars", "{}"))
        for key, dataset in entry_group.items():
            entry[key] = dataset[()]
        state[int(index)] = entry
    return {"state": state, "param_groups": param_groups}


def _loads(path, what, text):
    if isinstance(text, bytes):
        text = text.decode()
    try:
        return _decode(json.loads(text))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"load: {path!r} has unreadable {what}: {exc}") from None


def _listing(keys, limit=8):
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)})"
