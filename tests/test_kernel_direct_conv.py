"""The direct_conv kernel family (the direct, implicit-GEMM convolution: forward,
backward-data, backward-weights) against the NumPy reference convolution, and
F.conv2d(..., algorithm="direct") on every device present: edge shapes,
gradcheck, NaN propagation, determinism, the algorithm choice and bad input.

Float32: the direct convolution adds the same products as im2col's GEMM in a
different order (forward: channel, then taps, in one running sum per output),
so it is held to the accumulating-kernel tolerance of kernel_testing, as
im2col is; float64 at 1e-10.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite import backends
from nnlite.device import to_numpy
from nnlite.functional.conv import choose_algorithm, conv_padding
from nnlite.kernels import direct_conv as dk
from nnlite.kernels.shapes import ConvGeometry
from nnlite.reference import conv as conv_ref

from kernel_testing import each_dtype, tolerance

# name: (x shape, out_channels, kernel, stride, padding, dilation); padding as
# F.conv2d takes it (an int, a pair, four ints or "same").
CASES = {
    "3x3 same": ((2, 3, 6, 8), 4, (3, 3), 1, 1, 1),
    "rows past one tile": ((2, 2, 5, 37), 5, (3, 3), 1, 1, 1),
    "even kernel same (asymmetric)": ((2, 3, 7, 9), 3, (4, 4), 1, "same", 1),
    "8x8 same": ((1, 2, 12, 19), 3, (8, 8), 1, "same", 1),
    "asymmetric padding": ((2, 3, 6, 7), 4, (3, 2), 1, (0, 2, 1, 0), 1),
    "stride 2": ((2, 3, 9, 11), 4, (3, 3), 2, 1, 1),
    "stride > kernel": ((2, 1, 9, 11), 3, (2, 2), (3, 4), 0, 1),
    "dilation": ((2, 2, 9, 10), 3, (3, 2), 1, (2, 1), (2, 3)),
    "stride and dilation": ((1, 3, 11, 13), 2, (3, 3), (2, 3), (1, 0, 2, 1), (2, 2)),
    "kernel as large as the padded input": ((2, 2, 4, 5), 3, (6, 7), 1, 1, 1),
    "1x1 image": ((3, 4, 1, 1), 2, (3, 3), 1, 1, 1),
    "1x1 kernel": ((2, 5, 4, 6), 3, (1, 1), 1, 0, 1),
    "padding wider than the kernel": ((1, 2, 3, 4), 3, (2, 2), 1, (4, 3), 1),
    "1 channel in, 1 out": ((2, 1, 7, 20), 1, (3, 3), 1, 0, 1),
    "many channels": ((1, 70, 5, 6), 9, (3, 3), 1, 1, 1),
    "empty batch": ((0, 3, 5, 5), 2, (3, 3), 1, 1, 1),
}
IDS = list(CASES)


def make_case(name, dtype, seed=0):
    x_shape, out_channels, kernel, stride, padding, dilation = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((out_channels, x_shape[1]) + kernel).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    stride2 = (stride, stride) if isinstance(stride, int) else stride
    dilation2 = (dilation, dilation) if isinstance(dilation, int) else dilation
    pad4 = conv_padding(padding, kernel, stride2, dilation2)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation), \
        (stride2, pad4, dilation2)


def geometry(x, w, stride, pad4, dilation):
    return ConvGeometry.of(x.shape[2:], w.shape[2:], stride, pad4, dilation)


# ------------------------------------------------------------------ kernels --

@each_dtype
@pytest.mark.parametrize("name", IDS)
def test_kernels_match_reference(xp, name, dtype):
    x, w, b, _, (stride, pad4, dilation) = make_case(name, dtype)
    g = geometry(x, w, stride, pad4, dilation)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    y = dk.forward(xp.asarray(x), xp.asarray(w), xp.asarray(b), g)
    expected = conv_ref.conv2d_forward(x64, w64, b64, stride, pad4, dilation)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_allclose(to_numpy(y), expected, **tolerance(dtype, accumulates=True))
    gy = np.random.default_rng(1).standard_normal(expected.shape).astype(dtype)
    gx_ref, gw_ref, _ = conv_ref.conv2d_backward(x64, w64, gy.astype(np.float64), stride, pad4,
                                                 dilation)
    gx = dk.backward_data(xp.asarray(gy), xp.asarray(w), g, x.shape)
    gw = dk.backward_weight(xp.asarray(x), xp.asarray(gy), g)
    assert gx.shape == x.shape and gw.shape == w.shape
    np.testing.assert_allclose(to_numpy(gx), gx_ref, **tolerance(dtype, accumulates=True))
    np.testing.assert_allclose(to_numpy(gw), gw_ref, **tolerance(dtype, accumulates=True))


def test_float64_within_1e_10_of_the_reference_at_many_terms():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 40, 9, 21))
    w = rng.standard_normal((6, 40, 5, 5))
    b = rng.standard_normal(6)
    g = ConvGeometry.of((9, 21), (5, 5), 1, (2, 2, 2, 2), 1)
    y = dk.forward(x, w, b, g)
    np.testing.assert_allclose(y, conv_ref.conv2d_forward(x, w, b, (1, 1), (2, 2, 2, 2), (1, 1)),
                               rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref, _ = conv_ref.conv2d_backward(x, w, gy, (1, 1), (2, 2, 2, 2), (1, 1))
    np.testing.assert_allclose(dk.backward_data(gy, w, g, x.shape), gx_ref, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(dk.backward_weight(x, gy, g), gw_ref, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------- F.conv2d --

@each_dtype
@pytest.mark.parametrize("name", IDS)
def test_conv2d_direct_matches_reference(device, name, dtype):
    x, w, b, kwargs, (stride, pad4, dilation) = make_case(name, dtype)
    ts = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
    y = F.conv2d(*ts, algorithm="direct", **kwargs)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    expected = conv_ref.conv2d_forward(x64, w64, b64, stride, pad4, dilation)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), expected, **tolerance(dtype, accumulates=True))
    gy = np.random.default_rng(3).standard_normal(expected.shape).astype(dtype)
    y.backward(nl.tensor(gy, device=device))
    for t, e in zip(ts, conv_ref.conv2d_backward(x64, w64, gy.astype(np.float64), stride, pad4,
                                                 dilation)):
        assert t.grad.shape == e.shape and t.grad.dtype == dtype
        np.testing.assert_allclose(t.grad.numpy(), e, **tolerance(dtype, accumulates=True))


@pytest.mark.parametrize("name", ["3x3 same", "even kernel same (asymmetric)", "stride 2",
                                  "stride and dilation", "kernel as large as the padded input",
                                  "1x1 image", "padding wider than the kernel"])
def test_conv2d_direct_gradcheck_float64(device, name):
    x, w, b, kwargs, _ = make_case(name, np.float64, seed=5)
    inputs = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
    assert nl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, algorithm="direct", **kwargs), inputs)


def test_direct_agrees_with_im2col_and_skips_unneeded_gradients(device):
    x, w, b, kwargs, _ = make_case("dilation", np.float64, seed=6)
    results = {}
    for algorithm in ("im2col", "direct"):
        wt = nl.tensor(w, requires_grad=True, device=device)
        y = F.conv2d(nl.tensor(x, device=device), wt, nl.tensor(b, device=device),
                     algorithm=algorithm, **kwargs)
        (y * y).sum().backward()
        results[algorithm] = (y.numpy(), wt.grad.numpy())
    for a, b_ in zip(results["im2col"], results["direct"]):
        np.testing.assert_allclose(a, b_, rtol=1e-11, atol=1e-11)


def test_no_bias_and_no_channels():
    x = nl.tensor(np.zeros((2, 0, 5, 5), np.float32), requires_grad=True)
    w = nl.tensor(np.zeros((3, 0, 3, 3), np.float32), requires_grad=True)
    b = nl.tensor(np.arange(3, dtype=np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1, algorithm="direct")
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(np.arange(3.0)[:, None, None],
                                                             (2, 3, 5, 5)))
    y.sum().backward()
    assert x.grad.shape == (2, 0, 5, 5) and w.grad.shape == (3, 0, 3, 3)
    np.testing.assert_array_equal(b.grad.numpy(), 25 * 2)
    x = nl.tensor(np.ones((2, 2, 5, 5), np.float32), requires_grad=True)
    w = nl.tensor(np.ones((0, 2, 3, 3), np.float32), requires_grad=True)
    y = F.conv2d(x, w, algorithm="direct")
    assert y.shape == (2, 0, 3, 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    x = nl.tensor(np.ones((1, 2, 5, 5)), requires_grad=True)
    w = nl.tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, algorithm="direct")  # no bias
    np.testing.assert_array_equal(y.numpy(), 18.0)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 9.0)


# ------------------------------------------------------- NaN, determinism --

def test_nan_reaches_exactly_the_outputs_that_read_it(device):
    """A NaN in x spoils the outputs whose windows read it, a NaN in gy the input
    pixels it reaches and the weight gradient of its output channel: the
    reference's NaN pattern, element by element. (Pixel (4, 5) is one that no
    window reads at this stride and dilation: its NaN goes nowhere.)"""
    x, w, b, kwargs, (stride, pad4, dilation) = make_case("stride and dilation", np.float64)
    x[0, 1, 3, 4] = x[0, 2, 4, 5] = np.nan
    ts = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
    y = F.conv2d(*ts, algorithm="direct", **kwargs)
    expected = conv_ref.conv2d_forward(x, w, b, stride, pad4, dilation)
    assert np.isnan(expected).any() and not np.isnan(expected).all()
    np.testing.assert_array_equal(np.isnan(y.numpy()), np.isnan(expected))
    gy = np.ones(expected.shape)
    gy[0, 1, 2, 1] = np.nan
    y.backward(nl.tensor(gy, device=device))
    gx, gw, gb = conv_ref.conv2d_backward(x, w, gy, stride, pad4, dilation)
    for actual, e in zip(ts, (gx, gw, gb)):
        assert np.isnan(e).any()
        np.testing.assert_array_equal(np.isnan(actual.grad.numpy()), np.isnan(e))


def test_two_runs_are_bitwise_identical(device):
    x, w, b, kwargs, _ = make_case("even kernel same (asymmetric)", np.float32, seed=8)
    x = np.concatenate([x] * 8)
    runs = []
    for _ in range(2):
        ts = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
        y = F.conv2d(*ts, algorithm="direct", **kwargs)
        (y * y).sum().backward()
        runs.append([y.numpy()] + [t.grad.numpy() for t in ts])
    for first, second in zip(*runs):
        assert first.tobytes() == second.tobytes()


def test_result_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(9)
    x, w, b = (rng.standard_normal(s).astype(np.float32)
               for s in ((6, 5, 17, 40), (7, 5, 3, 3), (7,)))
    before = nl.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            nl.set_num_threads(threads)
            ts = [nl.tensor(a, requires_grad=True) for a in (x, w, b)]
            y = F.conv2d(*ts, padding=1, algorithm="direct")
            (y * y).sum().backward()
            runs.append([y.numpy()] + [t.grad.numpy() for t in ts])
    finally:
        nl.set_num_threads(before)
    for other in runs[1:]:
        for a, b_ in zip(runs[0], other):
            assert a.tobytes() == b_.tobytes()


# -------------------------------------------------------- algorithm choice --

# Every conv layer of the bench (bench/cases/conv.py): (C_in, C_out, k) -> what
# "auto" runs, as measured there (nnlite/functional/conv.py quotes the figures).
SEED_LAYERS = {
    "digits conv1": ((1, 8, 10), "direct"), "digits conv2": ((8, 14, 8), "direct"),
    "digits conv3": ((14, 20, 6), "direct"), "digits conv4": ((20, 24, 4), "direct"),
    "digits conv5": ((24, 32, 2), "im2col"), "reader c1": ((1, 16, 3), "direct"),
    "reader c2": ((16, 16, 3), "winograd"), "ocr conv1": ((1, 64, 3), "im2col"),
    "charnet conv1": ((1, 64, 5), "im2col"), "ocr conv2": ((64, 128, 3), "winograd"),
    "ocr conv7": ((512, 512, 2), "im2col"), "jaderberg conv2": ((64, 128, 5), "im2col"),
}


@pytest.mark.parametrize("layer", list(SEED_LAYERS))
def test_auto_rule_on_the_seed_layers(layer):
    (c, k, size), expected = SEED_LAYERS[layer]
    x_shape, w_shape = (32, c, 32, 64), (k, c, size, size)
    g = ConvGeometry.of(x_shape[2:], size, 1, conv_padding("same", (size, size), (1, 1), (1, 1)),
                        1)
    assert choose_algorithm(x_shape, w_shape, (1, 1), (1, 1), "auto", geometry=g) == expected


def test_auto_leaves_strided_and_dilated_layers_to_im2col():
    for stride, dilation in (((2, 2), (1, 1)), ((1, 1), (2, 1))):
        assert choose_algorithm((2, 8, 20, 20), (14, 8, 5, 5), stride, dilation, "auto") == \
            "im2col"
    assert choose_algorithm((2, 8, 20, 20), (14, 8, 5, 5), (1, 1), (1, 1), "auto") == "direct"


def test_module_setting_and_overrides(monkeypatch):
    from nnlite.functional import conv as conv_module
    calls = []
    real = conv_module.conv_direct.DirectConv2d.apply
    monkeypatch.setattr(conv_module.conv_direct.DirectConv2d, "apply",
                        lambda *a, **k: calls.append("direct") or real(*a, **k))
    x = nl.tensor(np.ones((1, 2, 6, 6), np.float32))
    w = nl.tensor(np.ones((3, 2, 5, 5), np.float32))
    monkeypatch.setattr(backends, "conv_algorithm", "im2col")
    F.conv2d(x, w, padding=2)
    assert calls == []
    F.conv2d(x, w, padding=2, algorithm="direct")
    assert calls == ["direct"]
    layer = nl.nn.Conv2d(2, 3, 5, padding=2, algorithm="direct")
    assert "algorithm='direct'" in repr(layer)
    layer(x)
    assert calls == ["direct"] * 2
    monkeypatch.setattr(backends, "conv_algorithm", "direct")
    F.conv2d(x, w, padding=2)
    assert calls == ["direct"] * 3
    # The module-wide "direct" is a preference: a layer past its bound runs by im2col.
    huge = dict(padding=5000, dilation=5000)
    w2 = nl.tensor(np.ones((1, 2, 2, 2), np.float32))
    assert F.conv2d(nl.tensor(np.ones((1, 2, 1, 1), np.float32)), w2, **huge).shape == \
        (1, 1, 5001, 5001)
    assert calls == ["direct"] * 3


def test_layer_past_the_bound_is_refused_when_named():
    x = nl.tensor(np.ones((1, 2, 1, 1), np.float32))
    w = nl.tensor(np.ones((1, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"conv2d: algorithm='direct' cannot compute this layer "
                                         r"\(x shape \(1, 2, 1, 1\), weight shape \(1, 2, 2, 2\), "
                                         r"stride \(1, 1\), dilation \(5000, 5000\)\): its "
                                         r"zero-extended planes of \d+ x \d+ positions"):
        F.conv2d(x, w, padding=5000, dilation=5000, algorithm="direct")
    g = ConvGeometry.of((1, 1), (2, 2), 1, 5000, 5000)
    with pytest.raises(ValueError, match=r"direct_conv_forward: ConvGeometry\(.*\): its "
                                         r"zero-extended planes"):
        dk.forward(np.ones((1, 2, 1, 1), np.float32), np.ones((1, 2, 2, 2), np.float32),
                   np.ones(1, np.float32), g)


def test_unknown_algorithm_lists_direct():
    with pytest.raises(ValueError, match=r"expected one of 'auto', 'im2col', 'direct', "
                                         r"'winograd'"):
        F.conv2d(nl.tensor(np.zeros((1, 2, 6, 6), np.float32)),
                 nl.tensor(np.zeros((3, 2, 3, 3), np.float32)), algorithm="fft")


# -------------------------------------------------------------- bad input --

def _g():
    return ConvGeometry.of((5, 6), (3, 2), 1, (1, 1, 0, 0), 1)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: dk.forward(np.zeros((2, 3, 5), np.float32), np.zeros((4, 3, 3, 2), np.float32),
                        np.zeros(4, np.float32), _g()), ValueError,
     r"direct_conv_forward: x must be 4-D \(N, C, H, W\); got shape \(2, 3, 5\)"),
    (lambda: dk.forward(np.zeros((2, 3, 5, 6), np.int32), np.zeros((4, 3, 3, 2), np.float32),
                        np.zeros(4, np.float32), _g()), TypeError,
     r"direct_conv_forward: x has dtype int32"),
    (lambda: dk.forward(np.zeros((2, 3, 5, 6)), np.zeros((4, 3, 3, 2), np.float32),
                        np.zeros(4), _g()), TypeError,
     r"direct_conv_forward: x is float64, w is float32, b is float64; expected one float "
     r"dtype"),
    (lambda: dk.forward(np.zeros((2, 3, 5, 7), np.float32), np.zeros((4, 3, 3, 2), np.float32),
                        np.zeros(4, np.float32), _g()), ValueError,
     r"direct_conv_forward: x has shape \(2, 3, 5, 7\); expected \(2, 3, 5, 6\) for "
     r"ConvGeometry"),
    (lambda: dk.forward(np.zeros((2, 3, 5, 6), np.float32), np.zeros((4, 2, 3, 2), np.float32),
                        np.zeros(4, np.float32), _g()), ValueError,
     r"direct_conv_forward: w has shape \(4, 2, 3, 2\); expected \(4, 3, 3, 2\)"),
    (lambda: dk.forward(np.zeros((2, 3, 5, 6), np.float32), np.zeros((4, 3, 3, 2), np.float32),
                        np.zeros(3, np.float32), _g()), ValueError,
     r"direct_conv_forward: b has shape \(3,\); expected \(4,\)"),
    (lambda: dk.backward_data(np.zeros((2, 4, 5, 6), np.float32),
                              np.zeros((4, 3, 3, 2), np.float32), _g(), (2, 3, 5, 6)), ValueError,
     r"direct_conv_backward_data: gy has shape \(2, 4, 5, 6\); expected \(2, 4, 5, 5\)"),
    (lambda: dk.backward_data(np.zeros((2, 4, 5, 5), np.float32),
                              np.zeros((4, 3, 3, 2), np.float32), _g(), (2, 2, 5, 6)), ValueError,
     r"direct_conv_backward_data: x_shape \(2, 2, 5, 6\) must be \(2, 3, 5, 6\)"),
    (lambda: dk.backward_weight(np.zeros((2, 3, 5, 6), np.float32),
                                np.zeros((1, 4, 5, 6), np.float32), _g()), ValueError,
     r"direct_conv_backward_weight: gy has shape \(1, 4, 5, 6\); expected \(2, 4, 5, 5\)"),
])
def test_kernel_module_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_entry_points_refuse_inconsistent_arguments():
    """nnlite._C is importable: its entry points check every argument."""
    from nnlite import _C
    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    b = np.zeros(3, np.float32)
    y = np.zeros((1, 3, 4, 4), np.float32)
    geometry = (4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4)
    _C.direct_conv_forward_f32(x, w, b, y, 1, 2, 3, *geometry)
    with pytest.raises(ValueError, match=r"direct_conv_forward: y has shape \(1, 3, 4, 4\) "
                                         r"\(48 elements\); expected 96 elements"):
        _C.direct_conv_forward_f32(x, w, b, y, 1, 2, 3, *geometry[:-2], 4, 8)
    with pytest.raises(ValueError, match=r"direct_conv_forward: b has shape \(2,\) \(2 elements\); "
                                         r"expected 3 elements, out_channels"):
        _C.direct_conv_forward_f32(x, w, b[:2].copy(), y, 1, 2, 3, *geometry)
    with pytest.raises(ValueError, match=r"direct_conv_forward: pad_top = -1; expected"):
        _C.direct_conv_forward_f32(x, w, b, y, 1, 2, 3, 4, 4, 3, 3, 1, 1, -1, 1, 1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"direct_conv_forward: stride_w = 0; expected"):
        _C.direct_conv_forward_f32(x, w, b, y, 1, 2, 3, 4, 4, 3, 3, 1, 0, 1, 1, 1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"overflows 64 bits"):
        _C.direct_conv_forward_f32(x, w, b, y, 2**62, 2, 3, *geometry)
    with pytest.raises(ValueError, match=r"direct_conv_forward: the zero-extended plane"):
        _C.direct_conv_forward_f32(x, w, b, y, 1, 2, 3, 4, 4, 3, 3, 1, 1, 1, 1, 2**28, 1, 4, 4)
    with pytest.raises(ValueError, match=r"direct_conv_forward: y shares memory with x"):
        _C.direct_conv_forward_f32(y.reshape(-1)[:32].reshape(1, 2, 4, 4), w, b, y, 1, 2, 3,
                                   *geometry)
    read_only = np.zeros((1, 3, 4, 4), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"direct_conv_forward: y is read-only"):
        _C.direct_conv_forward_f32(x, w, b, read_only, 1, 2, 3, *geometry)
    with pytest.raises(ValueError, match=r"direct_conv_backward_data: gx has shape"):
        _C.direct_conv_backward_data_f32(y, w, np.zeros((1, 2, 4, 3), np.float32), 1, 2, 3,
                                         *geometry)
    with pytest.raises(ValueError, match=r"direct_conv_backward_weight: gw has shape"):
        _C.direct_conv_backward_weight_f64(x.astype(np.float64), y.astype(np.float64),
                                           np.zeros((3, 2, 3, 2)), 1, 2, 3, *geometry)
    with pytest.raises(TypeError):
        _C.direct_conv_backward_weight_f64(x, y, np.zeros((3, 2, 3, 3)), 1, 2, 3, *geometry)


def test_huge_padding_indexes_in_64_bits():
    """Positions are formed in 64 bits: a pad near 2**31 reads only zeros, so the
    output is the bias, and the gradients are zero."""
    from nnlite import _C
    x = np.ones((1, 1, 2, 2), np.float32)
    w = np.ones((2, 1, 2, 2), np.float32)
    b = np.array([3, 4], np.float32)
    y = np.zeros((1, 2, 1, 1), np.float32)
    geometry = (2, 2, 2, 2, 1, 1, 2**31 - 1, 2**31 - 1, 1, 1, 1, 1)
    _C.direct_conv_forward_f32(x, w, b, y, 1, 1, 2, *geometry)
    np.testing.assert_array_equal(y.ravel(), [3, 4])
    gx = np.full((1, 1, 2, 2), np.nan, np.float32)
    _C.direct_conv_backward_data_f32(np.ones_like(y), w, gx, 1, 1, 2, *geometry)
    np.testing.assert_array_equal(gx, 0)
    gw = np.full((2, 1, 2, 2), np.nan, np.float32)
    _C.direct_conv_backward_weight_f32(x, np.ones_like(y), gw, 1, 1, 2, *geometry)
    np.testing.assert_array_equal(gw, 0)


@pytest.mark.parametrize("channels, refused", [(200, False), (300, True)])
def test_python_and_host_bounds_agree(channels, refused):
    """nnlite.kernels.direct_conv.unsupported and the host entry points refuse
    the same layers (503 x 567 positions per plane: 200 channels fit the image
    bound, 300 do not); checked on an empty batch, so nothing is allocated."""
    from nnlite import _C
    g = ConvGeometry.of((500, 500), (3, 3), 1, 1, 1)
    assert (dk.unsupported(g, channels, 4) is not None) == refused
    x = np.zeros((0, channels, 500, 500), np.float32)
    w = np.zeros((4, channels, 3, 3), np.float32)
    args = (x, w, np.zeros(4, np.float32), np.zeros((0, 4, 500, 500), np.float32), 0,
            channels, 4) + g.entry_args()
    if refused:
        with pytest.raises(ValueError, match=r"direct_conv_forward: the zero-extended planes "
                                             r"of an image"):
            _C.direct_conv_forward_f32(*args)
    else:
        _C.direct_conv_forward_f32(*args)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_a_worker_that_cannot_allocate_raises_memory_error_not_abort():
    # Each OpenMP worker allocates its zero-extended planes; an exception that
    # left the parallel region would terminate the process (it did, before
    # checks.h's for_each_plane kept it and rethrew it after the region).
    script = textwrap.dedent("""
        import resource
        import numpy as np
        import nnlite as nl
        from nnlite.kernels import direct_conv
        from nnlite.kernels.shapes import ConvGeometry
        nl.set_num_threads(2)
        x = np.ones((2, 64, 512, 512), np.float32)
        w, b = np.ones((1, 64, 3, 3), np.float32), np.zeros(1, np.float32)
        small = ConvGeometry.of((8, 8), (3, 3), padding=(1, 1, 1, 1))
        direct_conv.forward(np.ascontiguousarray(x[:, :, :8, :8]), w, b, small)
        status = open("/proc/self/status").read()
        size = int(status.split("VmSize:")[1].split()[0]) * 1024
        # room for the output, not for a worker's 70 MB of extended planes
        resource.setrlimit(resource.RLIMIT_AS, (size + 40 * 2**20, resource.RLIM_INFINITY))
        try:
            direct_conv.forward(x, w, b, ConvGeometry.of((512, 512), (3, 3),
                                                         padding=(1, 1, 1, 1)))
            print("no error")
        except MemoryError:
            print("MemoryError")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "MemoryError"
