"""SVHN "paper convolution" model and its no-pooling variant (SPECS section 6)."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.models import svhn

# By hand: convs 3,648 + 76,864 + 204,928 + 512,160 + 123,072 + 147,648 = 1,068,320;
# heads 6 * (1536*11 + 11) = 101,442; box 1536*4 + 4 = 6,148.
PAPER_PARAMETERS = 1_175_910
# plus six 2x2 stride-2 convs: 9,264 + 16,448 + 65,664 + 102,560 + 2 * 147,648
NO_POOLING_PARAMETERS = 1_665_142

SPECS_SHAPES = [("conv1", (48, 64, 128)), ("conv2", (64, 32, 64)), ("conv3", (128, 16, 32)),
                ("conv4", (160, 8, 16)), ("conv5", (192, 4, 8)), ("conv6", (192, 2, 4)),
                ("flatten", (1536,)), ("digits", (6, 11)), ("box", (4,))]


@pytest.fixture(scope="module", params=[True, False], ids=["paper", "no_pooling"])
def model(request):
    nl.manual_seed(0)
    return svhn.svhn(pooling=request.param)


@pytest.fixture(scope="module")
def images():
    return nl.tensor(np.random.default_rng(0).standard_normal((2, 3, 128, 256)),
                     dtype=np.float32)


def test_layer_shapes_follow_specs(model, images):
    with nl.no_grad():
        outputs = model.trace(images)
    assert [(name, out.shape) for name, out in outputs] == \
        [(name, (2,) + shape) for name, shape in SPECS_SHAPES]


def test_parameter_totals(model):
    expected = PAPER_PARAMETERS if model.pooling else NO_POOLING_PARAMETERS
    assert model.num_parameters() == expected == svhn.parameter_count(model.pooling)
    assert round(PAPER_PARAMETERS / 1e6, 2) == 1.18


def test_forward_backward_with_weighted_loss_and_l2(model, images):
    model.zero_grad()
    labels = np.array([[1, 2, 10, 10, 10, 10], [5, 0, 3, 10, 10, 10]])
    boxes = np.array([[30.0, 40.0, 50.0, 60.0], [10.0, 20.0, 70.0, 120.0]])
    total, ce, mse = svhn.loss(model, model(images), labels, boxes)
    total.backward()
    l2 = sum(float((w.numpy().astype(np.float64) ** 2).sum()) for w in model.conv_weights()) / 2
    assert math.isclose(total.item(), 1000 * ce.item() + mse.item() + 0.001 * l2, rel_tol=1e-4)
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape, name
    assert len(model.conv_weights()) == (6 if model.pooling else 12)


def test_no_digit_class_is_down_weighted():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 6, 11))
    labels = rng.integers(0, 11, (4, 6))
    labels[0, :] = 10
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    ce = -np.take_along_axis(log_probs, labels[..., None], 2)[..., 0]
    expected = (ce * np.where(labels == 10, 0.125, 1.0)).mean()
    model = type("NoConvs", (), {"conv_weights": lambda self: []})()
    _, got, _ = svhn.loss(model, (nl.tensor(logits), nl.tensor(np.zeros((4, 4)))), labels,
                          np.zeros((4, 4)), l2_weight=0)
    assert math.isclose(got.item(), expected, rel_tol=1e-10)
    with pytest.raises(ValueError, match=r"digit labels have shape \(4, 5\)"):
        svhn.loss(model, (nl.tensor(logits), nl.tensor(np.zeros((4, 4)))), labels[:, :5],
                  np.zeros((4, 4)))


def test_preprocessing_and_bad_input(model):
    rng = np.random.default_rng(2)
    raw = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((40, 90), (150, 300))]
    resized = np.stack([svhn.resize(image).transpose(2, 0, 1) for image in raw])
    assert resized.shape == (2, 3, 128, 256) and resized.max() <= 1.0
    mean, std = svhn.fit_normalisation(resized)
    normalised = svhn.normalise(resized, mean, std)
    assert normalised.dtype == np.float32
    np.testing.assert_allclose(normalised.mean(axis=0), 0, atol=1e-6)
    with pytest.raises(ValueError, match=r"image has shape \(5, 5\); expected \(H, W, 3\)"):
        svhn.resize(np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"svhn: input has shape \(2, 1, 128, 256\).*"
                                         r"\(C, H, W\) = \(3, 128, 256\)"):
        model(nl.zeros((2, 1, 128, 256)))


def test_config():
    config = svhn.default_config()
    assert config["no_digit_weight"] == 0.125 and config["l2_weight"] == 0.001
    assert config["classification_weight"] == 1000.0
    assert svhn.default_config(pooling=False)["model"] == "svhn_no_pooling"
    assert set(svhn.MODELS) == {"svhn", "svhn_no_pooling"}
    assert svhn.MODELS["svhn_no_pooling"]().pooling is False


def test_box_bias_sets_the_box_head_and_checks_its_values():
    net = svhn.svhn_no_pooling(box_bias=[128, 64, 28, 84])
    np.testing.assert_array_equal(net.box_head.bias.numpy(), [128, 64, 28, 84])
    assert (svhn.svhn().box_head.bias.numpy() == 0).all()  # the seed's start
    for bad in ([1, 2, 3], [1, 2, 3, float("inf")], "mean"):
        with pytest.raises(ValueError, match="svhn: box_bias must be 4 finite numbers"):
            svhn.svhn(box_bias=bad)
