"""nn.NAC and nn.NALU against NumPy, float64 gradchecks, and the NALU
experiment models and data (SPECS section 4)."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.models import nalu as M


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_nac_weight(layer):
    return np.tanh(layer.W_hat.numpy()) * sigmoid(layer.M_hat.numpy())


def test_nac_forward_against_numpy():
    nl.manual_seed(0)
    layer = nn.NAC(4, 3)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(nl.tensor(x)).numpy(), x @ numpy_nac_weight(layer).T,
                               rtol=1e-5, atol=1e-6)
    assert [n for n, _ in layer.named_parameters()] == ["W_hat", "M_hat"]


@pytest.mark.parametrize("shared", [True, False])
def test_nalu_forward_against_numpy(shared):
    nl.manual_seed(1)
    layer = nn.NALU(4, 3, shared_weights=shared)
    x = np.random.default_rng(1).uniform(-2, 2, (5, 4))
    gate = sigmoid(x @ layer.G.numpy().T)
    added = x @ numpy_nac_weight(layer.nac).T
    log_weight = numpy_nac_weight(layer.nac if shared else layer.nac_log)
    multiplied = np.exp(np.log(np.abs(x) + 1e-7) @ log_weight.T)
    expected = gate * added + (1 - gate) * multiplied
    np.testing.assert_allclose(layer(nl.tensor(x.astype(np.float32))).numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    assert layer.num_parameters() == (3 if shared else 5) * 4 * 3
    assert layer.eps == 1e-7


def test_nac_and_nalu_can_represent_exact_arithmetic():
    x = nl.tensor([[3.0, 7.0], [-2.0, 5.0]])
    adder = nn.NAC(2, 1)
    adder.W_hat.data[...] = 20.0   # tanh -> 1
    adder.M_hat.data[...] = 20.0   # sigmoid -> 1
    np.testing.assert_allclose(adder(x).numpy()[:, 0], [10.0, 3.0], rtol=1e-6)
    multiplier = nn.NALU(2, 1)
    multiplier.nac.W_hat.data[...] = 20.0
    multiplier.nac.M_hat.data[...] = 20.0
    multiplier.G.data[...] = -40.0  # gate -> 0 for positive inputs: the log path
    np.testing.assert_allclose(multiplier(nl.tensor([[3.0, 7.0], [4.0, 5.0]])).numpy()[:, 0],
                               [21.0, 20.0], rtol=1e-5)


def test_float64_gradcheck_nac():
    nl.manual_seed(2)
    layer = nn.NAC(3, 2).double()
    x = nl.tensor(np.random.default_rng(2).standard_normal((4, 3)), requires_grad=True)
    assert nl.gradcheck(lambda x, *_: layer(x), [x, layer.W_hat, layer.M_hat])


@pytest.mark.parametrize("shared", [True, False])
def test_float64_gradcheck_nalu(shared):
    nl.manual_seed(3)
    layer = nn.NALU(3, 2, shared_weights=shared).double()
    rng = np.random.default_rng(3)
    # |x| kept away from 0, where log|x| has its kink.
    x = nl.tensor(rng.uniform(0.5, 2.0, (4, 3)) * rng.choice([-1, 1], (4, 3)),
                  requires_grad=True)
    params = list(layer.parameters())
    assert len(params) == (3 if shared else 5)
    assert nl.gradcheck(lambda x, *_: layer(x), [x] + params)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"NAC\(4, 3\): input of shape \(2, 5\); expected "
                                         r"\(\.\.\., 4\)"):
        nn.NAC(4, 3)(nl.rand(2, 5))
    with pytest.raises(ValueError, match=r"NALU\(4, 3\): input of shape \(2, 5\)"):
        nn.NALU(4, 3)(nl.rand(2, 5))
    with pytest.raises(ValueError, match="eps must be > 0"):
        nn.NALU(2, 1, eps=0)
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        nn.NAC(0, 1)


def test_comparison_models_parameter_counts_and_shapes():
    counts = {"mlp_relu6": 100 * 2 + 2 + 2 * 1 + 1, "mlp_linear": 205,
              "nac": 2 * (100 * 2) + 2 * (2 * 1), "nalu": 3 * (100 * 2) + 3 * (2 * 1)}
    x = nl.rand(6, 100)
    for kind, count in counts.items():
        model = M.static_task_model(kind)
        assert model.num_parameters() == count, kind
        assert model(x).shape == (6, 1)
    assert isinstance(M.mlp(activation="linear")[1], nn.Identity)
    identity = M.identity_mlp("tanh")
    assert identity.num_parameters() == (1 * 8 + 8) + 2 * (8 * 8 + 8) + (8 + 1)
    assert identity(nl.rand(3, 1)).shape == (3, 1)
    assert M.tutorial_nalu()(nl.rand(3, 2)).shape == (3, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        M.static_task_model("transformer")
    with pytest.raises(ValueError, match="activation must be one of"):
        M.identity_mlp("swish")


@pytest.mark.parametrize("operation", sorted(M.OPERATIONS))
def test_static_task_data(operation):
    x, y = M.static_task_data(operation, 7, np.random.default_rng(4))
    a = x[:, 0:10].astype(np.float64).sum(axis=1)
    b = x[:, 5:15].astype(np.float64).sum(axis=1)
    expected = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "square": a * a,
                "sqrt": np.sqrt(a)}[operation]
    assert x.shape == (7, 100) and y.shape == (7, 1)
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-5)
    assert x.min() >= 0 and x.max() < 1


def test_scores_and_config():
    target = np.array([[1.0], [2.0], [3.0]])
    random_model = np.array([[0.0], [0.0], [0.0]])
    assert M.scaled_error(target, target, random_model) == 0.0
    assert M.scaled_error(random_model, target, random_model) == 100.0
    assert M.metrics(target + 1, target)["rmse"] == pytest.approx(1.0)
    config = M.default_config()
    assert config["lr"] == 0.01 and config["eps"] == 1e-7 and config["optimizer"] == "adam"
    assert config["train_range"] == (1, 100) and config["test_range"] == (1, 1000)
    x, y = M.tutorial_data(5, np.random.default_rng(5))
    assert x.min() >= 1 and x.max() < 100 and np.array_equal(y[:, 0], x.sum(axis=1))


def test_nac_learns_addition_and_extrapolates():
    nl.manual_seed(6)
    rng = np.random.default_rng(6)
    model = nn.NAC(2, 1)
    optimizer = nl.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(1000):
        x, y = M.tutorial_data(32, rng)
        loss = M.loss(model(nl.tensor(x / 100)), nl.tensor(y / 100))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, y = M.tutorial_data(64, rng, high=1000)
    prediction = model(nl.tensor(x)).numpy()
    assert np.abs(prediction - y).max() / y.max() < 0.02


def test_paper_subsets_follow_madsen_johansen():
    from nnlite.data import subset_slices
    a, b = subset_slices(offset=0)
    assert (a.start, a.stop, b.start, b.stop) == (0, 25, 13, 38)  # 25 wide, overlap 12
    offsets = {subset_slices(seed=s)[0].start for s in range(200)}
    assert min(offsets) >= 0 and max(offsets) <= 62 and len(offsets) > 20
    assert subset_slices(seed=3) == subset_slices(seed=3)
    a, b = subset_slices(seed=3)
    assert b.start - a.start == 13 and b.stop - b.start == 25
    with pytest.raises(ValueError, match="need"):
        subset_slices(subset_ratio=0.6, overlap_ratio=0.0)
    with pytest.raises(ValueError, match="offset"):
        subset_slices(offset=63)


def test_near_perfect_mse_is_the_eps_solution_error():
    from nnlite.data import arithmetic_task, near_perfect_mse, subset_slices
    sa, sb = subset_slices(offset=10)
    x, y = arithmetic_task("add", 500, 1, value_range=(2.0, 6.0), slice_a=sa, slice_b=sb)
    assert near_perfect_mse("add", x, sa, sb, eps=0.0) == 0.0
    x64 = x.astype(np.float64)
    total, a, b = x64.sum(1), x64[:, sa].sum(1), x64[:, sb].sum(1)
    eps = 1e-3
    expected = np.mean(((1 - eps) * (a + b) + eps * (2 * total - a - b) - (a + b)) ** 2)
    assert near_perfect_mse("a+b", x, sa, sb, eps=eps) == pytest.approx(expected, rel=1e-9)
    assert near_perfect_mse("mul", x, sa, sb) > near_perfect_mse("mul", x, sa, sb, eps=1e-6) > 0
