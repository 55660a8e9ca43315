"""Single-bit flips in saved files (storage or transfer corruption).

An nnlite checkpoint load either raises CheckpointError naming the file or
returns exactly what was saved; a flip inside any dataset's data is always
detected (checksums). A Keras import either raises KerasImportError or loads:
Keras files carry no checksums, so a flip inside a weight can load as another
weight; only the kind of error is checked there.

The positions are a fixed sample (same every run): every 13th bit of every
dataset's data, which meets each bit position of a byte, and 400 bits drawn
across the whole file, headers and B-trees included."""
import os
import warnings

import h5py
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn, optim
from nnlite.io import CheckpointError, KerasImportError

from small_models import ConvLSTMNet

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
META = {"step": 3, "note": "bit flips"}


def small_pair(seed):
    nl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 3))
    return model, optim.Adam(model.parameters(), lr=1e-2)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of a model with BatchNorm buffers and Adam state, and its
    state as it was saved."""
    model, optimizer = small_pair(0)
    x = nl.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    (model(x) ** 2).sum().backward()
    optimizer.step()
    path = str(tmp_path_factory.mktemp("bitflips") / "ckpt.h5")
    nl.io.save(path, model, optimizer, **META)
    with open(path, "rb") as f:
        data = f.read()
    return data, state_of(model, optimizer)


def state_of(model, optimizer):
    arrays = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, entry in optimizer_state["state"].items():
        arrays.update({f"optimizer {index} {k}": np.asarray(v) for k, v in entry.items()})
    return arrays, repr(optimizer_state["param_groups"])


def data_regions(path):
    """(name, first byte, size) of every dataset's data in the file."""
    regions = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and item.id.get_storage_size():
            regions.append((name, item.id.get_offset(), item.id.get_storage_size()))
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return regions


def load_flipped(data, bit, path):
    """Load `data` with `bit` flipped into a fresh model and optimizer;
    (the loaded state, meta) or the CheckpointError."""
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with open(path, "wb") as f:
        f.write(flipped)
    model, optimizer = small_pair(1)
    try:
        meta = nl.io.load(path, model, optimizer)
    except CheckpointError as error:
        return error
    return state_of(model, optimizer), meta


def same_state(loaded, saved_state):
    (arrays, groups), (saved_arrays, saved_groups) = loaded, saved_state
    return groups == saved_groups and list(arrays) == list(saved_arrays) and all(
        arrays[k].dtype == saved_arrays[k].dtype and np.array_equal(arrays[k], saved_arrays[k])
        for k in arrays)


def test_a_flip_in_any_dataset_is_detected(saved, tmp_path):
    data, saved_state = saved
    path = str(tmp_path / "flipped.h5")
    with open(path, "wb") as f:
        f.write(data)
    regions = data_regions(path)
    assert {name for name, _, _ in regions} >= {"model/0.weight", "model/1.num_batches_tracked",
                                                "optimizer/state/0/exp_avg", "meta",
                                                "optimizer/config", "checksums"}
    tried = 0
    for name, start, size in regions:
        for bit in range(8 * start, 8 * (start + size), 13):
            outcome = load_flipped(data, bit, path)
            assert isinstance(outcome, CheckpointError), (name, bit, outcome)
            assert "flipped.h5" in str(outcome) and "damaged" in str(outcome)
            tried += 1
    assert tried > 1000


def test_a_flip_anywhere_fails_cleanly_or_changes_nothing(saved, tmp_path):
    data, saved_state = saved
    path = str(tmp_path / "flipped.h5")
    bits = np.random.default_rng(14).choice(8 * len(data), size=400, replace=False)
    outcomes = {"error": 0, "same": 0}
    for bit in sorted(int(b) for b in bits):
        outcome = load_flipped(data, bit, path)
        if isinstance(outcome, CheckpointError):
            assert "flipped.h5" in str(outcome), (bit, outcome)
            outcomes["error"] += 1
        else:
            state, meta = outcome
            assert same_state(state, saved_state) and meta == META, bit
            outcomes["same"] += 1
    assert outcomes["error"] > 50 and outcomes["same"] > 50  # both kinds were met


def test_format_1_checkpoints_still_load_with_a_warning():
    """checkpoint_v1.h5 was written by the format-1 save (make_checkpoint_v1.py);
    the expected values are read from it with h5py directly."""
    path = os.path.join(FIXTURES, "checkpoint_v1.h5")
    model = ConvLSTMNet()
    optimizer = optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
    with pytest.warns(nl.io.UnverifiedCheckpointWarning, match="checkpoint_v1.h5.*version 1"):
        meta = nl.io.load(path, model, optimizer)
    assert meta == {"step": 2, "note": "format 1"}
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 1 and "checksums" not in f
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), f["model"][key][()], err_msg=key)
        state = optimizer.state_dict()["state"]
        for index, entry in f["optimizer/state"].items():
            for key, dataset in entry.items():
                np.testing.assert_array_equal(state[int(index)][key], dataset[()])
            assert state[int(index)]["step"] == 2
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99)


def keras_flatten_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4, eps=1e-3),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(72, 8), nn.ReLU(), nn.Linear(8, 5))


def test_a_flip_in_a_keras_file_is_a_keras_import_error_or_loads(tmp_path):
    source = os.path.join(FIXTURES, "keras_flatten_model.h5")  # weights and JSON config
    with open(source, "rb") as f:
        data = f.read()
    path = str(tmp_path / "flipped.h5")
    bits = np.random.default_rng(6).choice(8 * len(data), size=300, replace=False)
    errors = 0
    for bit in sorted(int(b) for b in bits):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with open(path, "wb") as f:
            f.write(flipped)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no warning instead of an error either
                nl.io.load_keras_h5(keras_flatten_net(), path)
        except KerasImportError as error:
            assert "flipped.h5" in str(error), (bit, error)
            errors += 1
    assert errors > 20  # the sample met damage that is detectable
