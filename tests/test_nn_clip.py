"""nl.nn.utils.clip_grad_norm_ / clip_grad_value_: hand-worked values,
PyTorch's semantics (and torch itself when it is installed), NaN, bad input."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.nn.utils import clip_grad_norm_, clip_grad_value_


def params_with_grads(*grads, dtype=np.float32):
    params = []
    for g in grads:
        p = nl.tensor(np.zeros(np.shape(g), dtype=dtype), requires_grad=True)
        p.grad = nl.tensor(np.asarray(g, dtype=dtype))
        params.append(p)
    return params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_clipping_scales_by_max_norm_over_the_total(dtype):
    a, b, untouched = params_with_grads([3.0, 4.0], [12.0], [1.0], dtype=dtype)
    untouched.grad = None
    total = clip_grad_norm_([a, b, untouched], max_norm=6.5)
    assert float(total) == 13.0  # sqrt(3^2 + 4^2 + 12^2)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3.0 * scale, 4.0 * scale], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [12.0 * scale], rtol=1e-6)
    assert a.grad.dtype == dtype and untouched.grad is None


def test_norm_below_the_limit_changes_nothing_visible():
    (a,) = params_with_grads([0.3, -0.4])
    assert float(clip_grad_norm_(a, 1.0)) == pytest.approx(0.5)
    np.testing.assert_allclose(a.grad.numpy(), [0.3, -0.4], rtol=1e-6)


def test_other_norms():
    a, b = params_with_grads([1.0, -7.0], [2.0, 2.0])
    assert float(clip_grad_norm_([a, b], 3.5, norm_type=math.inf)) == 7.0
    np.testing.assert_allclose(a.grad.numpy(), [0.5, -3.5], rtol=1e-6)
    c, d = params_with_grads([1.0, -7.0], [2.0, 2.0])
    assert float(clip_grad_norm_([c, d], 100.0, norm_type=1)) == 12.0


def test_nan_in_gives_nan_out_or_an_error_when_asked():
    a, b = params_with_grads([1.0, float("nan")], [2.0])
    assert math.isnan(float(clip_grad_norm_([a, b], 1.0)))
    assert np.isnan(a.grad.numpy()).all() and np.isnan(b.grad.numpy()).all()
    (c,) = params_with_grads([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total 2.0-norm .* inf"):
        clip_grad_norm_(c, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(c.grad.numpy(), [np.inf, 1.0])  # left alone


def test_no_gradients_and_empty_gradients():
    p = nl.tensor([1.0], requires_grad=True)
    assert float(clip_grad_norm_([p], 1.0)) == 0.0
    (e,) = params_with_grads(np.zeros((0, 3)))
    assert float(clip_grad_norm_(e, 1.0)) == 0.0


def test_value_clipping_clamps_in_place_and_keeps_nan():
    (a,) = params_with_grads([-3.0, 0.5, 2.0, float("nan")])
    grad = a.grad.data
    clip_grad_value_(a, 1.0)
    assert a.grad.data is grad
    np.testing.assert_array_equal(grad, [-1.0, 0.5, 1.0, np.nan])


@pytest.mark.parametrize("call,message", [
    (lambda p: clip_grad_norm_(p, -1.0), "max_norm must be >= 0, got -1.0"),
    (lambda p: clip_grad_norm_(p, "5"), "max_norm must be a real number, got '5'"),
    (lambda p: clip_grad_norm_(p, float("nan")), "max_norm must be a real number"),
    (lambda p: clip_grad_norm_(p, 1.0, norm_type=0), "norm_type must be > 0"),
    (lambda p: clip_grad_value_(p, -0.5), "clip_value must be >= 0, got -0.5"),
    (lambda p: clip_grad_value_(p, None), "clip_value must be a real number, got None"),
])
def test_bad_arguments_name_the_function_and_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call(params_with_grads([1.0]))
    with pytest.raises(TypeError, match="clip_grad_norm_: parameters must be Tensors, got list"):
        clip_grad_norm_([[1.0]], 1.0)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(4, 5), (7,), (2, 3, 3)]]
    ours = params_with_grads(*grads)
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for t, g in zip(theirs, grads):
        t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(ours, 1.5, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type=norm_type)
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)
