"""Layers against NumPy, gradchecks in float64, initialiser statistics."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn


def rng(seed=0):
    return np.random.default_rng(seed)


# -- Linear ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_matches_numpy(device, dtype):
    layer = nn.Linear(5, 3, dtype=dtype).to(device)
    x = rng().standard_normal((4, 2, 5)).astype(dtype)
    y = layer(nl.tensor(x, device=device))
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert y.dtype == dtype and y.shape == (4, 2, 3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.numpy(), x @ w.T + b, rtol=tol, atol=tol)


def test_linear_without_bias_and_its_errors():
    layer = nn.Linear(4, 2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    x = rng().standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(nl.tensor(x)).numpy(), x @ layer.weight.numpy().T,
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"linear: input of shape \(3, 5\)"):
        layer(nl.randn(3, 5))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 2)
    with pytest.raises(ValueError, match="init='he'"):
        nn.Linear(2, 2, init="he")


def test_linear_gradcheck_float64():
    layer = nn.Linear(4, 3, dtype=np.float64)
    x = nl.tensor(rng().standard_normal((5, 4)), requires_grad=True)
    assert nl.gradcheck(lambda x, w, b: layer(x), (x, layer.weight, layer.bias))


def test_linear_default_init_is_pytorchs_and_reproducible():
    nl.manual_seed(7)
    a = nn.Linear(400, 300)
    nl.manual_seed(7)
    b = nn.Linear(400, 300)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    bound = 1 / math.sqrt(400)  # kaiming_uniform(a=sqrt(5)) and the bias rule agree
    for p in (a.weight.numpy(), a.bias.numpy()):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.95 * bound
    assert abs(a.weight.numpy().std() - bound / math.sqrt(3)) < 0.02 * bound


def test_linear_glorot_init_bounds_and_zero_bias():
    layer = nn.Linear(300, 200, init="glorot")
    bound = math.sqrt(6 / (300 + 200))
    w = layer.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert not layer.bias.numpy().any()


# -- BatchNorm ------------------------------------------------------------------------

BN_CASES = [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5)), (nn.BatchNorm2d, (3, 3, 2, 4))]


def numpy_batch_norm_train(x, weight, bias, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    xhat = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return xhat * weight.reshape(shape) + bias.reshape(shape)


def perturbed_bn(cls, channels, seed=0):
    bn = cls(channels).double()
    r = rng(seed)
    bn.weight.data[...] = r.uniform(0.5, 1.5, channels)
    bn.bias.data[...] = r.standard_normal(channels)
    bn.running_mean.data[...] = r.standard_normal(channels)
    bn.running_var.data[...] = r.uniform(0.5, 2.0, channels)
    return bn


@pytest.mark.parametrize("cls, shape", BN_CASES)
def test_batch_norm_train_output_matches_numpy(cls, shape):
    bn = perturbed_bn(cls, shape[1])
    x = rng(1).standard_normal(shape) * 3 + 1
    y = bn(nl.tensor(x))
    expected = numpy_batch_norm_train(x, bn.weight.numpy(), bn.bias.numpy(), bn.eps)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls, shape", BN_CASES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(cls, shape, training):
    bn = perturbed_bn(cls, shape[1]).train(training)
    x = nl.tensor(rng(2).standard_normal(shape), requires_grad=True)
    assert nl.gradcheck(lambda x, w, b: bn(x), (x, bn.weight, bn.bias))


def test_batch_norm_eval_uses_running_statistics():
    bn = perturbed_bn(nn.BatchNorm2d, 3).eval()
    x = rng(3).standard_normal((2, 3, 4, 4))
    shape = (1, 3, 1, 1)
    expected = ((x - bn.running_mean.numpy().reshape(shape))
                / np.sqrt(bn.running_var.numpy().reshape(shape) + bn.eps)
                * bn.weight.numpy().reshape(shape) + bn.bias.numpy().reshape(shape))
    np.testing.assert_allclose(bn(nl.tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batch_norm_running_statistics_follow_pytorchs_formula(momentum):
    bn = nn.BatchNorm2d(3, momentum=momentum).double()
    mean, var = np.zeros(3), np.ones(3)
    for step in range(1, 5):
        x = rng(step).standard_normal((4, 3, 2, 5)) * step + step
        bn(nl.tensor(x))
        # PyTorch: unbiased batch variance, cumulative average when momentum is None.
        factor = 1 / step if momentum is None else momentum
        mean = (1 - factor) * mean + factor * x.mean(axis=(0, 2, 3))
        var = (1 - factor) * var + factor * x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 4


def test_batch_norm_without_running_stats_or_affine():
    bn = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = rng(4).standard_normal((8, 2))
    expected = numpy_batch_norm_train(x, np.ones(2), np.zeros(2), bn.eps)
    np.testing.assert_allclose(bn(nl.tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_batch_norm_rejects_wrong_input_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4-D \(N, C, H, W\) input, "
                                         r"got 3-D input of shape \(2, 3, 4\)"):
        nn.BatchNorm2d(3)(nl.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2-D \(N, C\) or 3-D"):
        nn.BatchNorm1d(3)(nl.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\): input of shape \(2, 3\) has 3 "
                                         r"channels"):
        nn.BatchNorm1d(4)(nl.randn(2, 3))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(4, momentum=1.5)


# -- Dropout and activations ----------------------------------------------------------

def test_dropout_eval_is_identity_and_train_scales_kept_units():
    x = nl.ones(200, 500)
    drop = nn.Dropout(0.3)
    assert drop.eval()(x) is x
    nl.manual_seed(0)
    y = drop.train()(x).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], "
                                         r"got 1.5"):
        nn.Dropout(1.5)


def test_activations_match_numpy():
    x = rng(5).standard_normal((3, 4)) * 4
    t = nl.tensor(x)
    e = np.exp(x - x.max(axis=0))
    cases = [(nn.ReLU(), np.maximum(x, 0)), (nn.ReLU6(), np.clip(x, 0, 6)),
             (nn.Sigmoid(), 1 / (1 + np.exp(-x))), (nn.Tanh(), np.tanh(x)),
             (nn.Softmax(dim=0), e / e.sum(axis=0)),
             (nn.LogSoftmax(dim=0), np.log(e / e.sum(axis=0))),
             (nn.Identity(7, key=1), x), (nn.Flatten(0), x.reshape(-1))]
    for module, expected in cases:
        np.testing.assert_allclose(module(t).numpy(), expected, rtol=1e-9, atol=1e-12,
                                   err_msg=type(module).__name__)


# -- Losses ---------------------------------------------------------------------------

def test_loss_modules_match_numpy():
    r = rng(6)
    logits = r.standard_normal((5, 3))
    target = np.array([0, 2, 1, 2, 0])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    weight = np.array([1.0, 2.0, 0.5])
    picked = log_p[np.arange(5), target]
    ce = nn.CrossEntropyLoss(weight=nl.tensor(weight))(nl.tensor(logits), nl.tensor(target))
    np.testing.assert_allclose(ce.item(), -(weight[target] * picked).sum() / weight[target].sum())
    nll = nn.NLLLoss(reduction="sum")(nl.tensor(log_p), nl.tensor(target))
    np.testing.assert_allclose(nll.item(), -picked.sum())
    y = r.standard_normal((5, 3))
    mse = nn.MSELoss()(nl.tensor(logits), nl.tensor(y))
    np.testing.assert_allclose(mse.item(), ((logits - y) ** 2).mean())
    z = (y > 0).astype(np.float64)
    bce = nn.BCEWithLogitsLoss(reduction="none")(nl.tensor(logits), nl.tensor(z))
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(bce.numpy(), -(z * np.log(p) + (1 - z) * np.log(1 - p)))
    with pytest.raises(ValueError, match="reduction='avg'"):
        nn.MSELoss(reduction="avg")


def test_loss_weight_is_a_buffer():
    loss = nn.CrossEntropyLoss(weight=nl.tensor(np.ones(3)))
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []


# -- init -----------------------------------------------------------------------------

def test_fans_follow_pytorch_for_linear_and_conv_weights():
    assert nn.init.calculate_fan_in_and_fan_out(nl.zeros(30, 20)) == (20, 30)
    assert nn.init.calculate_fan_in_and_fan_out(nl.zeros(16, 8, 3, 3)) == (72, 144)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
        nn.init.xavier_uniform_(nl.zeros(5))


def test_uniform_initialisers_reach_their_bounds():
    w = nl.zeros(64, 32, 3, 3)
    cases = [(nn.init.xavier_uniform_, math.sqrt(6 / (288 + 576))),
             (nn.init.glorot_uniform_, math.sqrt(6 / (288 + 576))),
             (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(6 / 288)),
             (lambda t: nn.init.uniform_(t, -0.2, 0.2), 0.2)]
    for fill, bound in cases:
        values = fill(w).numpy()
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
        assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound


def test_normal_initialisers_have_the_expected_std():
    w = nl.zeros(256, 128, dtype=np.float64)
    cases = [(nn.init.xavier_normal_, math.sqrt(2 / (128 + 256))),
             (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
              math.sqrt(2 / 256)),
             (lambda t: nn.init.normal_(t, 0.0, 0.05), 0.05)]
    for fill, std in cases:
        values = fill(w).numpy()
        assert abs(values.std() - std) < 0.02 * std and abs(values.mean()) < 0.02 * std


def test_constant_and_orthogonal_initialisers():
    w = nl.zeros(3, 4)
    assert (nn.init.constant_(w, 0.5).numpy() == 0.5).all()
    assert (nn.init.ones_(w).numpy() == 1).all() and not nn.init.zeros_(w).numpy().any()
    for shape in [(3, 5), (5, 3), (4, 2, 2)]:
        q = nn.init.orthogonal_(nl.zeros(*shape, dtype=np.float64)).numpy().reshape(shape[0], -1)
        small = min(q.shape)
        gram = q @ q.T if q.shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    with pytest.raises(ValueError, match="unsupported nonlinearity 'gelu'"):
        nn.init.calculate_gain("gelu")


def test_batch_norm_of_an_empty_batch_is_empty_as_in_pytorch():
    bn = perturbed_bn(nn.BatchNorm2d, 3)
    mean, var = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    assert bn(nl.tensor(np.zeros((0, 3, 4, 4)))).shape == (0, 3, 4, 4)
    np.testing.assert_array_equal(bn.running_mean.numpy(), mean)  # no statistics to learn
    np.testing.assert_array_equal(bn.running_var.numpy(), var)
    # PyTorch constructs BatchNorm2d(0) but its forward fails inside ATen
    # (IndexError); here the layer is refused when built, with a message.
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be a positive int, "
                                         "got 0"):
        nn.BatchNorm2d(0)
