"""Building without waste: initialisers draw in place in the parameter's own
dtype (no float64 temporaries), and a model built inside nl.nn.meta() holds
no parameter values at all until materialised."""
import tracemalloc

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite import random as nl_random
from nnlite.device import MetaArray, is_meta
from nnlite.models import jaderberg

from small_models import INPUT_SHAPE, ConvLSTMNet


def peak_of(build):
    tracemalloc.start()
    try:
        result = build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("init", ["default", "glorot"])
def test_linear_construction_peaks_near_its_parameter_bytes(dtype, init):
    layer, peak = peak_of(lambda: nn.Linear(3000, 1000, dtype=dtype, init=init))
    params = sum(p.data.nbytes for p in layer.parameters())
    assert layer.weight.dtype == dtype
    assert peak <= 1.1 * params, (peak, params)  # was ~3x: a float64 draw, then a cast


def test_conv_and_lstm_construction_peak_near_their_parameter_bytes():
    for build in (lambda: nn.Conv2d(256, 512, 3), lambda: nn.LSTM(512, 256, bidirectional=True)):
        layer, peak = peak_of(build)
        params = sum(p.data.nbytes for p in layer.parameters())
        assert peak <= 1.1 * params + 64 * 1024, (type(layer).__name__, peak, params)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fill_uniform_and_normal_in_place(dtype):
    nl.manual_seed(0)
    a = np.zeros((300, 500), dtype)
    assert nl_random.fill_uniform(a, -2.0, 3.0) is a and a.dtype == dtype
    assert a.min() >= -2.0 and a.max() <= 3.0
    assert abs(float(a.astype(np.float64).mean()) - 0.5) < 0.05
    assert abs(float(a.astype(np.float64).std()) - 5 / np.sqrt(12)) < 0.02
    b = np.zeros((400, 400), dtype)
    nl_random.fill_normal(b, 1.0, 0.5)
    assert abs(float(b.astype(np.float64).mean()) - 1.0) < 0.01
    assert abs(float(b.astype(np.float64).std()) - 0.5) < 0.01


def test_fill_reaches_a_strided_view_and_chunks(monkeypatch):
    monkeypatch.setattr(nl_random, "FILL_CHUNK", 7)
    base = np.zeros((20, 30), np.float32)
    view = base[::2, 1::3]
    nl_random.fill_uniform(view, 1.0, 2.0)
    assert (view >= 1.0).all() and (view < 2.0 + 1e-6).all()
    untouched = base.copy()
    untouched[::2, 1::3] = 0
    assert not untouched.any()
    nl_random.fill_normal(np.zeros((), np.float64))  # a 0-d array
    with pytest.raises(TypeError, match="floating-point"):
        nl_random.fill_uniform(np.zeros(3, np.int32))


def test_initialisation_is_reproducible_and_keeps_the_parameter():
    nl.manual_seed(3)
    a = nn.Linear(40, 30, init="glorot")
    nl.manual_seed(3)
    b = nn.Linear(40, 30, init="glorot")
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    weight = a.weight.data
    nn.init.kaiming_uniform_(a.weight)
    assert a.weight.data is weight
    bound = np.sqrt(6 / 40)
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound


# ------------------------------------------------------------------ meta --

def test_dictnet_on_the_meta_device_allocates_nothing():
    def build():
        with nn.meta():
            return jaderberg.dictnet()
    model, peak = peak_of(build)
    assert peak < 1 << 20  # 491M parameters, under a megabyte of bookkeeping
    assert model.num_parameters() == jaderberg.parameter_count(jaderberg.NUM_WORDS) == \
        491_119_724
    assert all(is_meta(p.data) for p in model.parameters())
    assert model.classifier.weight.device == "meta"
    assert "device='meta'" in repr(model.fc1.weight)


def test_meta_summary_of_dictnet_is_shapes_only_and_exact():
    with nn.meta():
        model = jaderberg.dictnet()
    result, peak = peak_of(lambda: nl.summary(model, jaderberg.INPUT_SHAPE))
    totals = result.totals
    assert totals["forward"] == "shapes" and totals["meta"] is True
    assert totals["param_bytes"] == 4 * 491_119_724 and result.fits is False
    assert totals["output_shape"] == "(1, 88172)"
    assert totals["required_bytes"] == totals["param_bytes"] + totals["input_bytes"] + \
        totals["activation_bytes"]
    assert peak < 16 << 20  # the activations of one image, not the 1.83 GiB of weights


def test_meta_summary_matches_the_real_one():
    nl.manual_seed(0)
    real = ConvLSTMNet()
    with nn.meta():
        meta_model = ConvLSTMNet()
    nn.materialize(meta_model)  # the LSTM has no shape rule: summarise materialised
    for model in (real, meta_model):
        model.eval()
    a = nl.summary(real, INPUT_SHAPE, batch=2)
    b = nl.summary(meta_model, INPUT_SHAPE, batch=2)
    assert [r.as_dict() for r in a.rows] == [r.as_dict() for r in b.rows]

    def small():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.Flatten(), nn.Linear(4 * 8 * 12, 5))
    real = small()
    with nn.meta():
        shapes = small()
    for train in (False, True):
        x = nl.summary(real, INPUT_SHAPE, batch=3, train=train)
        y = nl.summary(shapes, INPUT_SHAPE, batch=3, train=train)
        assert y.totals["forward"] == "shapes" and x.totals["forward"] == "real"
        keys = ("params", "param_bytes", "flops", "activation_bytes", "output_shape") + \
            (("kept_for_backward_bytes",) if train else ("required_bytes",))
        for key in keys:
            assert x.totals[key] == y.totals[key], (train, key)
        if train:  # the real one measured its backward too; shapes only cannot
            assert x.totals["required_bytes"] >= y.totals["required_bytes"]
        assert [r.output_shape for r in x.rows] == [r.output_shape for r in y.rows]


def test_materialize_and_to_empty():
    with nn.meta():
        model = jaderberg.charnet(width_divisor=8, hidden=64)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    params = {n: p for n, p in model.named_parameters()}
    nn.materialize(model)
    assert {n: p.shape for n, p in model.named_parameters()} == shapes
    assert all(isinstance(p.data, np.ndarray) and p.dtype == np.float32
               for p in model.parameters())
    assert all(params[n] is p for n, p in model.named_parameters())  # same Parameters
    bound = np.sqrt(6 / (64 + 64))
    assert 0.5 * bound < np.abs(model.fc2.weight.numpy()).max() <= bound  # Glorot, initialised
    assert not model.fc2.bias.numpy().any()
    y = model(nl.tensor(np.zeros((1,) + jaderberg.INPUT_SHAPE, np.float32)))
    assert y.shape == (1, 23, 37)
    with nn.meta():
        other = nn.Linear(3, 2)
    other.to_empty(device="cpu")
    assert other.weight.data.shape == (2, 3) and other.weight.dtype == np.float32


def test_meta_parameters_refuse_values_and_loading():
    with nn.meta():
        layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="Parameter@meta"):  # a DeviceMismatchError
        layer(nl.tensor(np.ones((1, 3), np.float32)))
    with pytest.raises(RuntimeError, match="meta device has no values"):
        layer.weight.numpy()
    with pytest.raises(nn.StateDictError, match="meta device.*to_empty"):
        layer.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2)})
    assert nn.Linear(3, 2, device="meta").weight.device == "meta"
    assert isinstance(MetaArray((2, 3)).astype(np.float64), MetaArray)
    assert MetaArray((2, 3), np.float16).nbytes == 12


# ------------------------------------------------------ streaming loads --

def test_loading_streams_into_the_parameters(tmp_path):
    """A format-2 load checks each array's CRC in chunks, then reads it into
    its parameter: the peak is the parameters plus a chunk, not twice them."""
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4000, 2000), nn.Linear(2000, 10))
    path = tmp_path / "big.h5"
    nl.io.save(path, model)
    with nn.meta():
        fresh = nn.Sequential(nn.Linear(4000, 2000), nn.Linear(2000, 10))

    def load():
        fresh.to_empty(device="cpu")
        nl.io.load(path, fresh)
    _, peak = peak_of(load)
    params = sum(p.data.nbytes for p in model.parameters())
    assert peak < params + (17 << 20), (peak, params)  # one 16 MiB chunk of slack
    for a, b in zip(model.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    double = nn.Sequential(nn.Linear(4000, 2000), nn.Linear(2000, 10)).double()
    nl.io.load(path, double)  # another dtype: read in chunks and cast
    np.testing.assert_array_equal(double[0].weight.numpy(), model[0].weight.numpy())


def test_a_file_changed_between_check_and_read_is_reported(tmp_path, monkeypatch):
    from nnlite.io import checkpoint
    model = nn.Linear(30, 20)
    path = tmp_path / "m.h5"
    nl.io.save(path, model)
    import h5py
    with h5py.File(path, "r+") as f:
        recorded = checkpoint._chunked_crc32(f["model/weight"])
        f["model/weight"][0, 0] += 1.0  # changed after the check below saw it intact
    real = checkpoint._chunked_crc32
    monkeypatch.setattr(checkpoint, "_chunked_crc32", lambda dataset: recorded
                        if dataset.name == "/model/weight" else real(dataset))
    with pytest.raises(nl.io.CheckpointError, match="changed while it was being loaded"):
        nl.io.load(path, nn.Linear(30, 20))
