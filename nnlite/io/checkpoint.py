"""nnlite checkpoints: one HDF5 file holding a model, optionally its
optimiser, and JSON metadata.

Layout (format version 2)::

    /                 attrs: nnlite_format="nnlite-checkpoint", format_version=2,
                             nnlite_version, checksums_crc32
    /checksums        the checksum record (JSON as UTF-8 bytes, a uint8 dataset)
    /meta             the save's keyword arguments (JSON, uint8)
    /model/<name>     one dataset per state-dict entry ("features.0.weight")
    /optimizer/config {"class", "param_groups" ("params" are indices),
                       "scalars": {index: non-array state such as Adam's step}}
                      (JSON, uint8)
    /optimizer/state/<index>/<key>   per-parameter arrays (momentum, Adam moments)

The record (nnlite.io.checksums) holds the dtype, shape and CRC-32 of every
other dataset, so a load detects a flipped bit instead of returning different
weights. Texts are datasets, not HDF5 string attributes, because a corrupt
variable-length string crashes HDF5 (a segfault, not an exception); the
attributes left are fixed-size. Version 1 files (JSON in string attributes, no
checksums) still load, unverified, with an UnverifiedCheckpointWarning.

Arrays are stored in the dtype they have (read through nnlite.device.to_numpy,
so GPU models save the same way) and loaded onto the device of the parameter
they belong to. A format-2 load streams the model's arrays: each is first
read in chunks of at most 16 MiB to check its CRC-32 (nothing kept), and
only when every check has passed is it read straight into its parameter
(and its CRC-32 checked there again), so loading costs the parameters'
bytes plus one chunk, not twice the model (DictNet: 1.83 GiB, not 3.7). If
the file changes between the two reads, the load raises CheckpointError
saying the model was partly loaded. A save writes a temporary file in the target's directory,
fsyncs it and renames it over the target (nnlite.io.atomic): the previous
checkpoint survives any failure before the rename. A load reads and checks
everything (the file, the model, the optimiser, and the caller's own check of
the metadata) before it changes anything. h5py is imported on first use, so
``import nnlite`` works without it.
"""
import json
import os
import warnings

import numpy as np

from nnlite import device as _device
from nnlite._version import __version__
from nnlite.io import checksums as _checksums
from nnlite.io.atomic import atomic_path

FORMAT_NAME = "nnlite-checkpoint"
FORMAT_VERSION = 2
_TUPLE = "__tuple__"  # JSON has no tuples; Adam's betas must come back as one
_RECORD, _RECORD_CRC = "checksums", "checksums_crc32"


class CheckpointError(ValueError):
    """The file is not a usable nnlite checkpoint for this model/optimiser."""


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint from before checksums (format version 1) was loaded; a
    corrupted bit in it would go unnoticed."""


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ImportError("nnlite.io needs h5py for checkpoints: pip install h5py") from exc
    return h5py


# ------------------------------------------------------------------ save --

def save(path, model, optimizer=None, **meta):
    """Write `model`'s parameters and buffers (and `optimizer`'s state, and
    the JSON-able keyword arguments `meta`) to the HDF5 file `path`, atomically,
    with a checksum of every array and text. A symbolic link is followed (its
    target is replaced) and an existing file keeps its permission bits."""
    path = os.fspath(path)
    meta_text = _dumps("save", "meta", meta)
    if optimizer is not None:
        optimizer_state = optimizer.state_dict()
        arrays, config_text = _split_optimizer_state(optimizer, optimizer_state)
    state = model.state_dict()
    _check_dataset_names("state-dict key", state)
    with atomic_path(path, durable=True) as temporary:
        with _h5py().File(temporary, "w") as f:
            record = _checksums.ChecksumRecord()
            # np.bytes_: fixed-length strings, stored in the attribute itself
            f.attrs["nnlite_format"] = np.bytes_(FORMAT_NAME)
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["nnlite_version"] = np.bytes_(__version__)
            _write(f, "meta", _checksums.text_array(meta_text), record)
            model_group = f.create_group("model", track_order=True)  # state-dict order
            for name, tensor in state.items():
                _write(model_group, name, _device.to_numpy(tensor.data), record)
            if optimizer is not None:
                group = f.create_group("optimizer")
                _write(group, "config", _checksums.text_array(config_text), record)
                states = group.create_group("state")
                for index, entries in arrays.items():
                    entry_group = states.create_group(str(index))
                    for key, array in entries.items():
                        _write(entry_group, key, array, record)
            record_text, record_crc = record.text()
            f.create_dataset(_RECORD, data=_checksums.text_array(record_text))
            f.attrs[_RECORD_CRC] = record_crc
    return path


def _split_optimizer_state(optimizer, optimizer_state):
    """({index: {key: array}}, JSON of the class, param_groups and scalars)."""
    arrays, scalars = {}, {}
    for index, entries in optimizer_state["state"].items():
        arrays[index], scalars[str(index)] = {}, {}
        for key, value in entries.items():
            if isinstance(value, np.ndarray) or _device.is_device_array(value):
                arrays[index][key] = _device.to_numpy(value)
            else:
                scalars[str(index)][key] = value
        _check_dataset_names(f"{type(optimizer).__name__} state key", arrays[index])
    config = {"class": type(optimizer).__name__,
              "param_groups": optimizer_state["param_groups"], "scalars": scalars}
    return arrays, _dumps("save", "optimizer state", config)


def _check_dataset_names(what, names):
    # Module names refuse "/" already; a hand-written state_dict() (or an
    # optimiser's state key) could still be read by HDF5 as a path, and the
    # file could never load.
    for key in names:
        if not isinstance(key, str) or not key or "/" in key or "\0" in key:
            raise ValueError(f"save: {what} {key!r} cannot name an HDF5 dataset (it must be "
                             f"non-empty text without '/', HDF5's path separator, or NUL)")


def _write(group, name, array, record):
    dataset = group.create_dataset(name, data=array)
    record.add(dataset.name, array)


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


# ------------------------------------------------------------------ load --

def load(path, model, optimizer=None, *, check_meta=None):
    """Load a checkpoint written by ``save`` into `model` (and `optimizer`);
    returns the metadata dict.

    Everything is read and checked before anything changes: the file's
    checksums, its keys and shapes against the model, its optimiser state
    against the optimiser, and then ``check_meta(meta)`` if given (a caller
    that restores more state from the metadata, such as a Trainer's scheduler,
    checks it there; whatever it raises aborts the load). So a failed load
    leaves the model and optimiser as they were. Raises CheckpointError naming
    the file and the problem for a truncated, corrupt or foreign file or one
    saved from another model."""
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
            arrays, optimizer_state, meta = _Reader(path, f).read(model, optimizer)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes h5py raise
        raise CheckpointError(f"load: {path!r} is damaged (truncated or corrupt): "
                              f"{type(exc).__name__}: {exc}") from exc
    try:
        install_model = model._prepare_load_state_dict(arrays)
        install_optimizer = (optimizer._prepare_load_state_dict(optimizer_state)
                             if optimizer is not None else None)
    except Exception as exc:  # noqa: BLE001 - e.g. RuntimeError, ValueError, KeyError
        raise CheckpointError(f"load: {path!r} does not fit: {exc}") from exc
    if check_meta is not None:
        check_meta(meta)
    with _Installing(path):
        install_model()
    if install_optimizer is not None:
        install_optimizer()
    return meta


_STREAM_CHUNK = 16 * 2**20


class _Installing:
    """Keeps the checkpoint open while deferred datasets are read into the model."""
    current = None

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        _Installing.current = None
        return self

    def __exit__(self, *exc):
        if _Installing.current is not None:
            _Installing.current.close()
        _Installing.current = None

    @staticmethod
    def file(path):
        if _Installing.current is None:
            _Installing.current = _h5py().File(path, "r")
        return _Installing.current


def _row_chunks(shape, itemsize):
    """Slices along the first axis of at most _STREAM_CHUNK bytes (at least one row)."""
    if not shape:
        return [()]
    row = itemsize * int(np.prod(shape[1:], dtype=np.int64))
    step = max(1, _STREAM_CHUNK // max(row, 1))
    return [slice(start, min(start + step, shape[0])) for start in range(0, shape[0], step)] \
        or [slice(0, 0)]


def _little(array):
    return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))


def _chunked_crc32(dataset):
    """CRC-32 of a dataset's values as array_crc32 computes it, reading it in chunks."""
    import zlib
    crc = 0
    for index in _row_chunks(dataset.shape, dataset.dtype.itemsize):
        crc = zlib.crc32(_little(np.asarray(dataset[index])).reshape(-1).view(np.uint8), crc)
    return crc


class _DeferredDataset:
    """One verified model dataset, read into its parameter at install time."""

    def __init__(self, path, name, shape, dtype, crc32):
        self.path, self.name, self.crc32 = path, name, crc32
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def copy_into(self, target):
        import zlib
        dataset = _Installing.file(self.path)[self.name]
        on_host = isinstance(target, np.ndarray)
        direct = on_host and target.dtype == self.dtype and target.flags.c_contiguous \
            and target.flags.writeable
        crc = 0
        if direct and self.shape:
            dataset.read_direct(target)
            crc = zlib.crc32(_little(target).reshape(-1).view(np.uint8))
        else:
            for index in _row_chunks(self.shape, self.dtype.itemsize):
                block = np.asarray(dataset[index])
                crc = zlib.crc32(_little(block).reshape(-1).view(np.uint8), crc)
                part = target[index] if self.shape else target
                part[...] = _device.move(block, _device.device_of(target)).astype(
                    target.dtype, copy=False)
        if crc != self.crc32:
            raise CheckpointError(f"load: {self.path!r} changed while it was being loaded: "
                                  f"{self.name} no longer matches its checksum; the model is "
                                  f"partly loaded, load it again")


class _Reader:
    """Reads one open checkpoint, checking each dataset before and after it
    reads it; every problem is a CheckpointError naming the file."""

    def __init__(self, path, f):
        self.path, self.f = path, f
        self.record = None
        # No stored array can be larger than the file: a bound on what a
        # corrupt shape can make us allocate when nothing was recorded.
        self.file_size = os.path.getsize(path)

    def fail(self, problem):
        raise CheckpointError(f"load: {self.path!r} is damaged: {problem}")

    def read(self, model, optimizer):
        """(model arrays, optimizer state dict or None, meta), all verified."""
        version = self.check_format()
        if version == 1:
            warnings.warn(f"load: {self.path!r} is a format version 1 checkpoint, written "
                          f"before checksums: its arrays cannot be verified (save it again "
                          f"to add them)", UnverifiedCheckpointWarning, stacklevel=3)
            meta_text = _attribute_text(self.f.attrs.get("meta", "{}"))
        else:
            self.record = self.read_record()
            self.check_recorded_datasets()
            meta_text = self.read_text(self.f["meta"])
        arrays = self.read_model(model)
        optimizer_state = self.read_optimizer(optimizer) if optimizer is not None else None
        meta = self.loads("meta", meta_text)
        if not isinstance(meta, dict):
            self.fail(f"its meta is not a dict: {meta!r:.100}")
        return arrays, optimizer_state, meta

    def check_format(self):
        path, f = self.path, self.f
        marker = f.attrs.get("nnlite_format")
        if isinstance(marker, bytes):
            marker = marker.decode("utf8", "replace")
        if marker != FORMAT_NAME:
            raise CheckpointError(f"load: {path!r} is an HDF5 file but not an nnlite "
                                  f"checkpoint (no nnlite_format={FORMAT_NAME!r} attribute; "
                                  f"top-level entries: {sorted(f.keys())[:10]})")
        version = f.attrs.get("format_version")
        version = version.item() if isinstance(version, np.generic) else version
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise CheckpointError(f"load: {path!r} has checkpoint format version {version!r}; "
                                  f"this nnlite ({__version__}) reads versions 1 to "
                                  f"{FORMAT_VERSION}")
        if "model" not in f:
            raise CheckpointError(f"load: {path!r} has no 'model' group")
        return version

    def read_record(self):
        if _RECORD not in self.f:
            self.fail("format version 2 files carry a checksum record, this one has none")
        crc = self.f.attrs.get(_RECORD_CRC)
        text = self.read_unrecorded(self.f[_RECORD])
        try:
            return _checksums.parse_record(
                text.tobytes(), crc.item() if isinstance(crc, np.generic) else crc)
        except ValueError as exc:
            self.fail(exc)

    def check_recorded_datasets(self):
        """The file's datasets are exactly those recorded (a flipped bit in a
        name would otherwise read as 'saved from another model')."""
        h5py = _h5py()
        present = []
        self.f.visititems(lambda name, item: present.append("/" + name)
                          if isinstance(item, h5py.Dataset) else None)
        present = set(present) - {"/" + _RECORD}
        recorded = set(self.record["arrays"])
        if present != recorded:
            self.fail(f"its datasets differ from those recorded at save time (not recorded: "
                      f"{_listing(sorted(present - recorded))}; missing: "
                      f"{_listing(sorted(recorded - present))})")

    def read_unrecorded(self, dataset):
        if dataset.dtype.kind not in "biuf" or dataset.size * dataset.dtype.itemsize > \
                self.file_size:
            self.fail(f"dataset {dataset.name} holds {dataset.dtype} {dataset.shape}, which "
                      f"is not an array this file can hold")
        return np.asarray(dataset[()])

    def read_array(self, dataset):
        """The dataset's values, checked against the record: dtype and shape
        before reading (a corrupt shape cannot ask for terabytes), CRC-32 after."""
        if self.record is None:
            return self.read_unrecorded(dataset)
        name = dataset.name
        expected = self.record["arrays"][name]
        found = {"dtype": dataset.dtype.str, "shape": list(dataset.shape)}
        if found != {"dtype": expected["dtype"], "shape": expected["shape"]}:
            self.fail(f"dataset {name} is {found['dtype']} {found['shape']}, but was saved as "
                      f"{expected['dtype']} {expected['shape']}")
        array = np.asarray(dataset[()])
        if _checksums.array_crc32(array) != expected["crc32"]:
            self.fail(f"the values of {name} do not match the checksum recorded at save time "
                      f"(the file changed after it was written)")
        return array

    def read_text(self, dataset):
        array = self.read_array(dataset)
        if array.dtype != np.uint8 or array.ndim != 1:
            self.fail(f"dataset {dataset.name} is {array.dtype} {array.shape}, not text")
        return _checksums.array_text(array)

    def loads(self, what, text):
        try:
            return _decode(json.loads(text))
        except (TypeError, ValueError, RecursionError) as exc:
            raise CheckpointError(f"load: {self.path!r} has unreadable {what}: {exc}") from None

    def read_model(self, model):
        group = self.f["model"]
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
                problems.append(f"shape mismatch for {key}: file has "
                                f"{tuple(group[key].shape)}, model has {tuple(tensor.shape)}")
        if problems:
            raise CheckpointError(f"load: {self.path!r} was saved from a different model ("
                                  f"{type(model).__name__}): " + "; ".join(problems))
        if self.record is None:  # format 1: no checksums to stream against
            return {key: self.read_array(group[key]) for key in expected}
        return {key: self.deferred_array(group[key]) for key in expected}

    def deferred_array(self, dataset):
        """The dataset checked against the record (dtype, shape, and its CRC-32
        read in chunks), to be read into its parameter when the load installs."""
        name = dataset.name
        expected = self.record["arrays"][name]
        found = {"dtype": dataset.dtype.str, "shape": list(dataset.shape)}
        if found != {"dtype": expected["dtype"], "shape": expected["shape"]}:
            self.fail(f"dataset {name} is {found['dtype']} {found['shape']}, but was saved as "
                      f"{expected['dtype']} {expected['shape']}")
        if _chunked_crc32(dataset) != expected["crc32"]:
            self.fail(f"the values of {name} do not match the checksum recorded at save time "
                      f"(the file changed after it was written)")
        return _DeferredDataset(self.path, name, dataset.shape, dataset.dtype,
                                expected["crc32"])

    def read_optimizer(self, optimizer):
        if "optimizer" not in self.f:
            raise CheckpointError(f"load: {self.path!r} holds no optimizer state, but an "
                                  f"optimizer ({type(optimizer).__name__}) was passed to load")
        group = self.f["optimizer"]
        saved_class, param_groups, scalars = self.optimizer_config(group)
        if saved_class != type(optimizer).__name__:
            raise CheckpointError(f"load: {self.path!r} holds {saved_class} state, but the "
                                  f"optimizer passed is a {type(optimizer).__name__}")
        if not (isinstance(param_groups, list) and all(
                isinstance(g, dict) and isinstance(g.get("params"), list)
                and all(isinstance(i, int) for i in g["params"]) for g in param_groups)):
            self.fail(f"its optimizer param_groups are not a list of groups with integer "
                      f"'params': {param_groups!r:.200}")
        state = {}
        for index, entry_group in group["state"].items():
            entry = scalars.get(index, {})
            if not index.isdigit() or not isinstance(entry, dict):
                self.fail(f"optimizer state {index!r} is not a parameter index with a dict "
                          f"of values")
            entry = dict(entry)
            for key, dataset in entry_group.items():
                entry[key] = self.read_array(dataset)
            state[int(index)] = entry
        return {"state": state, "param_groups": param_groups}

    def optimizer_config(self, group):
        """(class name, param_groups, {index: scalars}) from /optimizer."""
        if self.record is None:  # format 1: JSON in string attributes
            scalars = {index: self.loads(f"optimizer state {index}",
                                         _attribute_text(entry.attrs.get("scalars", "{}")))
                       for index, entry in group["state"].items()}
            return (_attribute_text(group.attrs.get("class")),
                    self.loads("optimizer param_groups",
                               _attribute_text(group.attrs.get("param_groups"))), scalars)
        config = self.loads("optimizer config", self.read_text(group["config"]))
        if not (isinstance(config, dict) and {"class", "param_groups", "scalars"} <= set(config)
                and isinstance(config["scalars"], dict)):
            self.fail(f"its optimizer config is not {{class, param_groups, scalars}}: "
                      f"{config!r:.200}")
        return config["class"], config["param_groups"], config["scalars"]


def _attribute_text(value):
    return value.decode("utf8") if isinstance(value, bytes) else value


def _listing(keys, limit=8):
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)})"
