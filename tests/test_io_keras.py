"""load_keras_h5 against real tf.keras 2.15 files (tests/fixtures, made by
make_keras_crnn.py and make_keras_flatten.py; TensorFlow is not needed here)
and bad files."""
import json
import os

import h5py
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.io import KerasImportError, load_keras_h5
from nnlite.models import crnn as C

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
WEIGHTS = os.path.join(FIXTURES, "keras_crnn_weights.h5")
MODEL = os.path.join(FIXTURES, "keras_crnn_model.h5")


FLATTEN_WEIGHTS = os.path.join(FIXTURES, "keras_flatten_weights.h5")
FLATTEN_MODEL = os.path.join(FIXTURES, "keras_flatten_model.h5")
FLATTEN_BN_WEIGHTS = os.path.join(FIXTURES, "keras_flatten_bn_weights.h5")


@pytest.fixture(scope="module")
def reference():
    return np.load(os.path.join(FIXTURES, "keras_crnn_io.npz"))


def reduced_crnn(reference, **options):
    return C.crnn(channels=tuple(int(c) for c in reference["channels"]),
                  hidden_size=int(reference["hidden"]), **options)


def test_fixture_is_small_and_from_keras_2(reference):
    total = sum(os.path.getsize(os.path.join(FIXTURES, f)) for f in os.listdir(FIXTURES)
                if not f.endswith(".py"))
    assert total < 2 * 1024 * 1024
    assert "keras 2." in str(reference["versions"])


@pytest.mark.parametrize("path", [WEIGHTS, MODEL], ids=["save_weights", "model_checkpoint"])
def test_reproduces_keras_outputs(reference, path, device):
    nl.manual_seed(0)
    model = reduced_crnn(reference).to(device)  # loading keeps each array's device
    assert load_keras_h5(model, path) is model
    model.eval()
    x = nl.tensor(np.ascontiguousarray(reference["x_nhwc"].transpose(0, 3, 1, 2)),
                  device=device)
    with nl.no_grad():
        features = model.features(x).numpy()[:, :, 0, :].transpose(0, 2, 1)
        log_probs = model(x).numpy()
    assert log_probs.shape == reference["probs"].shape == (2, 15, 63)
    np.testing.assert_allclose(features, reference["features"], atol=1e-5)
    np.testing.assert_allclose(np.exp(log_probs), reference["probs"], atol=1e-5)
    np.testing.assert_allclose(log_probs, np.log(reference["probs"]), atol=1e-5)
    # The fixture is not degenerate: peaked, varied class scores and features.
    assert reference["probs"].max() > 0.5 and reference["features"].std() > 0.1
    assert np.log(reference["probs"]).min() < -10
    assert len(set(reference["probs"].argmax(axis=2).ravel())) > 1


def test_array_mapping_read_back_from_the_file(reference):
    model = load_keras_h5(reduced_crnn(reference), WEIGHTS)
    with h5py.File(WEIGHTS, "r") as f:
        kernel = f["conv2d_6/conv2d_6/kernel:0"][()]
        np.testing.assert_array_equal(model.conv7.weight.numpy(), kernel.transpose(3, 2, 0, 1))
        bn = f["batch_normalization_1/batch_normalization_1"]
        np.testing.assert_array_equal(model.bn6.running_var.numpy(), bn["moving_variance:0"])
        np.testing.assert_array_equal(model.bn6.weight.numpy(), bn["gamma:0"])
        lstm = f["bidirectional/bidirectional/backward_lstm/lstm_cell"]
        np.testing.assert_array_equal(model.blstm1.weight_ih_l0_reverse.numpy(),
                                      lstm["kernel:0"][()].T)
        np.testing.assert_array_equal(model.blstm1.weight_hh_l0_reverse.numpy(),
                                      lstm["recurrent_kernel:0"][()].T)
        np.testing.assert_array_equal(model.blstm1.bias_ih_l0_reverse.numpy(), lstm["bias:0"])
        assert not model.blstm1.bias_hh_l0_reverse.numpy().any()
        np.testing.assert_array_equal(model.fc.weight.numpy(), f["dense/dense/kernel:0"][()].T)
    assert int(model.bn6.num_batches_tracked.item()) == 0


def test_wrong_width_names_file_layer_and_shapes(reference):
    model = C.crnn(channels=(4, 8, 8, 8, 16, 16, 16), hidden_size=16)
    before = model.fc.weight.numpy().copy()
    with pytest.raises(KerasImportError) as info:
        load_keras_h5(model, WEIGHTS)
    message = str(info.value)
    assert WEIGHTS in message and "bidirectional" in message
    assert "(64, 16)" in message and "(32, 16)" in message
    np.testing.assert_array_equal(model.fc.weight.numpy(), before)  # nothing copied


def test_wrong_architecture_names_both_layers(reference):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(4, 4))
    with pytest.raises(KerasImportError, match="has 12 Keras layers with weights.*but the model has 2"):
        load_keras_h5(model, WEIGHTS)


def test_missing_layer_and_missing_array(tmp_path, reference):
    broken = tmp_path / "broken.h5"
    with h5py.File(WEIGHTS, "r") as src, h5py.File(broken, "w") as dst:
        for key in src:
            src.copy(src[key], dst, name=key)
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        del dst["dense/dense/bias:0"]
    with pytest.raises(KerasImportError, match="layer 'dense' lists weight 'dense/bias:0' but"):
        load_keras_h5(reduced_crnn(reference), str(broken))
    with h5py.File(broken, "a") as f:
        f.attrs["layer_names"] = [n for n in f.attrs["layer_names"] if n not in ("dense", b"dense")]
    with pytest.raises(KerasImportError, match=r"11 Keras layers.*\('fc', 'dense'\)"):
        load_keras_h5(reduced_crnn(reference), str(broken))


def test_not_hdf5_and_not_keras(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(KerasImportError, match=f"cannot read {junk} as HDF5"):
        load_keras_h5(C.crnn(channels=(2,) * 7, hidden_size=2), str(junk))
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(KerasImportError, match="no Keras weights.*'something'"):
        load_keras_h5(C.crnn(channels=(2,) * 7, hidden_size=2), str(empty))


def test_model_file_gate_activation_is_checked(reference):
    model = reduced_crnn(reference, gate_activation="hard_sigmoid")
    with pytest.raises(KerasImportError, match="recurrent_activation='sigmoid'"):
        load_keras_h5(model, MODEL)


def test_unidirectional_lstm_and_cudnn_bias(tmp_path):
    """A hand-written Keras layout: one LSTM layer with CuDNNLSTM's (8H,) bias."""
    rng = np.random.default_rng(0)
    kernel, recurrent, bias = (rng.standard_normal(s).astype(np.float32)
                               for s in ((3, 8), (2, 8), (16,)))
    path = tmp_path / "lstm.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"cu_dnnlstm"]
        group = f.create_group("cu_dnnlstm")
        names = [b"cu_dnnlstm/kernel:0", b"cu_dnnlstm/recurrent_kernel:0", b"cu_dnnlstm/bias:0"]
        group.attrs["weight_names"] = names
        for name, value in zip(names, (kernel, recurrent, bias)):
            group[name.decode()] = value
    model = nn.Sequential(nn.LSTM(3, 2))
    load_keras_h5(model, str(path))
    np.testing.assert_array_equal(model[0].weight_ih_l0.numpy(), kernel.T)
    np.testing.assert_array_equal(model[0].weight_hh_l0.numpy(), recurrent.T)
    np.testing.assert_array_equal(model[0].bias_ih_l0.numpy(), bias[:8])
    np.testing.assert_array_equal(model[0].bias_hh_l0.numpy(), bias[8:])


def test_layers_without_keras_counterpart_are_refused():
    with pytest.raises(KerasImportError, match="'0' \\(NALU\\) has no Keras counterpart"):
        load_keras_h5(nn.Sequential(nn.NALU(2, 1)), WEIGHTS)


# ---------------------------------------------------------------- Flatten --

@pytest.fixture(scope="module")
def flatten_reference():
    return np.load(os.path.join(FIXTURES, "keras_flatten_io.npz"))


def flatten_net():
    """make_keras_flatten.py's `flatten` model, layer for layer (Keras's
    BatchNormalization epsilon is 1e-3)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4, eps=1e-3),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(72, 8), nn.ReLU(), nn.Linear(8, 5))


def flatten_bn_net():
    return nn.Sequential(nn.Conv2d(2, 3, 2), nn.ReLU(), nn.Flatten(),
                         nn.BatchNorm1d(60, eps=1e-3), nn.Linear(60, 4))


def nchw(x_nhwc):
    return nl.tensor(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("path", [FLATTEN_WEIGHTS, FLATTEN_MODEL],
                         ids=["save_weights", "model_save"])
def test_dense_after_flatten_reproduces_keras(flatten_reference, path):
    # Keras flattens (h, w, c), nnlite (c, h, w): the Dense kernel's rows must
    # be permuted, or the outputs differ by tens.
    assert "keras 2." in str(flatten_reference["versions"])
    model = load_keras_h5(flatten_net(), path).eval()
    with nl.no_grad():
        out = model(nchw(flatten_reference["x_nhwc"])).numpy()
    expected = flatten_reference["out"]
    assert np.abs(expected).max() > 1.0  # not a degenerate fixture
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


def test_batchnorm_over_a_flattened_map_reproduces_keras(flatten_reference):
    # The same order applies to a BatchNormalization between Flatten and Dense.
    model = load_keras_h5(flatten_bn_net(), FLATTEN_BN_WEIGHTS).eval()
    with nl.no_grad():
        out = model(nchw(flatten_reference["x_bn_nhwc"])).numpy()
    expected = flatten_reference["out_bn"]
    assert np.abs(expected).max() > 1.0
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


def test_dense_after_flatten_permutes_rows_from_hwc_to_chw():
    model = load_keras_h5(flatten_net(), FLATTEN_WEIGHTS)
    with h5py.File(FLATTEN_WEIGHTS, "r") as f:
        kernel = f["dense/dense/kernel:0"][()]  # (72, 8), rows in (h, w, c) = (4, 3, 6) order
    hwc = kernel.reshape(4, 3, 6, 8)
    weight = model[7].weight.numpy()            # (8, 72), columns in (c, h, w) order
    for c, h, w in [(0, 0, 0), (5, 0, 0), (0, 3, 0), (0, 0, 2), (2, 1, 1), (5, 3, 2)]:
        np.testing.assert_array_equal(weight[:, c * 12 + h * 3 + w], hwc[h, w, c])
    # the second Dense follows a Dense: a plain transpose
    with h5py.File(FLATTEN_WEIGHTS, "r") as f:
        np.testing.assert_array_equal(model[9].weight.numpy(), f["dense_1/dense_1/kernel:0"][()].T)


def test_channels_first_model_is_refused(tmp_path):
    # Its Flatten order is not (h, w, c): importing it as channels-last would
    # scramble the Dense rows, so the config's data_format is checked.
    changed = tmp_path / "channels_first.h5"
    with open(FLATTEN_MODEL, "rb") as src:
        changed.write_bytes(src.read())
    with h5py.File(changed, "a") as f:
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Conv2D" and layer["config"]["name"] == "conv2d_1":
                layer["config"]["data_format"] = "channels_first"
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(KerasImportError, match="'conv2d_1' \\(Conv2D\\) uses "
                                               "data_format='channels_first'"):
        load_keras_h5(flatten_net(), str(changed))


def test_damaged_config_and_arrays_are_keras_import_errors(tmp_path):
    # A cut JSON config used to raise a bare JSONDecodeError.
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(open(FLATTEN_MODEL, "rb").read())
    with h5py.File(damaged, "a") as f:
        f.attrs["model_config"] = f.attrs["model_config"][:-7]
    with pytest.raises(KerasImportError, match="damaged.h5: its model_config attribute is not "
                                               "valid JSON"):
        load_keras_h5(flatten_net(), str(damaged))
    damaged.write_bytes(open(FLATTEN_WEIGHTS, "rb").read())
    with h5py.File(damaged, "a") as f:
        kernel = f["dense/dense/kernel:0"]
        values = kernel[()]
        values[3, 2] = np.inf  # what a flipped exponent bit can make of a weight
        kernel[...] = values
    with pytest.raises(KerasImportError, match="'dense/kernel:0' holds NaN or infinite"):
        load_keras_h5(flatten_net(), str(damaged))
