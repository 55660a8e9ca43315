"""nl.io.save / nl.io.load: round trips, exact resume of training, atomic
writes, and clear errors for files that are not checkpoints of this model."""
import json
import os

import h5py
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn, optim
from nnlite.io import CheckpointError

from small_models import ConvLSTMNet, train_steps


def state_arrays(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def assert_same_state(a, b):
    sa, sb = state_arrays(a), state_arrays(b)
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def fresh_pair(seed=0, make_optimizer=None):
    nl.manual_seed(seed)
    model = ConvLSTMNet()
    return model, (make_optimizer or adam)(model)


def adam(model):
    return optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99))


def test_io_is_a_package_exposed_by_nnlite():
    import nnlite.io
    assert nl.io is nnlite.io and nl.io.save is nnlite.io.checkpoint.save


def test_round_trip_restores_parameters_buffers_and_meta(tmp_path):
    model, optimizer = fresh_pair(0)
    train_steps(model, optimizer, 2, first_seed=0)  # BatchNorm statistics move off 0/1
    path = tmp_path / "model.h5"
    nl.io.save(path, model, step=2, epoch=0, config={"lr": 0.01, "layers": [1, 2]})
    other, _ = fresh_pair(1)
    meta = nl.io.load(path, other)
    assert meta == {"step": 2, "epoch": 0, "config": {"lr": 0.01, "layers": [1, 2]}}
    assert_same_state(model, other)
    assert int(other.features[1].num_batches_tracked.numpy()) == 2
    with h5py.File(path, "r") as f:  # state-dict names, stored as they are
        assert sorted(f["model"]) == sorted(model.state_dict())
        np.testing.assert_array_equal(f["model"]["head.weight"][()], model.head.weight.numpy())


@pytest.mark.parametrize("make_optimizer", [
    adam,
    lambda m: optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True),
    lambda m: optim.RMSprop(m.parameters(), lr=1e-2, momentum=0.5, centered=True),
], ids=["adam", "sgd-nesterov", "rmsprop-centered"])
def test_resume_is_bit_identical(tmp_path, make_optimizer):
    model, optimizer = fresh_pair(0, make_optimizer)
    train_steps(model, optimizer, 3, first_seed=0)
    path = tmp_path / "ckpt.h5"
    nl.io.save(path, model, optimizer, step=3)
    train_steps(model, optimizer, 4, first_seed=3)  # the uninterrupted run

    resumed, resumed_optimizer = fresh_pair(7, make_optimizer)  # different initial weights
    assert nl.io.load(path, resumed, resumed_optimizer) == {"step": 3}
    train_steps(resumed, resumed_optimizer, 4, first_seed=3)
    assert_same_state(model, resumed)
    for p, q in zip(optimizer._indexed_params(), resumed_optimizer._indexed_params()):
        for key, value in optimizer.state[p].items():
            np.testing.assert_array_equal(np.asarray(value),
                                          np.asarray(resumed_optimizer.state[q][key]))


def test_optimizer_hyperparameters_and_step_come_back(tmp_path):
    model, optimizer = fresh_pair(0)
    optimizer.param_groups[0]["lr"] = 0.123  # as a scheduler would leave it
    train_steps(model, optimizer, 2, first_seed=0)
    nl.io.save(tmp_path / "c.h5", model, optimizer)
    other, other_optimizer = fresh_pair(0)
    nl.io.load(tmp_path / "c.h5", other, other_optimizer)
    group = other_optimizer.param_groups[0]
    assert group["lr"] == 0.123 and group["betas"] == (0.8, 0.99)
    assert isinstance(group["betas"], tuple)
    steps = {s["step"] for s in other_optimizer.state.values()}
    assert steps == {2} and all(isinstance(s["step"], int)
                                for s in other_optimizer.state.values())


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, _ = fresh_pair(0)
    path = tmp_path / "ckpt.h5"
    nl.io.save(path, model, step=1)
    before = state_arrays(model)
    for p in model.parameters():
        p.data[...] = 0

    real_create = h5py.Group.create_dataset
    calls = []

    def failing_create(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:  # a few datasets in: the new file is half written
            raise OSError("disk full (simulated)")
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create)
    with pytest.raises(OSError, match="simulated"):
        nl.io.save(path, model, step=2)
    monkeypatch.undo()
    assert len(calls) == 3
    assert os.listdir(tmp_path) == ["ckpt.h5"]  # no temporary file left behind
    restored, _ = fresh_pair(3)
    assert nl.io.load(path, restored) == {"step": 1}
    for key, value in state_arrays(restored).items():
        np.testing.assert_array_equal(value, before[key])


def test_failure_at_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, _ = fresh_pair(0)
    path = tmp_path / "ckpt.h5"
    nl.io.save(path, model, step=1)

    def no_rename(src, dst):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="simulated"):
        nl.io.save(path, model, step=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.h5"]
    assert nl.io.load(path, ConvLSTMNet()) == {"step": 1}


def test_meta_must_be_json_serialisable(tmp_path):
    with pytest.raises(TypeError, match="meta must be JSON-serialisable"):
        nl.io.save(tmp_path / "x.h5", ConvLSTMNet(), when=object())
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "ckpt.h5"
    nl.io.save(path, ConvLSTMNet())
    data = path.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.h5") as error:
        nl.io.load(truncated, ConvLSTMNet())
    assert "truncated" in str(error.value) or "corrupt" in str(error.value)


def test_non_hdf5_file(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"weights.npz.*not a readable HDF5 file"):
        nl.io.load(path, ConvLSTMNet())


def test_foreign_hdf5_file(tmp_path):
    path = tmp_path / "keras.h5"
    with h5py.File(path, "w") as f:
        f.create_group("model_weights").create_dataset("kernel", data=np.zeros((3, 3)))
    with pytest.raises(CheckpointError, match=r"keras.h5.*not an nnlite checkpoint"):
        nl.io.load(path, ConvLSTMNet())


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.h5"
    nl.io.save(path, ConvLSTMNet())
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = nl.io.FORMAT_VERSION + 1
    newer = nl.io.FORMAT_VERSION + 1
    with pytest.raises(CheckpointError, match=rf"future.h5.*format version {newer}"):
        nl.io.load(path, ConvLSTMNet())


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        nl.io.load("/nonexistent/nowhere.h5", ConvLSTMNet())


def test_wrong_model_lists_missing_unexpected_and_mismatched(tmp_path):
    path = tmp_path / "ckpt.h5"
    nl.io.save(path, ConvLSTMNet(hidden=8))
    with pytest.raises(CheckpointError, match=r"ckpt.h5.*different model.*shape mismatch for "
                                              r"rnn.weight_ih_l0: file has \(32, 16\), "
                                              r"model has \(40, 16\)"):
        nl.io.load(path, ConvLSTMNet(hidden=10))
    other = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(CheckpointError) as error:
        nl.io.load(path, other)
    message = str(error.value)
    assert "missing keys [0.weight, 0.bias] (2)" in message
    assert "unexpected keys [features.0.weight, features.0.bias, " in message
    assert "...] (17)" in message  # 17 keys in file order, the first 8 shown


def test_failed_load_leaves_model_and_optimizer_unchanged(tmp_path):
    model, optimizer = fresh_pair(0)
    train_steps(model, optimizer, 1, first_seed=0)
    nl.io.save(tmp_path / "no_opt.h5", model)  # no optimizer state inside
    target, target_optimizer = fresh_pair(5)
    before = state_arrays(target)
    with pytest.raises(CheckpointError, match="no_opt.h5.*holds no optimizer state"):
        nl.io.load(tmp_path / "no_opt.h5", target, target_optimizer)
    for key, value in state_arrays(target).items():
        np.testing.assert_array_equal(value, before[key])
    assert target_optimizer.state == {}


def doctored_adam_checkpoint(path, change):
    """A checkpoint, checksums and all, whose Adam state `change` has edited:
    the file is sound, its optimiser state does not fit."""
    model, optimizer = fresh_pair(0)
    train_steps(model, optimizer, 1, first_seed=0)
    state = optimizer.state_dict()
    change(state)
    optimizer.state_dict = lambda: state
    nl.io.save(path, model, optimizer)


def two_groups(model):
    params = list(model.parameters())
    return optim.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=1e-2)


def renumber_state(state):
    state["state"][99] = state["state"].pop(0)


def set_step(state):
    state["state"][0]["step"] = "abc"


def set_lr(state):
    state["param_groups"][0]["lr"] = "abc"


@pytest.mark.parametrize("change, make_optimizer, message", [
    (lambda state: None, two_groups, "1 parameter groups, this optimizer has 2"),
    (renumber_state, adam, "parameter index 99"),
    (set_step, adam, "invalid literal for int"),
    (set_lr, adam, "lr must be >= 0.0, got 'abc'"),
], ids=["two-groups", "state-index-99", "step-abc", "lr-abc"])
def test_optimizer_that_does_not_fit_leaves_the_model_unchanged(tmp_path, change,
                                                                 make_optimizer, message):
    # The model part of the file is fine; loading it first used to leave the
    # new weights in place when the optimiser part then failed.
    path = tmp_path / "ckpt.h5"
    doctored_adam_checkpoint(path, change)
    target, target_optimizer = fresh_pair(5, make_optimizer)
    before = state_arrays(target)
    groups_before = repr(target_optimizer.param_groups)
    with pytest.raises(CheckpointError, match=f"ckpt.h5.*does not fit.*{message}"):
        nl.io.load(path, target, target_optimizer)
    for key, value in state_arrays(target).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert target_optimizer.state == {}
    assert repr(target_optimizer.param_groups) == groups_before


def test_check_meta_runs_before_anything_changes(tmp_path):
    model, optimizer = fresh_pair(0)
    train_steps(model, optimizer, 1, first_seed=0)
    nl.io.save(tmp_path / "c.h5", model, optimizer, step=1)
    target, target_optimizer = fresh_pair(5)
    before = state_arrays(target)
    seen = []

    def refuse(meta):
        seen.append(meta)
        raise CheckpointError("the caller's own state does not fit")

    with pytest.raises(CheckpointError, match="caller's own state"):
        nl.io.load(tmp_path / "c.h5", target, target_optimizer, check_meta=refuse)
    assert seen == [{"step": 1}]
    for key, value in state_arrays(target).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert target_optimizer.state == {}


def test_optimizer_class_mismatch(tmp_path):
    model, optimizer = fresh_pair(0)
    train_steps(model, optimizer, 1, first_seed=0)
    nl.io.save(tmp_path / "adam.h5", model, optimizer)
    other = ConvLSTMNet()
    with pytest.raises(CheckpointError, match="adam.h5.*holds Adam state.*SGD"):
        nl.io.load(tmp_path / "adam.h5", other, optim.SGD(other.parameters(), lr=0.1))


def test_float64_model_keeps_its_dtype(tmp_path):
    model = ConvLSTMNet().double()
    nl.io.save(tmp_path / "d.h5", model)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f["model"]["head.weight"].dtype == np.float64
        assert json.loads(f["meta"][()].tobytes()) == {}  # JSON as UTF-8 bytes
    other = ConvLSTMNet().double()
    nl.io.load(tmp_path / "d.h5", other)
    assert_same_state(model, other)


@pytest.mark.cuda
def test_gpu_model_round_trip_and_resume(tmp_path):
    model, optimizer = fresh_pair(0)
    model.cuda()
    nl.io.save(tmp_path / "gpu.h5", model, optimizer, step=0)
    cpu_model = ConvLSTMNet()
    nl.io.load(tmp_path / "gpu.h5", cpu_model)  # a GPU checkpoint loads on the CPU
    gpu_model = ConvLSTMNet().cuda()
    gpu_optimizer = adam(gpu_model)
    nl.io.load(tmp_path / "gpu.h5", gpu_model, gpu_optimizer)
    assert all(p.device == "cuda" for p in gpu_model.parameters())
    for key, value in state_arrays(cpu_model).items():
        np.testing.assert_array_equal(value, gpu_model.state_dict()[key].numpy())


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda src, dst: (
        events.append(("replace", os.path.dirname(src) == os.path.dirname(dst))),
        real_replace(src, dst))[1])
    nl.io.save(tmp_path / "ckpt.h5", ConvLSTMNet())
    # the file's data, then the rename (within one directory), then the directory entry
    assert events == ["fsync", ("replace", True), "fsync"]


def test_module_dict_keys_round_trip_and_slash_is_refused_early(tmp_path):
    # A key with "/" used to save, then never load ("unexpected keys"): HDF5
    # reads "/" as a group separator. It is refused when the key is added.
    heads = nn.ModuleDict({"digit-1": nn.Linear(2, 3), "héllo wörld": nn.Linear(3, 1)})
    nl.io.save(tmp_path / "heads.h5", heads)
    other = nn.ModuleDict({"digit-1": nn.Linear(2, 3), "héllo wörld": nn.Linear(3, 1)})
    nl.io.load(tmp_path / "heads.h5", other)
    assert_same_state(heads, other)
    with pytest.raises(ValueError, match="name 'box/1' must be non-empty and contain no"):
        nn.ModuleDict({"box/1": nn.Linear(2, 2)})


def test_a_state_dict_key_hdf5_would_split_is_refused_at_save(tmp_path):
    class Renamed(nn.Linear):
        def state_dict(self, *args, **kwargs):
            state = super().state_dict(*args, **kwargs)
            state["head/bias"] = state.pop("bias")
            return state

    with pytest.raises(ValueError, match="state-dict key 'head/bias' cannot name an HDF5"):
        nl.io.save(tmp_path / "x.h5", Renamed(2, 2))
    assert os.listdir(tmp_path) == []  # refused before anything was written
