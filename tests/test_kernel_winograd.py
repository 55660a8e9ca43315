"""The winograd kernel family (the tile transforms of F(2x2, 3x3) and F(4x4,
3x3)) against the NumPy reference written from the paper's matrices, and
F.conv2d(..., algorithm="winograd") against the float64 direct convolution,
on every device present: edge shapes, gradcheck, chunking, determinism, the
algorithm and variant choice, and bad input.

Float32 bounds: Winograd's transforms add and subtract (and for F(4x4, 3x3)
scale by up to 8 and 1/24) inputs before the products and combine the
products after, so its float32 rounding error is larger than im2col's.
Measured max |error| / max |reference| of the forward and both gradients, 16
to 512 input channels: im2col up to 4.6e-7, F(2x2, 3x3) up to 6.7e-7, F(4x4,
3x3) up to 9.3e-6. The tests hold them to F32_BOUND = {2: 4e-6, 4: 3e-5} of
the reference's largest value (and F(2x2, 3x3) to the accumulating-kernel
tolerance of kernel_testing element-wise); float64 to 1e-10.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite import backends
from nnlite.device import to_numpy
from nnlite.functional.conv import choose_algorithm, conv_padding
from nnlite.kernels import winograd as wk
from nnlite.reference import conv as conv_ref
from nnlite.reference import winograd as ref

from kernel_testing import each_dtype, tolerance

F32_BOUND = {2: 4e-6, 4: 3e-5}
each_tile = pytest.mark.parametrize("tile", wk.TILES, ids=lambda t: f"F{t}x{t}")


@pytest.fixture
def winograd_tile(request, monkeypatch):
    """Runs F.conv2d's Winograd path with the variant the test is parametrised with."""
    monkeypatch.setattr(backends, "winograd_tile", request.param)
    return request.param


each_variant = pytest.mark.parametrize("winograd_tile", wk.TILES, indirect=True,
                                       ids=lambda t: f"F{t}x{t}")

# (x shape, out_channels, padding): odd and even sizes, 1x1 images, padding
# wider than the filter reach, asymmetric padding, an empty batch.
CASES = {
    "even same": ((2, 3, 6, 8), 4, 1),
    "odd same": ((2, 3, 7, 5), 4, 1),
    "valid odd": ((2, 2, 9, 7), 3, 0),
    "valid even": ((1, 3, 6, 6), 2, 0),
    "1x1 image same": ((3, 4, 1, 1), 2, 1),
    "1x1 image wide padding": ((1, 2, 1, 1), 3, 3),
    "3x3 image valid": ((2, 2, 3, 3), 2, 0),
    "padding wider than 2": ((1, 2, 5, 4), 3, (3, 4)),
    "asymmetric padding": ((2, 3, 6, 7), 4, (0, 2, 1, 0)),
    "one row": ((2, 2, 1, 9), 3, (1, 1)),
    "one column": ((2, 2, 8, 1), 3, (1, 1)),
    "empty batch": ((0, 3, 5, 5), 2, 1),
}
IDS = list(CASES)


def make_case(name, dtype, seed=0):
    x_shape, out_channels, padding = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((out_channels, x_shape[1], 3, 3)).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    return x, w, b, padding, conv_padding(padding, (3, 3), (1, 1), (1, 1))


def out_size(x_shape, pad4):
    top, bottom, left, right = pad4
    return x_shape[2] + top + bottom - 2, x_shape[3] + left + right - 2


# ------------------------------------------------------------------ kernels --

@each_tile
@each_dtype
@pytest.mark.parametrize("name", IDS)
def test_transforms_match_reference(xp, name, dtype, tile):
    x, w, _, _, pad4 = make_case(name, dtype)
    out_h, out_w = out_size(x.shape, pad4)
    tiles = wk.output_tiles(out_h, out_w, tile)
    alpha2 = wk.components(tile)
    tol = tolerance(dtype) if dtype == np.float64 or tile == 2 else dict(rtol=1e-5, atol=1e-5)
    v = wk.input_transform(xp.asarray(x), pad4[0], pad4[2], tiles, tile)
    assert v.shape == (alpha2, x.shape[1], x.shape[0] * tiles[0] * tiles[1])
    assert v.dtype == dtype
    np.testing.assert_allclose(to_numpy(v), ref.input_transform(x, pad4[0], pad4[2], *tiles,
                                                                tile), **tol)
    np.testing.assert_allclose(to_numpy(wk.filter_transform(xp.asarray(w), tile)),
                               ref.filter_transform(w, tile), **tol)
    rng = np.random.default_rng(1)
    m = rng.standard_normal((alpha2, w.shape[0], v.shape[2])).astype(dtype)
    y = wk.output_transform(xp.asarray(m), x.shape[0], (out_h, out_w), tile)
    assert y.shape == (x.shape[0], w.shape[0], out_h, out_w)
    np.testing.assert_allclose(to_numpy(y), ref.output_transform(m, x.shape[0], out_h, out_w,
                                                                 tile), **tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(to_numpy(wk.output_adjoint(xp.asarray(gy), tile)),
                               ref.output_adjoint(gy, tile), **tol)
    du = rng.standard_normal((alpha2,) + w.shape[:2]).astype(dtype)
    np.testing.assert_allclose(to_numpy(wk.filter_adjoint(xp.asarray(du), tile)),
                               ref.filter_adjoint(du, tile), **tol)


@each_tile
def test_adjoints_are_the_transposes(xp, tile):
    """<output_transform(m), dy> == <m, output_adjoint(dy)> and the same for the
    filter transform: what makes them the weight gradient's transforms."""
    rng = np.random.default_rng(2)
    tiles = wk.output_tiles(7, 5, tile)
    m = rng.standard_normal((wk.components(tile), 3, 2 * tiles[0] * tiles[1]))
    y = to_numpy(wk.output_transform(xp.asarray(m), 2, (7, 5), tile))
    dy = rng.standard_normal(y.shape)
    assert np.isclose((y * dy).sum(),
                      (m * to_numpy(wk.output_adjoint(xp.asarray(dy), tile))).sum(), rtol=1e-12)
    w = rng.standard_normal((3, 4, 3, 3))
    du = rng.standard_normal((wk.components(tile), 3, 4))
    assert np.isclose((to_numpy(wk.filter_transform(xp.asarray(w), tile)) * du).sum(),
                      (w * to_numpy(wk.filter_adjoint(xp.asarray(du), tile))).sum(), rtol=1e-12)


@each_tile
def test_reference_winograd_is_the_direct_convolution(tile):
    x, w, b, _, pad4 = make_case("asymmetric padding", np.float64)
    np.testing.assert_allclose(ref.conv2d_forward(x, w, b, pad4, tile),
                               conv_ref.conv2d_forward(x, w, b, (1, 1), pad4, (1, 1)),
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- F.conv2d --

def assert_within_bound(actual, expected, dtype, tile):
    if dtype == np.float64 or tile == 2:
        np.testing.assert_allclose(actual, expected, **tolerance(dtype, accumulates=True))
    if dtype == np.float32 and expected.size:
        assert np.abs(actual - expected).max() <= F32_BOUND[tile] * np.abs(expected).max()


@each_variant
@each_dtype
@pytest.mark.parametrize("name", IDS)
def test_conv2d_winograd_matches_direct_reference(device, name, dtype, winograd_tile):
    x, w, b, padding, pad4 = make_case(name, dtype)
    ts = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
    y = F.conv2d(*ts, padding=padding, algorithm="winograd")
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    expected = conv_ref.conv2d_forward(x64, w64, b64, (1, 1), pad4, (1, 1))
    assert y.shape == expected.shape and y.dtype == dtype
    assert_within_bound(y.numpy(), expected, dtype, winograd_tile)
    gy = np.random.default_rng(3).standard_normal(expected.shape).astype(dtype)
    y.backward(nl.tensor(gy, device=device))
    for t, e in zip(ts, conv_ref.conv2d_backward(x64, w64, gy.astype(np.float64), (1, 1), pad4,
                                                 (1, 1))):
        assert t.grad.shape == e.shape
        assert_within_bound(t.grad.numpy(), e, dtype, winograd_tile)


@each_variant
def test_float32_error_at_many_channels_is_within_the_bound(winograd_tile):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 256, 6, 10))
    w = rng.standard_normal((16, 256, 3, 3)) / 48
    gy = rng.standard_normal((2, 16, 6, 10))
    ts = [nl.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w)]
    y = F.conv2d(*ts, padding=1, algorithm="winograd")
    y.backward(nl.tensor(gy.astype(np.float32)))
    gx, gw, _ = conv_ref.conv2d_backward(x, w, gy, (1, 1), (1, 1, 1, 1), (1, 1))
    for actual, expected in ((y, conv_ref.conv2d_forward(x, w, None, (1, 1), (1, 1, 1, 1),
                                                          (1, 1))),
                             (ts[0].grad, gx), (ts[1].grad, gw)):
        assert_within_bound(actual.numpy(), expected, np.float32, winograd_tile)


@each_variant
@pytest.mark.parametrize("name", ["odd same", "valid odd", "padding wider than 2",
                                  "asymmetric padding", "1x1 image same"])
def test_conv2d_winograd_gradcheck_float64(device, name, winograd_tile):
    x, w, b, padding, _ = make_case(name, np.float64, seed=5)
    inputs = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
    assert nl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding,
                                                 algorithm="winograd"), inputs)


@each_variant
def test_winograd_agrees_with_im2col_and_skips_unneeded_gradients(device, winograd_tile):
    x, w, b, padding, _ = make_case("odd same", np.float64, seed=6)
    results = {}
    for algorithm in ("im2col", "winograd"):
        wt = nl.tensor(w, requires_grad=True, device=device)
        y = F.conv2d(nl.tensor(x, device=device), wt, nl.tensor(b, device=device),
                     padding=padding, algorithm=algorithm)
        (y * y).sum().backward()
        results[algorithm] = (y.numpy(), wt.grad.numpy())
    for a, b_ in zip(results["im2col"], results["winograd"]):
        np.testing.assert_allclose(a, b_, rtol=1e-11, atol=1e-11)


@each_variant
def test_workspace_chunks_give_the_same_result(monkeypatch, winograd_tile):
    x, w, b, padding, _ = make_case("odd same", np.float64, seed=7)
    x = np.concatenate([x] * 3)  # 6 images
    seen = []
    real = wk.input_transform

    def recording(chunk, *args):
        seen.append(chunk.shape[0])
        return real(chunk, *args)

    monkeypatch.setattr(wk, "input_transform", recording)
    runs = []
    for workspace in (1, 1 << 30):
        old = F.set_conv_workspace(workspace)
        try:
            seen.clear()
            ts = [nl.tensor(a, requires_grad=True) for a in (x, w, b)]
            y = F.conv2d(*ts, padding=padding, algorithm="winograd")
            y.backward(nl.tensor(np.cos(y.numpy())))
        finally:
            F.set_conv_workspace(old)
        # Forward, gx (on gy) and gw each transform image by image; or all at
        # once, and then gw takes the forward's transform instead of a third.
        assert seen == ([1] * 18 if workspace == 1 else [6, 6])
        runs.append([y.numpy()] + [t.grad.numpy() for t in ts])
    for chunked, whole in zip(*runs):
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


@each_variant
def test_two_runs_are_bitwise_identical(device, winograd_tile):
    x, w, b, padding, _ = make_case("even same", np.float32, seed=8)
    x = np.concatenate([x] * 8)
    runs = []
    for _ in range(2):
        ts = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
        y = F.conv2d(*ts, padding=padding, algorithm="winograd")
        (y * y).sum().backward()
        runs.append([y.numpy()] + [t.grad.numpy() for t in ts])
    for first, second in zip(*runs):
        assert first.tobytes() == second.tobytes()


@each_variant
def test_result_does_not_depend_on_the_thread_count(winograd_tile):
    x, w, b, padding, _ = make_case("odd same", np.float32, seed=9)
    x = np.concatenate([x] * 4)
    before = nl.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            nl.set_num_threads(threads)
            ts = [nl.tensor(a, requires_grad=True) for a in (x, w, b)]
            y = F.conv2d(*ts, padding=padding, algorithm="winograd")
            (y * y).sum().backward()
            runs.append([y.numpy()] + [t.grad.numpy() for t in ts])
    finally:
        nl.set_num_threads(before)
    for other in runs[1:]:
        for a, b_ in zip(runs[0], other):
            assert a.tobytes() == b_.tobytes()


@each_variant
def test_no_channels_and_no_output_channels(winograd_tile):
    x = nl.tensor(np.zeros((2, 0, 5, 5), np.float32), requires_grad=True)
    w = nl.tensor(np.zeros((3, 0, 3, 3), np.float32), requires_grad=True)
    b = nl.tensor(np.arange(3, dtype=np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1, algorithm="winograd")
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(np.arange(3.0)[:, None, None],
                                                             (2, 3, 5, 5)))
    y.sum().backward()
    assert x.grad.shape == (2, 0, 5, 5) and w.grad.shape == (3, 0, 3, 3)
    x = nl.tensor(np.ones((2, 2, 5, 5), np.float32), requires_grad=True)
    w = nl.tensor(np.ones((0, 2, 3, 3), np.float32), requires_grad=True)
    y = F.conv2d(x, w, algorithm="winograd")
    assert y.shape == (2, 0, 3, 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


# -------------------------------------------------------- algorithm choice --

# The seed CRNN's 3x3 layers (SPECS.md section 3) at N=32.
CRNN_3X3 = {"conv1": (1, 64, 32, 128), "conv2": (64, 128, 16, 64), "conv3": (128, 256, 8, 32),
            "conv4": (256, 256, 4, 32), "conv5": (256, 512, 4, 32), "conv6": (512, 512, 4, 32)}


@pytest.mark.parametrize("layer", list(CRNN_3X3))
def test_auto_rule_on_the_seed_crnn(layer):
    c, k, h, w = CRNN_3X3[layer]
    expected = "im2col" if layer == "conv1" else "winograd"
    assert choose_algorithm((32, c, h, w), (k, c, 3, 3), (1, 1), (1, 1), "auto") == expected


@pytest.mark.parametrize("weight_shape, stride, dilation, expected", [
    ((16, 16, 3, 3), (1, 1), (1, 1), "winograd"),
    ((16, 8, 3, 3), (1, 1), (1, 1), "winograd"),
    ((64, 8, 3, 3), (1, 1), (1, 1), "im2col"),     # widens 8x from few channels
    ((32, 8, 3, 3), (1, 1), (1, 1), "winograd"),
    ((16, 4, 3, 3), (1, 1), (1, 1), "direct"),    # few channels: not Winograd; 16 out
    ((32, 4, 3, 3), (1, 1), (1, 1), "im2col"),    # ... 32 out: not direct either
    ((16, 6, 3, 3), (1, 1), (1, 1), "winograd"),
    ((512, 32, 3, 3), (1, 1), (1, 1), "winograd"),  # wide enough input
    ((64, 3, 3, 3), (1, 1), (1, 1), "im2col"),
    ((64, 64, 5, 5), (1, 1), (1, 1), "im2col"),
    ((64, 64, 3, 3), (2, 2), (1, 1), "im2col"),
    ((64, 64, 3, 3), (1, 1), (2, 2), "im2col"),
    ((64, 64, 3, 1), (1, 1), (1, 1), "im2col"),
])
def test_auto_rule(weight_shape, stride, dilation, expected):
    assert choose_algorithm((2,) + weight_shape[1:2] + (9, 9), weight_shape, stride,
                            dilation, "auto") == expected


def test_module_setting_and_overrides(monkeypatch):
    monkeypatch.setattr(backends, "conv_algorithm", "auto")
    calls = []
    from nnlite.functional import conv as conv_module
    real = conv_module.conv_winograd.WinogradConv2d.apply
    monkeypatch.setattr(conv_module.conv_winograd.WinogradConv2d, "apply",
                        lambda *a, **k: calls.append("winograd") or real(*a, **k))
    x = nl.tensor(np.ones((2, 16, 16, 16), np.float32))  # 32 tiles of 4x4: enough
    w = nl.tensor(np.ones((16, 16, 3, 3), np.float32))
    F.conv2d(x, w, padding=1)
    assert calls == ["winograd"]
    monkeypatch.setattr(backends, "conv_algorithm", "im2col")
    F.conv2d(x, w, padding=1)
    assert calls == ["winograd"]
    F.conv2d(x, w, padding=1, algorithm="winograd")  # the call overrides the module setting
    assert calls == ["winograd"] * 2
    layer = nl.nn.Conv2d(16, 16, 3, padding=1, algorithm="winograd")
    layer(x)
    assert calls == ["winograd"] * 3
    assert "algorithm='winograd'" in repr(layer)
    # The module-wide "winograd" is a preference: a 5x5 layer still runs (im2col).
    monkeypatch.setattr(backends, "conv_algorithm", "winograd")
    F.conv2d(x, nl.tensor(np.ones((2, 16, 5, 5), np.float32)), padding=2)
    F.conv2d(x, w, padding=1)
    assert calls == ["winograd"] * 4


def test_environment_variable_sets_the_starting_value():
    code = "import nnlite.backends as b; print(b.conv_algorithm)"
    env = dict(os.environ, NNLITE_CONV_ALGORITHM="im2col")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "im2col"
    env.pop("NNLITE_CONV_ALGORITHM")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "auto"  # the default


def conv(w_shape=(3, 2, 3, 3), **kw):
    return F.conv2d(nl.tensor(np.zeros((1, 2, 6, 6), np.float32)),
                    nl.tensor(np.zeros(w_shape, np.float32)), **kw)


@pytest.mark.parametrize("call, pattern", [
    (lambda: conv((3, 2, 5, 5), algorithm="winograd"),
     r"conv2d: algorithm='winograd' computes 3x3 convolutions with stride 1 and dilation 1; "
     r"this layer has x shape \(1, 2, 6, 6\), weight shape \(3, 2, 5, 5\) \(kernel \(5, 5\)\)"),
    (lambda: conv(stride=2, algorithm="winograd"), r"stride \(2, 2\)"),
    (lambda: conv(dilation=2, algorithm="winograd"), r"dilation \(2, 2\)"),
    (lambda: conv(algorithm="fft"),
     r"conv2d: algorithm = 'fft' is not a convolution algorithm; expected one of 'auto', "
     r"'im2col', 'direct', 'winograd'"),
    (lambda: nl.nn.Conv2d(2, 3, 5, algorithm="winograd"),
     r"Conv2d\(2, 3, kernel_size=\(5, 5\), stride=\(1, 1\), dilation=\(1, 1\)\): "
     r"algorithm='winograd' computes 3x3"),
    (lambda: nl.nn.Conv2d(2, 3, 3, algorithm="fft"), r"Conv2d: algorithm = 'fft'"),
])
def test_unsupported_algorithm_is_refused_with_the_layer_shape(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_bad_module_setting_is_named(monkeypatch):
    monkeypatch.setattr(backends, "conv_algorithm", "fastest")
    with pytest.raises(ValueError, match=r"nnlite.backends.conv_algorithm = 'fastest' is not"):
        conv()


@pytest.mark.parametrize("out_hw, setting, expected", [
    ((4, 32), None, 4), ((3, 40), None, 4), ((2, 2), None, 2), ((2, 64), None, 2),
    ((64, 1), None, 2), ((4, 32), 2, 2), ((1, 1), 4, 4)])
def test_variant_choice(monkeypatch, out_hw, setting, expected):
    from nnlite.functional.conv_winograd import choose_tile
    monkeypatch.setattr(backends, "winograd_tile", setting)
    assert choose_tile(out_hw) == expected


def test_bad_variant_setting_is_named(monkeypatch):
    monkeypatch.setattr(backends, "winograd_tile", 3)
    with pytest.raises(ValueError, match=r"nnlite.backends.winograd_tile = 3; expected None"):
        conv(algorithm="winograd")


def test_winograd_tile_environment_variable():
    code = "import nnlite.backends as b; print(b.winograd_tile)"
    env = dict(os.environ, NNLITE_WINOGRAD_TILE="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "2"


# -------------------------------------------------------------- bad input --

@pytest.mark.parametrize("call, error, pattern", [
    (lambda: wk.input_transform(np.zeros((2, 3, 4), np.float32), 1, 1, (1, 1)), ValueError,
     r"winograd_input_transform: x must be 4-D \(N, C, H, W\); got shape \(2, 3, 4\)"),
    (lambda: wk.input_transform(np.zeros((1, 1, 4, 4), np.int32), 1, 1, (1, 1)), TypeError,
     r"winograd_input_transform: x has dtype int32"),
    (lambda: wk.input_transform(np.zeros((1, 1, 4, 4), np.float32), -1, 1, (1, 1)), ValueError,
     r"winograd_input_transform: pad_top must be a non-negative int, got -1"),
    (lambda: wk.input_transform(np.zeros((1, 1, 4, 4), np.float32), 0, 2**31, (1, 1)),
     ValueError, r"winograd_input_transform: pad_left = 2147483648; at most 2147483647"),
    (lambda: wk.input_transform(np.zeros((1, 1, 4, 4), np.float32), 0, 0, (2**16, 2**16)),
     ValueError, r"winograd_input_transform: 65536 x 65536 tiles per image; at most"),
    (lambda: wk.filter_transform(np.zeros((2, 3, 5, 5), np.float32)), ValueError,
     r"winograd_filter_transform: w has shape \(2, 3, 5, 5\); expected 3x3 filters"),
    (lambda: wk.output_transform(np.zeros((16, 2, 5), np.float32), 1, (3, 3)), ValueError,
     r"winograd_output_transform: m has shape \(16, 2, 5\); expected \(16, 2, 4\) for 1 "
     r"images of 3x3 outputs \(2x2 tiles of 2x2 each\)"),
    (lambda: wk.output_transform(np.zeros((36, 2, 4), np.float32), 1, (3, 3), 4), ValueError,
     r"m has shape \(36, 2, 4\); expected \(36, 2, 1\) for 1 images of 3x3 outputs \(1x1 "
     r"tiles of 4x4 each\)"),
    (lambda: wk.filter_transform(np.zeros((2, 3, 3, 3), np.float32), 3), ValueError,
     r"winograd_filter_transform: tile = 3; expected 2 \(F\(2x2, 3x3\)\) or 4"),
    (lambda: wk.input_transform(np.zeros((1, 1, 4, 4)), 0, 0, (1, 1), True), ValueError,
     r"winograd_input_transform: tile = True"),
    (lambda: wk.output_transform(np.zeros((16, 2, 4), np.float32), 1, (3, -3)), ValueError,
     r"winograd_output_transform: out_w must be a non-negative int, got -3"),
    (lambda: wk.output_transform(np.zeros((16, 2, 4)), True, (3, 3)), ValueError,
     r"winograd_output_transform: images must be a non-negative int, got True"),
    (lambda: wk.filter_adjoint(np.zeros((9, 2, 3), np.float32)), ValueError,
     r"winograd_filter_adjoint: du has shape \(9, 2, 3\); expected \(16, out_channels, "
     r"in_channels\) for tile 2"),
    (lambda: wk.filter_adjoint(np.zeros((16, 2, 3), np.float32), 4), ValueError,
     r"expected \(36, out_channels, in_channels\) for tile 4"),
    (lambda: wk.output_adjoint(np.zeros((2, 3), np.float64)), ValueError,
     r"winograd_output_adjoint: gy must be 4-D"),
])
def test_kernel_module_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_entry_points_refuse_inconsistent_arguments():
    """nnlite._C is importable: its entry points check every argument."""
    from nnlite import _C
    x = np.zeros((1, 2, 4, 4), np.float32)
    v = np.zeros((16, 2, 4), np.float32)
    _C.winograd_input_transform_f32(x, v, 1, 2, 4, 4, 1, 1, 2, 2, 2)
    with pytest.raises(ValueError, match=r"winograd_input_transform: v has shape \(16, 2, 4\) "
                                         r"\(128 elements\); expected 256 elements"):
        _C.winograd_input_transform_f32(x, v, 1, 2, 4, 4, 1, 1, 2, 4, 2)
    with pytest.raises(ValueError, match=r"winograd_input_transform: pad_top = -1; expected"):
        _C.winograd_input_transform_f32(x, v, 1, 2, 4, 4, -1, 1, 2, 2, 2)
    with pytest.raises(ValueError, match=r"winograd_input_transform: x has shape"):
        _C.winograd_input_transform_f32(x, v, 2, 2, 4, 4, 1, 1, 2, 1, 2)
    with pytest.raises(ValueError, match=r"winograd_input_transform: tile = 3; expected 2"):
        _C.winograd_input_transform_f32(x, v, 1, 2, 4, 4, 1, 1, 2, 2, 3)
    with pytest.raises(ValueError, match=r"winograd_input_transform: v has shape \(16, 2, 4\) "
                                         r"\(128 elements\); expected 72 elements"):
        _C.winograd_input_transform_f32(x, v, 1, 2, 4, 4, 1, 1, 1, 1, 4)
    with pytest.raises(ValueError, match=r"\(tile \+ 2\) \* channels = 12884901882"):
        _C.winograd_input_transform_f32(x, v, 0, 2**31 - 1, 4, 4, 1, 1, 1, 1, 4)
    with pytest.raises(ValueError, match=r"overflows 64 bits"):
        _C.winograd_input_transform_f32(x, v, 2**62, 2**20, 4, 4, 1, 1, 2, 2, 2)
    with pytest.raises(ValueError, match=r"winograd_input_transform: v shares memory with x"):
        _C.winograd_input_transform_f32(v.reshape(4, 2, 4, 4), v, 4, 2, 4, 4, 0, 0, 1, 1, 2)
    y = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"winograd_output_transform: tiles_h \(ceil\(out_h / "
                                         r"tile\)\) = 1; expected a value in \[2, 2\]"):
        _C.winograd_output_transform_f32(v, y, 1, 2, 4, 4, 1, 4, 2)
    read_only = np.zeros((1, 2, 4, 4), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"winograd_output_transform: y is read-only"):
        _C.winograd_output_transform_f32(v, read_only, 1, 2, 4, 4, 2, 2, 2)
    with pytest.raises(ValueError, match=r"winograd_filter_transform: u has shape"):
        _C.winograd_filter_transform_f32(np.zeros((2, 2, 3, 3), np.float32),
                                         np.zeros((16, 2, 3), np.float32), 2, 2, 2)
    with pytest.raises(ValueError, match=r"winograd_filter_adjoint: out_channels = -2"):
        _C.winograd_filter_adjoint_f64(np.zeros((16, 2, 2)), np.zeros((2, 2, 3, 3)), -2, 2, 2)
    with pytest.raises(ValueError, match=r"winograd_output_adjoint: dm has shape"):
        _C.winograd_output_adjoint_f64(np.zeros((1, 2, 3, 3)), np.zeros((16, 2, 3)), 1, 2, 3,
                                       3, 2, 2, 2)


def test_huge_padding_indexes_in_64_bits():
    """2 * ti - pad_top is formed in 64 bits: a pad near 2**31 reads only zeros."""
    x = np.ones((1, 1, 2, 2), np.float32)
    for tile in wk.TILES:
        v = wk.input_transform(x, 2**31 - 1, 2**31 - 1, (1, 1), tile)
        np.testing.assert_array_equal(v, 0)


def test_auto_leaves_a_batch_of_few_tiles_to_im2col():
    # The filter transform costs the same for one image as for many: reading
    # one word (seed CRNN conv6, 4x32 output: 8 tiles of 4x4) stays on im2col.
    from nnlite.functional.conv import WINOGRAD_MIN_TILES
    from nnlite.kernels.shapes import ConvGeometry
    g = ConvGeometry.of((4, 32), (3, 3), padding=(1, 1, 1, 1))
    weight = (512, 512, 3, 3)
    assert choose_algorithm((1, 512, 4, 32), weight, (1, 1), (1, 1), "auto", g) == "im2col"
    assert choose_algorithm((4, 512, 4, 32), weight, (1, 1), (1, 1), "auto", g) == "winograd"
    assert WINOGRAD_MIN_TILES == 32
    # a named algorithm is still obeyed
    assert choose_algorithm((1, 512, 4, 32), weight, (1, 1), (1, 1), "winograd", g) == "winograd"
