"""The activation kernel family (nnlite.kernels relu_forward / relu_backward)
against the NumPy reference, on every device present, and its CUDA source
through the CPU emulator (tests/cuda_emulation.py).

The reference is the formulation F.relu used before the kernels, `x * (x > 0)`
and `gy * mask`, and the kernels must reproduce it bit for bit: -0.0 for a
negative input, NaN for NaN, NaN for -inf (-inf * 0)."""
import warnings

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.device import to_numpy
from nnlite.kernels import activation
from nnlite.kernels import nvrtc
from nnlite.reference import activation as ref

from kernel_testing import each_dtype

SHAPES = [(0,), (0, 3), (), (1,), (7,), (2, 3, 5), (50, 8, 4, 9), (2**20 + 77,)]
SPECIAL = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 5e-324, -5e-324,
           1.0, -1.0, 3e38, -3e38]


def quiet(fn, *args):
    """fn(*args) without NumPy's 'invalid value in multiply' warning (NaN * 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


def make_inputs(shape, dtype, seed=0):
    """x and gy with every special value at the front (where they fit)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 5e-324 underflows in float32
        special = np.array(SPECIAL, dtype)
    for a in (x, gy):
        flat = a.reshape(-1)
        n = min(flat.size, special.size)
        flat[:n] = special[:n]
    gy.reshape(-1)[::-1][:min(gy.size, special.size)] = special[:min(gy.size, special.size)]
    return x, gy


def same_bits(actual, expected):
    actual, expected = to_numpy(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes(), \
        f"differ at {np.flatnonzero(actual.view(np.uint8) != expected.view(np.uint8))[:5]}"


def nan_bits_agree(actual, expected):
    """On a GPU a NaN product is the canonical NaN, not x86's: there compare
    NaN positions, and the bits of everything else."""
    actual, expected = to_numpy(actual), np.asarray(expected)
    nan = np.isnan(expected)
    assert (np.isnan(actual) == nan).all()
    assert actual[~nan].tobytes() == expected[~nan].tobytes()


@each_dtype
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)) or "scalar")
def test_matches_reference_bit_for_bit(xp, device, shape, dtype):
    x, gy = make_inputs(shape, dtype)
    y, mask = activation.relu_forward(xp.asarray(x))
    y_ref, mask_ref = quiet(ref.relu_forward, x)
    assert y.shape == shape and y.dtype == dtype and mask.dtype == np.uint8
    compare = same_bits if device == "cpu" else nan_bits_agree
    compare(y, y_ref)
    same_bits(mask, mask_ref)
    gx = activation.relu_backward(xp.asarray(gy), mask)
    assert gx.shape == shape and gx.dtype == dtype
    compare(gx, quiet(ref.relu_backward, gy, mask_ref))


@each_dtype
def test_same_bits_as_the_old_numpy_formulation(dtype):
    """The sign of zero and NaN as `x * (x > 0)` and `gy * (x > 0)` gave them,
    through F.relu and its backward."""
    x, gy = make_inputs((3, 1000), dtype, seed=1)
    assert (x < 0).any() and np.isnan(x).any() and np.isnan(gy).any()
    t = nl.tensor(x, requires_grad=True)
    y = F.relu(t)
    y.backward(nl.tensor(gy))
    positive = x > 0
    same_bits(y.numpy(), quiet(np.multiply, x, positive))
    same_bits(t.grad.numpy(), quiet(np.multiply, gy, positive))
    assert np.signbit(y.numpy()[x < 0]).all()  # negative inputs give -0.0


@each_dtype
def test_nan_in_nan_out(xp, dtype):
    x = np.array([np.nan, -np.nan, 1.0, -1.0, np.nan], dtype)
    y, mask = activation.relu_forward(xp.asarray(x))
    assert np.isnan(to_numpy(y)[[0, 1, 4]]).all() and to_numpy(mask).tolist() == [0, 0, 1, 0, 0]
    gx = to_numpy(activation.relu_backward(xp.asarray(np.full(5, np.nan, dtype)), mask))
    assert np.isnan(gx).all()


def test_non_contiguous_input_and_bool_mask(xp):
    x, gy = make_inputs((8, 40), np.float32, seed=2)
    view = xp.asarray(x)[:, ::2].T
    y, mask = activation.relu_forward(view)
    y_ref, mask_ref = quiet(ref.relu_forward, x[:, ::2].T)
    np.testing.assert_array_equal(to_numpy(y), y_ref)
    same_bits(mask, mask_ref)
    gx = activation.relu_backward(xp.asarray(gy)[:, 1::2].T, xp.asarray(mask_ref.astype(bool)))
    np.testing.assert_array_equal(to_numpy(gx), quiet(ref.relu_backward, gy[:, 1::2].T,
                                                      mask_ref))


def test_relu_gradcheck_float64():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink, where the gradient is not defined
    assert nl.gradcheck(F.relu, (nl.tensor(x, requires_grad=True),))


def test_relu_of_other_dtypes_keeps_the_numpy_formula():
    x = np.array([-2, 0, 3], np.int64)
    np.testing.assert_array_equal(F.relu(nl.tensor(x)).numpy(), [0, 0, 3])


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: activation.relu_forward(np.zeros(3, np.int32)), TypeError,
     r"relu_forward: x has dtype int32; expected float32 or float64"),
    (lambda: activation.relu_forward([1.0, -1.0]), TypeError,
     r"relu_forward: x must be a numpy.ndarray .*got builtins.list"),
    (lambda: activation.relu_backward(np.zeros(3, np.float16), np.zeros(3, np.uint8)), TypeError,
     r"relu_backward: gy has dtype float16; expected float32 or float64"),
    (lambda: activation.relu_backward(np.zeros(3), np.zeros(3, np.int32)), TypeError,
     r"relu_backward: mask must be a uint8 or bool numpy.ndarray"),
    (lambda: activation.relu_backward(np.zeros((2, 3)), np.zeros((3, 2), np.uint8)), ValueError,
     r"relu_backward: mask has shape \(3, 2\); expected the shape of gy, \(2, 3\)"),
])
def test_bad_inputs_name_the_kernel(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_raw_binding_checks_every_argument():
    """nnlite._C is a memory-safety boundary even when called around the facade."""
    from nnlite import _C
    x = np.zeros(6, np.float32)
    mask = np.zeros(6, np.uint8)
    with pytest.raises(TypeError):
        _C.relu_forward_f32(x, np.zeros(6, np.float64), mask, 6)
    with pytest.raises(ValueError, match=r"relu_forward: count = -1; expected a value in"):
        _C.relu_forward_f32(x, np.zeros(6, np.float32), mask, -1)
    with pytest.raises(ValueError, match=r"relu_forward: y has shape \(5,\) \(5 elements\); "
                                         r"expected 6 elements, count"):
        _C.relu_forward_f32(x, np.zeros(5, np.float32), mask, 6)
    with pytest.raises(ValueError, match=r"relu_forward: mask has shape \(7,\)"):
        _C.relu_forward_f32(x, np.zeros(6, np.float32), np.zeros(7, np.uint8), 6)
    with pytest.raises(ValueError, match=r"relu_forward: y shares memory with x"):
        _C.relu_forward_f32(x, x, mask, 6)
    with pytest.raises(ValueError, match=r"relu_backward: gx has shape \(2, 2\) \(4 elements\)"):
        _C.relu_backward_f64(np.zeros(6), mask, np.zeros((2, 2)), 6)
    with pytest.raises(ValueError, match=r"relu_backward: mask has shape \(5,\)"):
        _C.relu_backward_f64(np.zeros(6), mask[:5], np.zeros(6), 6)
    readonly = np.zeros(6)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=r"relu_backward: gx is read-only"):
        _C.relu_backward_f64(np.zeros(6), mask, readonly, 6)


# ------------------------------------------------- CUDA source, emulated --

GRID = (3, 5)  # 15 threads: the grid-stride loop wraps on every case below


def activation_launch(launch):
    a = launch.bound
    count = int(a["count"])
    assert launch.shared_mem == 0 and a["mask"].dtype == np.uint8
    assert a["mask"].size == count
    assert launch.block == (nvrtc.GRID_THREADS,)
    assert launch.grid == (min(-(-count // nvrtc.GRID_THREADS), nvrtc.MAX_GRID_BLOCKS),)
    return GRID


@pytest.fixture
def launches(monkeypatch):
    return install_fake_cupy(monkeypatch, activation_launch)


def test_entry_parameters_are_parsed():
    source = family_source("activation")
    assert entry_parameters(source, "relu_forward_f32") == [
        ("const float*", "x"), ("float*", "y"), ("unsigned char*", "mask"),
        ("long long", "count")]
    assert entry_parameters(source, "relu_backward_f64") == [
        ("const double*", "gy"), ("const unsigned char*", "mask"), ("double*", "gx"),
        ("long long", "count")]


@each_dtype
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5), (4, 33)])
def test_emulated_cuda_matches_the_host_build_bit_for_bit(launches, shape, dtype):
    x, gy = make_inputs(shape, dtype, seed=4)
    y, mask = activation.relu_forward(x)
    gx = activation.relu_backward(gy, mask)
    with host_build():
        y_host, mask_host = activation.relu_forward(x)
        gx_host = activation.relu_backward(gy, mask_host)
    same_bits(y, y_host)
    same_bits(mask, mask_host)
    same_bits(gx, gx_host)
    suffix = "f32" if dtype == np.float32 else "f64"
    assert [launch.name for launch in launches] == [f"relu_forward_{suffix}",
                                                    f"relu_backward_{suffix}"]


def test_emulated_empty_arrays_launch_nothing(launches):
    y, mask = activation.relu_forward(np.zeros((0, 4), np.float32))
    assert y.shape == mask.shape == (0, 4)
    assert activation.relu_backward(y, mask).shape == (0, 4)
    assert launches == []


@pytest.mark.cuda
def test_cuda_is_bitwise_deterministic():
    import cupy
    x, gy = make_inputs((50, 8, 16, 32), np.float32, seed=5)
    x, gy = cupy.asarray(x), cupy.asarray(gy)
    runs = []
    for _ in range(2):
        y, mask = activation.relu_forward(x)
        runs.append((y, mask, activation.relu_backward(gy, mask)))
    for first, second in zip(runs[0], runs[1]):
        assert (first.view(cupy.uint8) == second.view(cupy.uint8)).all()
