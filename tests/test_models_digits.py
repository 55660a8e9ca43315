"""Digit-sequence localisation model (SPECS section 5): shapes, exact parameter
totals, variants, losses, variable-length labels and metrics."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.models import digit_sequence as ds

# By hand from SPECS's table: convs 808 + 7,182 + 10,100 + 7,704 + 3,104 = 28,898;
# GRU 3*576*(1024 + 576) weights + 2 * 3*576 biases (PyTorch's b_ih and b_hh) =
# 2,768,256; heads 5 * (576*11 + 11) = 31,735; box 787,200 + 393,728 + 131,328 +
# 16,448 + 2,080 + 132 = 1,330,916.
DIGIT_PARAMETERS = 4_159_805
TENSORFLOW_GRU_PARAMETERS = 4_158_077  # one 3*576 bias vector, as tf's GRUCell

SPECS_SHAPES = [("conv1", (8, 64, 128)), ("conv2", (14, 32, 64)), ("conv3", (20, 16, 32)),
                ("conv4", (24, 8, 16)), ("conv5", (32, 4, 8)), ("flatten", (1024,)),
                ("digits", (5, 11)), ("box", (4,))]


@pytest.fixture(scope="module")
def model():
    nl.manual_seed(0)
    return ds.digit_sequence()


@pytest.fixture(scope="module")
def canvas():
    return nl.tensor(np.random.default_rng(0).random((2, 1, 128, 256)), dtype=np.float32)


def test_layer_shapes_follow_specs(model, canvas):
    with nl.no_grad():
        outputs = model.trace(canvas)
    assert [(name, out.shape) for name, out in outputs] == \
        [(name, (2,) + shape) for name, shape in SPECS_SHAPES]


def test_parameter_total_matches_specs(model):
    assert model.num_parameters() == DIGIT_PARAMETERS == ds.parameter_count()
    assert ds.parameter_count(gru_biases=1) == TENSORFLOW_GRU_PARAMETERS
    for total in (DIGIT_PARAMETERS, TENSORFLOW_GRU_PARAMETERS):
        assert round(total / 1e6, 2) == 4.16
    assert model.gru.reset_after is False  # TensorFlow's GRUCell, as the seed


def test_forward_backward_weighted_loss(model, canvas):
    model.zero_grad()
    labels = ds.encode_digits(["12345", "907"])
    boxes = np.array([[100.0, 60.0, 28.0, 140.0], [80.0, 40.0, 28.0, 84.0]])
    total, ce, mse = ds.loss(model(canvas), labels, boxes)
    total.backward()
    assert math.isclose(total.item(), 1000 * ce.item() + mse.item(), rel_tol=1e-5)
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape, name
    assert np.abs(model.gru.weight_ih.grad.numpy()).sum() > 0
    assert np.abs(model.convs[0].weight.grad.numpy()).sum() > 0


def test_gru_runs_five_steps_on_the_same_input(model, canvas):
    with nl.no_grad():
        digits, _ = model(canvas)
        features = model.trace(canvas)[5][1]
        state = None
        for step in range(5):  # the cell by hand, zero initial state
            state = model.gru(features, state)
            np.testing.assert_allclose(digits.numpy()[:, step],
                                       model.digit_heads[step](state).numpy(), rtol=1e-6)


def test_losses_match_numpy():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 5, 11))
    labels = rng.integers(0, 11, (3, 5))
    box, target = rng.standard_normal((3, 4)) * 10, rng.standard_normal((3, 4)) * 10
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    ce = -np.take_along_axis(log_probs, labels[..., None], 2)[..., 0]
    mse = ((box - target) ** 2).mean()
    outputs = (nl.tensor(logits), nl.tensor(box))
    for variant, expected in (("weighted", 1000 * ce.mean() + mse),
                              ("unweighted", ce.mean() + mse),
                              ("square", 1000 * ce.mean() + ((box - target) ** 2).sum(1).mean())):
        total, _, _ = ds.loss(outputs, labels, target, variant=variant)
        assert math.isclose(total.item(), expected, rel_tol=1e-10), variant
    weights = np.linspace(0.5, 1.5, 11)
    weighted = ds.sequence_cross_entropy(nl.tensor(logits), labels, weights).item()
    assert math.isclose(weighted, (ce * weights[labels]).mean(), rel_tol=1e-10)
    with pytest.raises(ValueError, match="variant='l1' is not one of"):
        ds.loss(outputs, labels, target, variant="l1")
    with pytest.raises(ValueError, match=r"digit labels have shape \(3, 4\); expected"):
        ds.loss(outputs, labels[:, :4], target)
    with pytest.raises(ValueError, match=r"box targets have shape \(3, 2\)"):
        ds.loss(outputs, labels, target[:, :2])


def test_variable_length_labels_decoding_and_metrics():
    labels = ds.encode_digits(["7", "0123", [4, 5, 6, 7, 8]])
    assert labels.tolist() == [[7, 10, 10, 10, 10], [0, 1, 2, 3, 10], [4, 5, 6, 7, 8]]
    logits = np.zeros((3, 5, 11))
    logits[np.arange(3)[:, None], np.arange(5), labels] = 1.0
    assert ds.decode_digits(nl.tensor(logits)) == ["7", "0123", "45678"]
    logits[1, 2] = 0
    logits[1, 2, 9] = 1.0  # one wrong digit in one sequence
    sequence, character = ds.accuracies(nl.tensor(logits), labels)
    assert sequence == pytest.approx(2 / 3) and character == pytest.approx(14 / 15)
    assert ds.box_error(nl.tensor(np.ones((2, 4))), np.zeros((2, 4))) == 1.0
    with pytest.raises(ValueError, match="must be 1 to 5 digits"):
        ds.encode_digits(["123456"])
    with pytest.raises(ValueError, match="must be 1 to 5 digits"):
        ds.encode_digits([""])


def test_variants_deeper_dropout_and_pytorch_gru(canvas):
    nl.manual_seed(2)
    deeper = ds.digit_sequence(deeper=True, box_dropout=0.2, reset_after=True)
    with nl.no_grad():
        outputs = dict(deeper.trace(canvas))
    assert outputs["conv6"].shape == (2, 128, 2, 4) and outputs["flatten"].shape == (2, 1024)
    assert deeper.num_parameters() == DIGIT_PARAMETERS + 32 * 128 * 4 + 128
    assert deeper.gru.reset_after is True
    deeper.eval()
    with nl.no_grad():
        a, b = deeper(canvas)[1].numpy(), deeper(canvas)[1].numpy()
    np.testing.assert_array_equal(a, b)  # dropout off in eval
    deeper.train()
    with nl.no_grad():
        assert not np.array_equal(deeper(canvas)[1].numpy(), a)


def test_bad_input_and_config(model):
    with pytest.raises(ValueError, match=r"input has shape \(2, 1, 28, 140\).*"
                                         r"\(C, H, W\) = \(1, 128, 256\)"):
        model(nl.zeros((2, 1, 28, 140)))
    config = ds.default_config()
    assert (config["optimizer"], config["lr"], config["batch_size"]) == ("adam", 1e-4, 50)
    assert config["targets"]["sequence_accuracy"] == 0.74
    assert ds.default_config(variable_length=True)["targets"]["box_error"] == 2.93
    assert ds.INPUT_SHAPES == {"digit_sequence": (1, 128, 256),
                               "digit_sequence_variable": (1, 128, 256)}
    assert isinstance(ds.build(), ds.DigitSequenceNet)


def test_conv_init_he_keeps_the_canvas_signal_that_glorot_shrinks():
    # Glorot (the default, TensorFlow's layer default) leaves the heads'
    # 1024 input features with about a sixth of the canvas's across-image
    # spread after five ReLU + pool stages; He init amplifies it (measured:
    # glorot 0.013-0.016, He 0.22-0.28, canvas 0.086 on init seeds 0 and 1).
    train, _ = ds.digit_datasets("synth", 0, False, 1)
    x = nl.tensor(np.stack([np.asarray(train[i][0]) for i in range(16)]).astype(np.float32))
    canvas = x.numpy().reshape(16, -1).std(axis=0).mean()
    spread = {}
    for conv_init in ("glorot", "he"):
        nl.manual_seed(0)
        net = ds.digit_sequence(conv_init=conv_init)
        with nl.no_grad():
            features = dict(net.trace(x))["flatten"].numpy()
        spread[conv_init] = features.std(axis=0).mean()
    assert spread["glorot"] < 0.5 * canvas < canvas < spread["he"], (spread, canvas)
    assert all(conv.init == "he" and (conv.bias.numpy() == 0).all() for conv in net.convs)
    with pytest.raises(ValueError, match="Conv2d: init='bad'"):
        ds.digit_sequence(conv_init="bad")


def test_box_bias_sets_the_last_box_layer_and_checks_its_values():
    net = ds.digit_sequence(box_bias=[128, 64, 28, 140])
    np.testing.assert_array_equal(net.box_layers[-1].bias.numpy(), [128, 64, 28, 140])
    assert all((layer.bias.numpy() == 0).all() for layer in net.box_layers[:-1])
    for bad in ([1, 2, 3], [1, 2, 3, float("nan")], "mean"):
        with pytest.raises(ValueError, match="box_bias must be 4 finite numbers"):
            ds.digit_sequence(box_bias=bad)
