"""Losses and batch normalisation against nnlite.reference, float32 and
float64, plus float64 gradchecks and bad-input errors."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite.reference import losses as ref

rng = np.random.default_rng(7)
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


CE_CASES = {
    "2d": ((5, 4), (5,)),
    "spatial": ((3, 4, 2, 5), (3, 2, 5)),
    "single_sample": ((6,), ()),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", list(CE_CASES))
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_reference(case, reduction, dtype, weighted):
    logits_shape, target_shape = CE_CASES[case]
    classes = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    logits = rng.standard_normal(logits_shape).astype(dtype)
    target = rng.integers(0, classes, size=target_shape)
    if target.ndim:
        target.flat[0] = -100  # one ignored position
    weight = rng.uniform(0.5, 2, classes).astype(dtype) if weighted else None
    got = F.cross_entropy(nl.tensor(logits), target,
                          weight=None if weight is None else nl.tensor(weight),
                          reduction=reduction)
    want = ref.cross_entropy(logits, target, weight, reduction=reduction)
    np.testing.assert_allclose(got.numpy(), want, **tol(dtype))


@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_gradcheck(case):
    logits_shape, target_shape = CE_CASES[case]
    classes = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    target = rng.integers(0, classes, size=target_shape)
    if target.ndim:
        target.flat[-1] = 1
        target.flat[0] = 3  # later ignored
    weight = nl.tensor(rng.uniform(0.5, 2, classes))
    x = nl.tensor(rng.standard_normal(logits_shape), requires_grad=True)
    assert nl.gradcheck(lambda t: F.cross_entropy(t, target, weight=weight, ignore_index=3),
                        (x,))


def test_cross_entropy_with_probability_targets():
    logits = rng.standard_normal((4, 3))
    probs = rng.dirichlet(np.ones(3), size=4)
    got = F.cross_entropy(nl.tensor(logits), nl.tensor(probs))
    want = -(probs * ref.log_softmax(logits, axis=1)).sum(1).mean()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    x = nl.tensor(logits, requires_grad=True)
    assert nl.gradcheck(lambda t: F.cross_entropy(t, nl.tensor(probs)), (x,))


def test_cross_entropy_bad_targets():
    logits = nl.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"nll_loss: target holds class 3, outside \[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"target of shape \(2,\), got \(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"integer class indices of shape \(2,\)"):
        F.cross_entropy(logits, np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="nll_loss: target must hold integer class indices"):
        F.nll_loss(logits, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"weight has shape \(2,\), expected \(3,\)"):
        F.cross_entropy(logits, np.array([0, 1]), weight=nl.tensor(np.ones(2)))
    with pytest.raises(ValueError, match="reduction='avg'"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, 2.5])
def test_bce_with_logits_matches_reference_and_is_stable(dtype, pos_weight):
    x = (rng.standard_normal((4, 5)) * 4).astype(dtype)
    x[0, :2] = [30.0, -30.0]
    t = rng.uniform(0, 1, (4, 5)).astype(dtype)
    pw = None if pos_weight is None else nl.tensor(np.full(5, pos_weight, dtype=dtype))
    got = F.binary_cross_entropy_with_logits(nl.tensor(x), nl.tensor(t), reduction="none",
                                             pos_weight=pw)
    want = ref.binary_cross_entropy_with_logits(x, t, pos_weight)
    assert np.isfinite(got.numpy()).all()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5 if dtype == np.float32 else 1e-10,
                               atol=1e-5 if dtype == np.float32 else 1e-10)


def test_bce_with_logits_does_not_overflow():
    # exp(200) overflows float32 (and float64 at 710) in the textbook formula.
    x = nl.tensor(np.array([200.0, -200.0, 800.0], dtype=np.float32), requires_grad=True)
    t = nl.tensor(np.array([0.25, 0.25, 1.0], dtype=np.float32))
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [150.0, 50.0, 0.0], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.75, -0.25, 0.0], atol=1e-6)


def test_bce_with_logits_gradcheck_input_target_and_weight():
    x = nl.tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
    t = nl.tensor(rng.uniform(0, 1, (3, 4)), requires_grad=True)
    w = nl.tensor(rng.uniform(0.5, 1.5, (3, 4)))
    pw = nl.tensor(rng.uniform(0.5, 3.0, 4))
    assert nl.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w,
                                                                        pos_weight=pw), (x, t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batch_norm_training_matches_reference_and_updates_running_stats(dtype, shape):
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w = rng.uniform(0.5, 1.5, 3).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    rm, rv = nl.tensor(np.zeros(3, dtype)), nl.tensor(np.ones(3, dtype))
    y = F.batch_norm(nl.tensor(x), rm, rv, nl.tensor(w), nl.tensor(b), training=True,
                     momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), ref.batch_norm_train(x, w, b, 1e-5),
                               rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5)
    axes = (0,) + tuple(range(2, len(shape)))
    n = x.size // 3
    np.testing.assert_allclose(rm.numpy(), 0.1 * x.mean(axis=axes), rtol=1e-5)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * x.var(axis=axes) * n / (n - 1),
                               rtol=1e-5)
    assert rm.dtype == dtype


def test_batch_norm_eval_uses_running_stats():
    x = rng.standard_normal((4, 2, 3))
    rm, rv = rng.standard_normal(2), rng.uniform(0.5, 2, 2)
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    y = F.batch_norm(nl.tensor(x), nl.tensor(rm), nl.tensor(rv), nl.tensor(w), nl.tensor(b),
                     training=False, eps=1e-3)
    want = (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-3) * w[:, None] + b[:, None]
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training):
    x = nl.tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
    w = nl.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True)
    rm, rv = nl.tensor(np.zeros(3)), nl.tensor(np.ones(3))
    assert nl.gradcheck(
        lambda a, c, d: F.batch_norm(a, rm, rv, c, d, training=training, momentum=0.0), (x, w, b))


def test_batch_norm_bad_input():
    x = nl.tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"running_mean has shape \(2,\), expected \(3,\)"):
        F.batch_norm(x, nl.tensor(np.zeros(2)), nl.tensor(np.ones(3)), training=True)
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(nl.tensor(np.ones((1, 3))), None, None, training=True)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(2, 0, 3, 3), (2, 0), (0, 3, 2, 2), (2, 3, 0, 2)])
def test_batch_norm_of_an_empty_batch_is_empty_as_in_pytorch(shape, training):
    """PyTorch returns the empty output for zero channels, zero samples or an
    empty spatial size, and leaves the running statistics as they were."""
    channels = shape[1]
    x = nl.tensor(np.zeros(shape), requires_grad=True)
    w = nl.tensor(np.ones(channels), requires_grad=True)
    b = nl.tensor(np.zeros(channels), requires_grad=True)
    rm, rv = nl.tensor(np.full(channels, 0.5)), nl.tensor(np.full(channels, 2.0))
    y = F.batch_norm(x, rm, rv, w, b, training=training)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == shape
    assert w.grad.numpy().tolist() == [0.0] * channels  # nothing flowed through them
    assert b.grad.numpy().tolist() == [0.0] * channels
    assert rm.numpy().tolist() == [0.5] * channels and rv.numpy().tolist() == [2.0] * channels
    assert F.batch_norm(nl.tensor(np.zeros(shape)), None, None, training=True).shape == shape
