"""The pool kernel family (max with argmax, average) and F.max_pool2d /
F.avg_pool2d against the NumPy reference (direct loops) and PyTorch: ceil-mode
edge windows, overlapping windows, ties, gradcheck, the seed's cases,
determinism and bad input, on every device present."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite.kernels import pool as pool_kernels
from nnlite.device import to_numpy
from nnlite.kernels.shapes import PoolGeometry, output_size
from nnlite.reference import pool as ref

from kernel_testing import each_case, each_dtype, tolerance


# (x shape, kernel, stride, padding, ceil_mode)
CASES = {
    "1x1 image": ((2, 3, 1, 1), 1, None, 0, False),
    "1x1 image ceil": ((2, 3, 1, 1), 1, 2, 0, True),
    "2x2 ceil odd": ((2, 3, 7, 35), 2, 2, 0, True),
    "non-square (2,1)": ((2, 3, 8, 5), (2, 1), (2, 1), 0, False),
    "stride > kernel": ((1, 2, 11, 10), 2, (4, 3), 0, False),
    "stride > kernel ceil": ((1, 2, 11, 10), 2, (4, 3), 0, True),
    "overlapping 3x3 s1": ((2, 2, 6, 7), 3, 1, 1, False),
    "overlapping 3x3 s2 ceil": ((2, 2, 8, 9), 3, 2, 1, True),
    "Caffe empty window": ((1, 2, 3, 3), 2, 2, 1, True),
    "padded ceil edge": ((1, 2, 6, 5), (3, 2), (2, 2), (1, 1), True),
}


def make_case(name, dtype, seed=0):
    shape, kernel, stride, padding, ceil_mode = CASES[name]
    rng = np.random.default_rng(seed)
    # A permutation: distinct values, so no ties (ties have their own test).
    x = (rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) - 0.5).astype(dtype)
    return x, dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)


@each_dtype
@each_case(CASES)
def test_maxpool_kernels_match_reference(xp, name, dtype):
    x, window = make_case(name, dtype)
    g = PoolGeometry.of(x.shape[2:], **window)
    y, argmax = pool_kernels.maxpool_forward(xp.asarray(x), g)
    y_ref, argmax_ref = ref.maxpool_forward(x, **window)
    assert y.dtype == dtype and argmax.dtype == np.int32
    np.testing.assert_array_equal(to_numpy(y), y_ref)
    np.testing.assert_array_equal(to_numpy(argmax), argmax_ref)
    gy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(dtype)
    gx = pool_kernels.maxpool_backward(xp.asarray(gy), argmax, g)
    np.testing.assert_allclose(to_numpy(gx), ref.maxpool_backward(gy, argmax_ref, x.shape,
                                                                  **window), **tolerance(dtype))


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@each_dtype
@each_case(CASES)
def test_avgpool_kernels_match_reference(xp, name, dtype, count_include_pad):
    x, window = make_case(name, dtype)
    g = PoolGeometry.of(x.shape[2:], **window)
    y = pool_kernels.avgpool_forward(xp.asarray(x), g, count_include_pad)
    y_ref = ref.avgpool_forward(x.astype(np.float64), count_include_pad=count_include_pad,
                                **window)
    np.testing.assert_allclose(to_numpy(y), y_ref, **tolerance(dtype))
    gy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(dtype)
    gx = pool_kernels.avgpool_backward(xp.asarray(gy), g, count_include_pad)
    np.testing.assert_allclose(to_numpy(gx), ref.avgpool_backward(
        gy.astype(np.float64), x.shape, count_include_pad=count_include_pad, **window),
        **tolerance(dtype))


def test_caffe_empty_window_is_dropped():
    """Size 3, kernel 2, stride 2, padding 1, ceil: Caffe's formula gives 3 windows,
    the last starting in the trailing padding; PyTorch's rule (ours) gives 2."""
    assert output_size(3, 2, 2, 1, 1, ceil_mode=True) == 2
    y = F.max_pool2d(nl.tensor(np.arange(9.0).reshape(1, 1, 3, 3)), 2, 2, 1, ceil_mode=True)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[0, 2], [6, 8]])


def test_first_maximum_wins_ties(device):
    """Rule: among equal maxima the first in row-major window order wins, in the
    argmax and so in the gradient, also when windows overlap."""
    x = nl.tensor(np.ones((1, 1, 4, 4)), requires_grad=True, device=device)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)

    x = nl.tensor(np.ones((1, 1, 4, 4)), requires_grad=True, device=device)
    F.max_pool2d(x, 3, stride=1).sum().backward()  # windows start at (0..1, 0..1)
    expected = np.zeros((4, 4))
    expected[:2, :2] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)

    plane = np.array([[0.0, 5.0, 1.0], [5.0, 2.0, 5.0], [1.0, 5.0, 0.0]])
    data = nl.tensor(plane[None, None], device=device).data
    _, argmax = pool_kernels.maxpool_forward(data, PoolGeometry.of((3, 3), 3))
    assert int(to_numpy(argmax).ravel()[0]) == 1  # (0, 1), not (1, 0), (1, 2) or (2, 1)


def test_nan_propagates_and_gets_the_gradient(device):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    xt = nl.tensor(x, requires_grad=True, device=device)
    y = F.max_pool2d(xt, 2)
    assert np.isnan(y.numpy()[0, 0, 0, 0]) and not np.isnan(y.numpy()[0, 0, 1:, 1:]).any()
    y.sum().backward()
    assert xt.grad.numpy()[0, 0, 0, 1] == 1 and xt.grad.numpy()[0, 0, 1, 1] == 0


# The host build runs interior 2x2, 2x1 and 3x3 windows through an unrolled
# path that hands NaN rows back to the general one; NaN at edges, in interior
# windows and twice in one window must still pick the first NaN.
NAN_CASES = dict(CASES, **{"2x2 interior": ((2, 3, 10, 12), 2, 2, 0, False),
                           "2x2 padded ceil": ((1, 2, 9, 11), 2, 2, 1, True),
                           "3x3 s2 padded": ((1, 2, 11, 12), 3, 2, 1, False)})


@each_dtype
@each_case(NAN_CASES)
def test_nan_anywhere_picks_the_first_nan_as_the_reference_does(xp, name, dtype):
    shape, kernel, stride, padding, ceil_mode = NAN_CASES[name]
    window = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.15] = np.nan
    x[..., 0, :2] = np.nan  # two NaNs in one window (one in a 1x1 image)
    g = PoolGeometry.of(x.shape[2:], **window)
    y, argmax = pool_kernels.maxpool_forward(xp.asarray(x), g)
    y_ref, argmax_ref = ref.maxpool_forward(x, **window)
    np.testing.assert_array_equal(to_numpy(y), y_ref)
    np.testing.assert_array_equal(to_numpy(argmax), argmax_ref)


def _gathered_gradient(gy, argmax, x_shape, g):
    """What each window gives back, by definition: its gy, to its argmax, only
    if the argmax is a position the window covers (loops, for a stray argmax)."""
    gx = np.zeros(x_shape[:2] + (x_shape[2] * x_shape[3],), dtype=gy.dtype)
    for n, c, oh, ow in np.ndindex(gy.shape):
        h0, w0 = oh * g.stride[0] - g.padding[0], ow * g.stride[1] - g.padding[1]
        covered = [h * x_shape[3] + w for h in range(max(h0, 0), min(h0 + g.kernel[0], x_shape[2]))
                   for w in range(max(w0, 0), min(w0 + g.kernel[1], x_shape[3]))]
        if argmax[n, c, oh, ow] in covered:
            gx[n, c, argmax[n, c, oh, ow]] += gy[n, c, oh, ow]
    return gx.reshape(x_shape)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), ((2, 1), (2, 1), 0),
                                                     (2, 3, 1), (3, 1, 1), (3, 2, 1)],
                         ids=["2x2 s2", "2x1", "stride > kernel", "3x3 s1", "3x3 s2"])
def test_backward_ignores_an_argmax_outside_its_window(kernel, stride, padding):
    # Both host paths (a scatter for windows that do not overlap, a gather for
    # those that do) take any int32 array; an argmax that points elsewhere,
    # past the plane, or at -1 must not write anywhere.
    x_shape = (2, 3, 7, 9)
    g = PoolGeometry.of(x_shape[2:], kernel, stride, padding)
    rng = np.random.default_rng(5)
    _, argmax = pool_kernels.maxpool_forward(rng.standard_normal(x_shape).astype(np.float32), g)
    argmax = argmax.copy()
    stray = rng.random(argmax.shape) < 0.4
    argmax[stray] = rng.integers(-5, 7 * 9 + 5, size=int(stray.sum()))
    gy = rng.standard_normal(argmax.shape).astype(np.float32)
    gx = pool_kernels.maxpool_backward(gy, argmax, g)
    np.testing.assert_array_equal(gx, _gathered_gradient(gy, argmax, x_shape, g))


@pytest.mark.parametrize("name", ["overlapping 3x3 s2 ceil", "padded ceil edge",
                                  "stride > kernel ceil"])
def test_gradcheck_float64(device, name):
    x, window = make_case(name, np.float64, seed=2)  # distinct values: no ties
    window = dict(window)
    ceil_mode = window.pop("ceil_mode")
    x = nl.tensor(x, requires_grad=True, device=device)
    assert nl.gradcheck(lambda t: F.max_pool2d(t, ceil_mode=ceil_mode, **window), [x])
    for count_include_pad in (True, False):
        assert nl.gradcheck(lambda t: F.avg_pool2d(t, ceil_mode=ceil_mode,
                                                   count_include_pad=count_include_pad,
                                                   **window), [x])


TORCH_CONFIGS = [(shape, k, s, p, ceil) for shape in [(2, 3, 7, 9), (1, 2, 8, 25), (1, 1, 5, 4)]
                 for k, s, p in [(2, 2, 0), (2, 2, 1), (3, 2, 1), (3, 1, 1), ((2, 1), (2, 1), 0),
                                 ((3, 2), (1, 3), (1, 1)), (2, 3, 0)]
                 for ceil in (False, True)]


@pytest.mark.parametrize("shape, kernel, stride, padding, ceil_mode", TORCH_CONFIGS)
def test_matches_pytorch(shape, kernel, stride, padding, ceil_mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)
    xt = torch.tensor(x, requires_grad=True)
    ours = nl.tensor(x, requires_grad=True)
    y = F.max_pool2d(ours, kernel, stride, padding, ceil_mode=ceil_mode)
    y_torch = torch.nn.functional.max_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode)
    gy = rng.standard_normal(tuple(y_torch.shape))
    assert y.shape == tuple(y_torch.shape)
    np.testing.assert_array_equal(y.numpy(), y_torch.detach().numpy())
    y.backward(nl.tensor(gy))
    y_torch.backward(torch.tensor(gy))
    np.testing.assert_allclose(ours.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    for count_include_pad in (True, False):
        xt.grad, ours.grad = None, None
        y = F.avg_pool2d(ours, kernel, stride, padding, ceil_mode, count_include_pad)
        y_torch = torch.nn.functional.avg_pool2d(xt, kernel, stride, padding, ceil_mode,
                                                 count_include_pad)
        np.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), rtol=1e-12)
        y.backward(nl.tensor(gy))
        y_torch.backward(torch.tensor(gy))
        np.testing.assert_allclose(ours.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- seed cases --

def test_charnet_pool3_ceil_mode_gives_4x13(device):
    x = nl.tensor(np.random.default_rng(4).random((2, 512, 8, 25), np.float32), device=device)
    assert F.max_pool2d(x, 2, 2, ceil_mode=True).shape == (2, 512, 4, 13)
    assert F.max_pool2d(x, 2, 2).shape == (2, 512, 4, 12)


def test_digit_strip_pools_7x35_to_4x18(device):
    """SPECS.md section 5: the 28x140 ancestor model, max 2x2 stride 2 in ceil mode."""
    x = nl.tensor(np.random.default_rng(5).random((3, 32, 7, 35), np.float32), device=device)
    assert F.max_pool2d(x, 2, 2, ceil_mode=True).shape == (3, 32, 4, 18)
    assert F.max_pool2d(x, kernel_size=(2, 2), stride=(2, 2), ceil_mode=True).shape == \
        (3, 32, 4, 18)


def test_zero_pad_then_floor_pool_equals_ceil_pool_on_non_negative_input(device):
    """The seed's CustomZeroPadding2D trick (CharNet pool3), values and gradients."""
    rng = np.random.default_rng(6)
    x = np.maximum(rng.standard_normal((2, 16, 8, 25)), 0).astype(np.float32)  # post-ReLU
    gy = rng.standard_normal((2, 16, 4, 13)).astype(np.float32)
    a = nl.tensor(x, requires_grad=True, device=device)
    b = nl.tensor(x, requires_grad=True, device=device)
    padded = F.max_pool2d(nl.nn.ZeroPad2d((0, 1, 0, 0))(a), 2, 2)
    ceil = F.max_pool2d(b, 2, 2, ceil_mode=True)
    assert padded.shape == ceil.shape == (2, 16, 4, 13)
    np.testing.assert_array_equal(padded.numpy(), ceil.numpy())
    padded.backward(nl.tensor(gy, device=device))
    ceil.backward(nl.tensor(gy, device=device))
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize("op", ["max", "avg"])
def test_two_backward_passes_are_bitwise_identical(device, op):
    x = np.random.default_rng(7).standard_normal((4, 8, 9, 10)).astype(np.float32)
    x[:, :, ::2] = 1.0  # ties, too
    pool = F.max_pool2d if op == "max" else F.avg_pool2d
    grads = []
    for _ in range(2):
        xt = nl.tensor(x, requires_grad=True, device=device)
        y = pool(xt, 3, 1, 1, ceil_mode=True)
        (y * y).sum().backward()
        grads.append(xt.grad.numpy())
    assert grads[0].tobytes() == grads[1].tobytes()


# -------------------------------------------------------------- bad input --

def pool(op, shape=(1, 2, 5, 5), *args, **kw):
    fn = F.max_pool2d if op == "max" else F.avg_pool2d
    return fn(nl.tensor(np.zeros(shape, np.float32)), *args, **kw)


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("args, kw, error, pattern", [
    ((6,), {}, ValueError, r"{op}_pool2d: kernel of size 6 .* larger than the padded input of "
                           r"size 5"),
    ((2,), dict(stride=0), ValueError, r"{op}_pool2d: stride must be a positive int, got 0"),
    ((2,), dict(stride=(2, -1)), ValueError, r"{op}_pool2d: stride must be a positive int"),
    ((0,), {}, ValueError, r"{op}_pool2d: kernel size must be a positive int"),
    ((3,), dict(padding=2), ValueError,
     r"{op}_pool2d: padding \(2, 2\) must be non-negative and at most half the kernel size"),
    ((2,), dict(padding=-1), ValueError, r"{op}_pool2d: padding must be a non-negative int"),
    ((2, 2, 0), dict(ceil_mode=True), None, None),
])
def test_bad_input_names_the_op(op, args, kw, error, pattern):
    if error is None:
        assert pool(op, (1, 2, 5, 5), *args, **kw).shape == (1, 2, 3, 3)
        return
    with pytest.raises(error, match=pattern.format(op=op)):
        pool(op, (1, 2, 5, 5), *args, **kw)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_non_4d_input_is_refused(op):
    with pytest.raises(ValueError, match=rf"{op}_pool2d: x must be 4-D \(N, C, H, W\), got "
                                         r"shape \(2, 5, 5\)"):
        pool(op, (2, 5, 5), 2)


def test_unsupported_options_are_refused():
    with pytest.raises(ValueError, match="max_pool2d: dilation 2 is not supported"):
        pool("max", (1, 1, 5, 5), 2, dilation=2)
    with pytest.raises(ValueError, match="avg_pool2d: divisor_override"):
        pool("avg", (1, 1, 5, 5), 2, divisor_override=3)


def test_kernel_module_checks_arrays_against_the_geometry():
    x = np.zeros((1, 2, 5, 5), np.float32)
    g = PoolGeometry.of(x.shape[2:], 2)
    y, argmax = pool_kernels.maxpool_forward(x, g)
    ceil = PoolGeometry.of(x.shape[2:], 2, ceil_mode=True)
    with pytest.raises(ValueError, match=r"maxpool_backward: gy has shape \(1, 2, 2, 2\); "
                                         r"expected \(1, 2, 3, 3\) for PoolGeometry"):
        pool_kernels.maxpool_backward(y, argmax, ceil)
    with pytest.raises(TypeError, match=r"maxpool_backward: argmax must be an int32"):
        pool_kernels.maxpool_backward(y, argmax.astype(np.int64), g)
    with pytest.raises(ValueError, match=r"avgpool_backward: gy has shape"):
        pool_kernels.avgpool_backward(np.zeros((1, 2, 3, 2), np.float32), g)
    with pytest.raises(ValueError, match=r"maxpool_forward: x has shape \(1, 2, 6, 5\); "
                                         r"expected \(1, 2, 5, 5\)"):
        pool_kernels.maxpool_forward(np.zeros((1, 2, 6, 5), np.float32), g)


# The reliability issue's cases, each compared with PyTorch's rule or result.

def test_ceil_mode_accepts_a_kernel_larger_than_the_padded_input():
    """PyTorch gives one window, clipped to the input, whenever ceil mode starts
    one inside it: size 2, kernel 3, stride 2 -> 1 window (was refused)."""
    assert output_size(2, 3, 2, ceil_mode=True) == 1
    assert output_size(3, 5, 3, 1, 1, ceil_mode=True) == 1
    with pytest.raises(ValueError, match="larger than the padded input"):
        output_size(2, 3, 2, ceil_mode=False)
    with pytest.raises(ValueError, match="larger than the padded input"):
        output_size(1, 4, 2, ceil_mode=True)  # span -3: no window starts inside
    x = np.array([[[[1.0, 7.0], [3.0, 2.0]]]])
    y = F.max_pool2d(nl.tensor(x), 3, 2, ceil_mode=True).numpy()
    np.testing.assert_array_equal(y, [[[[7.0]]]])
    avg = F.avg_pool2d(nl.tensor(x), 3, 2, ceil_mode=True).numpy()
    np.testing.assert_allclose(avg, [[[[13.0 / 4]]]])  # PyTorch: clipped window, 4 inputs


@pytest.mark.parametrize("size, kernel, stride, padding", [
    (h, k, s, p) for h in range(1, 7) for k in range(1, 8) for s in range(1, 4)
    for p in range(0, k // 2 + 1)])
def test_ceil_mode_window_count_matches_pytorch_rule(size, kernel, stride, padding):
    """PyTorch's pooling_output_shape with ceil_mode (floor division rounding
    towards -inf), written out here independently of shapes.py."""
    numerator = size + 2 * padding - (kernel - 1) - 1 + (stride - 1)
    expected = numerator // stride + 1
    if (expected - 1) * stride >= size + padding:
        expected -= 1
    if expected < 1:
        with pytest.raises(ValueError):
            output_size(size, kernel, stride, padding, padding, ceil_mode=True)
    else:
        assert output_size(size, kernel, stride, padding, padding, ceil_mode=True) == expected


def test_avgpool_divisor_does_not_overflow():
    """Kernel 65537 with padding 32768 on a 1x1 input: the window covers
    65537**2 > 2**31 padded positions (PyTorch: 1 / 65537**2 = 2.3e-10)."""
    y = F.avg_pool2d(nl.tensor(np.ones((1, 1, 1, 1))), 65537, 1, 32768).numpy()
    np.testing.assert_allclose(y, [[[[1.0 / 65537**2]]]], rtol=1e-12)
