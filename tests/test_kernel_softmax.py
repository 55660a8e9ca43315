"""The softmax kernel family (nnlite.kernels softmax_forward / softmax_backward)
against the NumPy reference, on every device present."""
import numpy as np
import pytest

from nnlite.device import to_numpy
from nnlite.kernels import launch
from nnlite.kernels import softmax as softmax_kernels
from nnlite.reference import softmax as ref

from kernel_testing import each_dtype, tolerance

SHAPES = [(1, 1), (1, 63), (992, 63), (3, 1), (2, 5000), (0, 7)]
# The reference runs in float64 on the same inputs; float32 gets float32 slack
# (sums over up to 5000 columns).


def make_inputs(shape, dtype, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    return x, gy


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@each_dtype
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_reference(xp, shape, dtype, log):
    x, gy = make_inputs(shape, dtype)
    y = softmax_kernels.softmax_forward(xp.asarray(x), log=log)
    assert y.shape == shape and y.dtype == dtype
    np.testing.assert_allclose(to_numpy(y), ref.softmax_forward(x.astype(np.float64), log),
                               **tolerance(dtype))

    # Backward from the kernel's own y, so only the backward math is compared.
    y_host = to_numpy(y)
    gx = softmax_kernels.softmax_backward(y, xp.asarray(gy), log=log)
    assert gx.shape == shape and gx.dtype == dtype
    expected = ref.softmax_backward(y_host.astype(np.float64), gy.astype(np.float64), log)
    np.testing.assert_allclose(to_numpy(gx), expected, **tolerance(dtype))


@each_dtype
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_rows_are_distributions(xp, dtype, log):
    x, _ = make_inputs((64, 1000), dtype, seed=1)
    y = to_numpy(softmax_kernels.softmax_forward(xp.asarray(x), log=log))
    probs = np.exp(y.astype(np.float64)) if log else y
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)


@each_dtype
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_large_magnitudes_stay_finite(xp, dtype, log):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-1e4, 1e4, size=(3, 50)),
                        np.full((1, 50), 1e4), np.full((1, 50), -1e4),
                        np.tile([1e4, -1e4], (1, 25))]).astype(dtype)
    y = softmax_kernels.softmax_forward(xp.asarray(x), log=log)
    gx = softmax_kernels.softmax_backward(y, xp.ones_like(y), log=log)
    assert np.isfinite(to_numpy(y)).all() and np.isfinite(to_numpy(gx)).all()
    np.testing.assert_allclose(to_numpy(y), ref.softmax_forward(x.astype(np.float64), log),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_backward_matches_central_differences(xp, log):
    """d/dx sum(w * f(x)) by central differences of the forward kernel, float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5))
    w = rng.standard_normal((3, 5))

    def loss(x_host):
        y = softmax_kernels.softmax_forward(xp.asarray(x_host), log=log)
        return float((to_numpy(y) * w).sum())

    eps = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        numeric[index] = (loss(x + step) - loss(x - step)) / (2 * eps)
    y = softmax_kernels.softmax_forward(xp.asarray(x), log=log)
    analytic = to_numpy(softmax_kernels.softmax_backward(y, xp.asarray(w), log=log))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_non_contiguous_input(xp):
    x, _ = make_inputs((8, 40), np.float32, seed=4)
    view = xp.asarray(x)[:, ::2]
    y = softmax_kernels.softmax_forward(view)
    np.testing.assert_allclose(to_numpy(y), ref.softmax_forward(x[:, ::2].astype(np.float64)),
                               **tolerance(np.float32))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: softmax_kernels.softmax_forward(np.zeros((2, 3), np.int32)), TypeError,
     r"softmax_forward: x has dtype int32; expected float32 or float64"),
    (lambda: softmax_kernels.softmax_forward(np.zeros((2, 3, 4), np.float32)), ValueError,
     r"softmax_forward: x must be 2-D \(rows, cols\); got shape \(2, 3, 4\)"),
    (lambda: softmax_kernels.softmax_forward([[1.0, 2.0]]), TypeError,
     r"softmax_forward: x must be a numpy.ndarray .*got builtins.list"),
    (lambda: softmax_kernels.softmax_backward(np.zeros((2, 3)), np.zeros((3, 2))), ValueError,
     r"softmax_backward: gy has shape \(3, 2\); expected the shape of y, \(2, 3\)"),
    (lambda: softmax_kernels.softmax_backward(np.zeros((2, 3), np.float32), np.zeros((2, 3))),
     TypeError,
     r"softmax_backward: gy has dtype float64; expected the dtype of y, float32"),
])
def test_bad_inputs_name_the_kernel(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_raw_binding_refuses_wrong_dtype_and_shape():
    """nnlite._C is a memory-safety boundary even when called around the facade."""
    from nnlite import _C
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError):
        _C.softmax_forward_f32(x, np.zeros((2, 3), np.float64), 2, 3, 0)
    with pytest.raises(ValueError, match=r"softmax_forward: y has shape \(2, 2\) \(4 elements\); "
                                         r"expected 6 elements"):
        _C.softmax_forward_f32(x, np.zeros((2, 2), np.float32), 2, 3, 0)
    with pytest.raises(ValueError, match=r"softmax_forward: x has shape \(2, 3\) \(6 elements\); "
                                         r"expected 8 elements"):
        _C.softmax_forward_f32(x, np.zeros((2, 4), np.float32), 2, 4, 0)
    with pytest.raises(ValueError, match=r"softmax_forward: rows \* cols = 4611686018427387904 "
                                         r"\* 3 overflows 64 bits"):
        _C.softmax_forward_f32(x, x, 2**62, 3, 0)
    with pytest.raises(ValueError, match=r"softmax_forward: log_softmax = 2"):
        _C.softmax_forward_f32(x, x, 2, 3, 2)


def test_missing_extension_says_how_to_rebuild(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "nnlite._C", None)
    monkeypatch.setattr(launch, "_host", None)
    with pytest.raises(ImportError, match=r"pip install -e \."):
        softmax_kernels.softmax_forward(np.zeros((1, 2), np.float32))


@pytest.mark.cuda
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_cuda_is_bitwise_deterministic(log):
    import cupy
    x, gy = make_inputs((992, 1000), np.float32, seed=5)
    x, gy = cupy.asarray(x), cupy.asarray(gy)
    runs = []
    for _ in range(2):
        y = softmax_kernels.softmax_forward(x, log=log)
        runs.append((y, softmax_kernels.softmax_backward(y, gy, log=log)))
    for first, second in zip(runs[0], runs[1]):
        assert (first.view(cupy.uint32) == second.view(cupy.uint32)).all()
