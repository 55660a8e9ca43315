"""The conv kernel family (im2col / col2im) and F.conv2d against the NumPy
reference (direct loops), gradcheck, workspace chunking, determinism and bad
input, on every device present."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite.kernels import conv as conv_kernels
from nnlite.kernels.shapes import ConvGeometry
from nnlite.device import to_numpy
from nnlite.functional.conv import conv_padding
from nnlite.reference import conv as ref

from kernel_testing import each_case, each_dtype, tolerance


# (x shape, weight shape, stride, padding, dilation): the edge cases.
CASES = {
    "1x1 image": ((2, 3, 1, 1), (4, 3, 1, 1), 1, 0, 1),
    "1x1 image 3x3 same": ((2, 3, 1, 1), (4, 3, 3, 3), 1, "same", 1),
    "non-square kernel": ((2, 2, 7, 9), (3, 2, 2, 5), 1, 0, 1),
    "stride > kernel": ((1, 2, 9, 11), (3, 2, 2, 2), (3, 4), 0, 1),
    "dilation": ((2, 2, 9, 10), (3, 2, 3, 2), 1, (2, 1), (2, 3)),
    "even 2x2 same": ((2, 3, 5, 6), (4, 3, 2, 2), 1, "same", 1),
    "even 4x4 same": ((1, 2, 7, 8), (3, 2, 4, 4), 1, "same", 1),
    "even 10x10 same": ((1, 1, 12, 11), (2, 1, 10, 10), 1, "same", 1),
    "6x6 same dilated": ((1, 2, 13, 14), (2, 2, 6, 6), 1, "same", (2, 1)),
    "asymmetric padding": ((2, 2, 6, 5), (3, 2, 3, 3), (2, 1), (0, 2, 1, 0), 1),
    "padding wider than input": ((1, 1, 2, 2), (2, 1, 3, 3), 2, 3, 1),
    "strided 5x5 valid": ((2, 3, 11, 12), (4, 3, 5, 5), 2, "valid", 1),
}


def pairs(stride, dilation):
    as_pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    return as_pair(stride), as_pair(dilation)


def make_case(name, dtype, seed=0):
    x_shape, w_shape, stride, padding, dilation = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    stride, dilation = pairs(stride, dilation)
    pad4 = conv_padding(padding, w_shape[2:], stride, dilation)
    return x, w, b, stride, padding, pad4, dilation


@each_dtype
@each_case(CASES)
def test_im2col_col2im_match_reference(xp, name, dtype):
    x, w, _, stride, _, pad4, dilation = make_case(name, dtype)
    g = ConvGeometry.of(x.shape[2:], w.shape[2:], stride, pad4, dilation)
    cols = conv_kernels.im2col(xp.asarray(x), g)
    expected = ref.im2col(x, w.shape[2:], stride, pad4, dilation)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(to_numpy(cols), expected)  # a copy: exact
    grad_cols = np.random.default_rng(1).standard_normal(expected.shape).astype(dtype)
    back = conv_kernels.col2im(xp.asarray(grad_cols), x.shape, g)
    np.testing.assert_allclose(to_numpy(back), ref.col2im(grad_cols, x.shape, w.shape[2:],
                                                          stride, pad4, dilation),
                               **tolerance(dtype, accumulates=True))


@each_dtype
@each_case(CASES)
def test_conv2d_forward_and_gradients_match_reference(device, name, dtype):
    x, w, b, stride, padding, pad4, dilation = make_case(name, dtype)
    xt = nl.tensor(x, requires_grad=True, device=device)
    wt = nl.tensor(w, requires_grad=True, device=device)
    bt = nl.tensor(b, requires_grad=True, device=device)
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation)
    expected = ref.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                  b.astype(np.float64), stride, pad4, dilation)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), expected, **tolerance(dtype, accumulates=True))
    gy = np.random.default_rng(2).standard_normal(expected.shape).astype(dtype)
    y.backward(nl.tensor(gy, device=device))
    gx, gw, gb = ref.conv2d_backward(x.astype(np.float64), w.astype(np.float64),
                                     gy.astype(np.float64), stride, pad4, dilation)
    np.testing.assert_allclose(xt.grad.numpy(), gx, **tolerance(dtype, accumulates=True))
    np.testing.assert_allclose(wt.grad.numpy(), gw, **tolerance(dtype, accumulates=True))
    np.testing.assert_allclose(bt.grad.numpy(), gb, **tolerance(dtype, accumulates=True))


def test_col2im_is_the_adjoint_of_im2col(xp):
    """<im2col(x), c> == <x, col2im(c)>, the defining property of the backward."""
    x, w, _, stride, _, pad4, dilation = make_case("dilation", np.float64, seed=3)
    g = ConvGeometry.of(x.shape[2:], w.shape[2:], stride, pad4, dilation)
    cols = to_numpy(conv_kernels.im2col(xp.asarray(x), g))
    c = np.random.default_rng(4).standard_normal(cols.shape)
    back = to_numpy(conv_kernels.col2im(xp.asarray(c), x.shape, g))
    assert np.isclose((cols * c).sum(), (x * back).sum(), rtol=1e-12)


@pytest.mark.parametrize("name", ["non-square kernel", "dilation", "even 2x2 same",
                                  "asymmetric padding", "stride > kernel"])
def test_conv2d_gradcheck_float64(device, name):
    x, w, b, stride, padding, _, dilation = make_case(name, np.float64, seed=5)
    inputs = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
    assert nl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), inputs)


def test_conv2d_without_bias_and_partial_gradients(device):
    x, w, _, stride, padding, pad4, dilation = make_case("even 4x4 same", np.float64)
    wt = nl.tensor(w, requires_grad=True, device=device)
    y = F.conv2d(nl.tensor(x, device=device), wt, padding=padding)
    y.sum().backward()
    _, gw, _ = ref.conv2d_backward(x, w, np.ones(y.shape), stride, pad4, dilation)
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=1e-11, atol=1e-11)


def test_workspace_chunks_the_batch_and_a_single_large_image_still_runs(monkeypatch):
    x, w, b, stride, padding, pad4, dilation = make_case("strided 5x5 valid", np.float64)
    x = np.concatenate([x] * 3)  # 6 images
    seen = []
    real_im2col = conv_kernels.im2col

    def recording_im2col(chunk, g, out=None):
        cols = real_im2col(chunk, g, out=out)
        seen.append(cols.nbytes)
        return cols

    monkeypatch.setattr(conv_kernels, "im2col", recording_im2col)
    per_image = 3 * 5 * 5 * 4 * 4 * 8  # C*kh*kw * out_h*out_w * float64
    expected = ref.conv2d_forward(x, w, b, stride, pad4, dilation)
    for workspace, buffers in ((2 * per_image, [2 * per_image] * 3),
                               (per_image // 3, [per_image] * 6),  # chunk of one
                               (1 << 30, [6 * per_image])):
        old = F.set_conv_workspace(workspace)
        try:
            assert F.get_conv_workspace() == workspace
            seen.clear()
            y = F.conv2d(nl.tensor(x), nl.tensor(w), nl.tensor(b), stride, padding, dilation)
        finally:
            F.set_conv_workspace(old)
        assert seen == buffers
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-11, atol=1e-11)
    assert F.get_conv_workspace() == 64 * 2**20


def test_kept_buffers_are_reused_bounded_and_released():
    # The column and product buffers outlive a call (new memory is zero-filled
    # by the kernel page by page), but never beyond the workspace size.
    from nnlite.functional import conv as conv_module
    x, w, b, stride, padding, pad4, dilation = make_case("strided 5x5 valid", np.float64)
    conv_module.release_conv_buffers()
    args = (nl.tensor(x), nl.tensor(w), nl.tensor(b), stride, padding, dilation)
    first = F.conv2d(*args).numpy()
    kept = {slot: buf.__array_interface__["data"][0]
            for slot, buf in conv_module._buffers.slots.items()}
    assert set(kept) == {"columns", "products"}
    xg = nl.tensor(x, requires_grad=True)
    F.conv2d(xg, *args[1:]).sum().backward()
    again = F.conv2d(*args).numpy()
    assert again.tobytes() == first.tobytes()
    assert {slot: buf.__array_interface__["data"][0]
            for slot, buf in conv_module._buffers.slots.items()} == kept
    old = F.set_conv_workspace(1024)  # smaller than one image's columns: nothing kept
    try:
        assert conv_module._buffers.slots == {}
        np.testing.assert_array_equal(F.conv2d(*args).numpy(), first)
        assert all(buf is None or buf.nbytes <= 1024
                   for buf in conv_module._buffers.slots.values())
    finally:
        F.set_conv_workspace(old)
    conv_module.release_conv_buffers()
    assert conv_module._buffers.slots == {}


def test_backward_over_chunks_matches_one_chunk():
    x, w, b, stride, padding, pad4, dilation = make_case("dilation", np.float64, seed=6)
    x = np.concatenate([x] * 4)
    grads = []
    for workspace in (1, 1 << 30):
        old = F.set_conv_workspace(workspace)
        try:
            ts = [nl.tensor(a, requires_grad=True) for a in (x, w, b)]
            F.conv2d(*ts, stride, padding, dilation).sum().backward()
        finally:
            F.set_conv_workspace(old)
        grads.append([t.grad.numpy() for t in ts])
    for chunked, whole in zip(*grads):
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


def test_two_backward_passes_are_bitwise_identical(device):
    x, w, b, stride, padding, _, dilation = make_case("even 4x4 same", np.float32, seed=7)
    x = np.concatenate([x] * 8)
    runs = []
    for _ in range(2):
        ts = [nl.tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
        y = F.conv2d(*ts, stride, padding, dilation)
        (y * y).sum().backward()
        runs.append([t.grad.numpy() for t in ts])
    for first, second in zip(*runs):
        assert first.tobytes() == second.tobytes()


def test_empty_batch():
    y = F.conv2d(nl.tensor(np.zeros((0, 2, 5, 5), np.float32), requires_grad=True),
                 nl.tensor(np.ones((3, 2, 3, 3), np.float32)), padding=1)
    assert y.shape == (0, 3, 5, 5)


def conv(x_shape=(1, 2, 5, 5), w_shape=(3, 2, 3, 3), **kw):
    return F.conv2d(nl.tensor(np.zeros(x_shape, np.float32)),
                    nl.tensor(np.zeros(w_shape, np.float32)), **kw)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: conv(w_shape=(3, 2, 7, 3)), ValueError,
     r"conv2d: kernel of size 7 .* larger than the padded input of size 5"),
    (lambda: conv(stride=0), ValueError, r"conv2d: stride must be positive, got \(0, 0\)"),
    (lambda: conv(stride=(1, -2)), ValueError, r"conv2d: stride must be positive"),
    (lambda: conv(dilation=0), ValueError, r"conv2d: dilation must be positive"),
    (lambda: conv(w_shape=(3, 4, 3, 3)), ValueError,
     r"conv2d: x has 2 channels but weight expects 4 \(x shape \(1, 2, 5, 5\), weight shape "
     r"\(3, 4, 3, 3\)\)"),
    (lambda: conv(x_shape=(2, 5, 5)), ValueError,
     r"conv2d: x must be 4-D \(N, C, H, W\), got shape \(2, 5, 5\)"),
    (lambda: conv(w_shape=(3, 2, 3)), ValueError, r"conv2d: weight must be 4-D"),
    (lambda: conv(padding="same", stride=2), ValueError,
     r"conv2d: padding='same' needs stride 1, got stride \(2, 2\)"),
    (lambda: conv(padding="full"), ValueError, r"conv2d: padding 'full' is not"),
    (lambda: conv(padding=-1), ValueError, r"conv2d: padding must be non-negative"),
    (lambda: F.set_conv_workspace(0), ValueError, r"set_conv_workspace: expected a positive"),
    (lambda: F.conv2d(nl.tensor(np.zeros((1, 2, 5, 5))), nl.tensor(np.zeros((3, 2, 3, 3),
                                                                            np.float32))),
     TypeError, r"conv2d: x is float64 and weight is float32"),
])
def test_bad_input_names_the_op_and_shapes(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_kernel_height_over_padded_input_is_named():
    with pytest.raises(ValueError, match=r"conv2d: kernel of size 3 .*padded input of size 2 "
                                         r"\(1 \+ padding 1 \+ 0\)"):
        conv(x_shape=(1, 2, 1, 5), padding=(1, 0, 1, 1))


GEOMETRY_2X2 = ConvGeometry.of((4, 4), 2)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: conv_kernels.im2col(np.zeros((2, 3, 4), np.float32), GEOMETRY_2X2), ValueError,
     r"im2col: x must be 4-D \(N, C, H, W\); got shape \(2, 3, 4\)"),
    (lambda: conv_kernels.im2col(np.zeros((1, 1, 4, 4), np.int32), GEOMETRY_2X2), TypeError,
     r"im2col: x has dtype int32"),
    (lambda: conv_kernels.im2col(np.zeros((1, 1, 5, 4), np.float32), GEOMETRY_2X2), ValueError,
     r"im2col: x has shape \(1, 1, 5, 4\); expected \(1, 1, 4, 4\) for ConvGeometry"),
    (lambda: ConvGeometry.of((4, 4), 2, padding=(1, 1, 1)), ValueError,
     r"conv2d: padding must be an int, \(ph, pw\) or \(top, bottom, left, right\)"),
    (lambda: conv_kernels.col2im(np.zeros((4, 8), np.float32), (1, 1, 4, 4), GEOMETRY_2X2),
     ValueError, r"col2im: cols has shape \(4, 8\); expected \(4, 9\) for x_shape "
                 r"\(1, 1, 4, 4\)"),
    (lambda: conv_kernels.col2im(np.zeros((1, 4, 9), np.float32), (1, 1, 4, 4), GEOMETRY_2X2),
     ValueError, r"col2im: cols must be 2-D \(C\*kh\*kw, N\*out_h\*out_w\); got shape "
                 r"\(1, 4, 9\)"),
])
def test_kernel_module_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_entry_point_refuses_inconsistent_arguments():
    """nnlite._C is importable: its entry points check every argument."""
    from nnlite import _C
    x = np.zeros((1, 1, 4, 4), np.float32)
    geometry = (1, 1, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 3, 3)  # images, channels, H, W, kh, kw ...
    _C.im2col_f32(x, np.zeros((4, 9), np.float32), *geometry)
    with pytest.raises(ValueError, match=r"im2col: cols has shape \(4, 8\) \(32 elements\); "
                                         r"expected 36 elements"):
        _C.im2col_f32(x, np.zeros((4, 8), np.float32), *geometry)
    with pytest.raises(ValueError, match=r"im2col: stride_h = 0; expected a value in "
                                         r"\[1, 2147483647\]"):
        _C.im2col_f32(x, np.zeros((4, 9), np.float32), *geometry[:6], 0, *geometry[7:])
    with pytest.raises(ValueError, match=r"im2col: x has shape"):
        _C.im2col_f32(x, np.zeros((4, 9), np.float32), 2, *geometry[1:])


# The reliability issue's cases: each ran past a buffer or overflowed an int.

def test_backward_of_a_65536_tall_kernel_does_not_overflow():
    """tap_table sized size * kernel in int and wrote past its buffer (SIGSEGV)."""
    x = nl.tensor(np.ones((1, 1, 65536, 1), np.float32), requires_grad=True)
    w = nl.tensor(np.ones((1, 1, 65536, 1), np.float32), requires_grad=True)
    y = F.conv2d(x, w)
    y.sum().backward()
    assert y.numpy().item() == 65536
    np.testing.assert_array_equal(x.grad.numpy(), 1)
    np.testing.assert_array_equal(w.grad.numpy(), 1)


def test_backward_of_a_wide_strided_kernel_over_a_long_input():
    x = nl.tensor(np.ones((1, 1, 1, 4194304), np.float32), requires_grad=True)
    w = nl.tensor(np.ones((1, 1, 1, 1025), np.float32), requires_grad=True)
    y = F.conv2d(x, w, stride=1024)
    y.sum().backward()
    expected_out = (4194304 - 1025) // 1024 + 1
    assert y.shape == (1, 1, 1, expected_out)
    covered = np.zeros(4194304, np.float32)
    for o in range(expected_out):
        covered[o * 1024:o * 1024 + 1025] += 1
    np.testing.assert_array_equal(x.grad.numpy().ravel(), covered)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_stride_and_padding_index_in_64_bits(dtype):
    """-base + stride_w - 1 overflowed int in im2col_row_segment: stride 2**30 + 1
    with padding 2**30 over [1, 2, 3] reads x[1] at output 1 (PyTorch: [0, 2, 0]
    for these values)."""
    x = np.array([1.0, 2.0, 3.0], dtype).reshape(1, 1, 1, 3)
    y = F.conv2d(nl.tensor(x), nl.tensor(np.ones((1, 1, 1, 1), dtype)),
                 stride=(1, 2**30 + 1), padding=(0, 2**30)).numpy()
    np.testing.assert_array_equal(y.ravel(), [0.0, 2.0, 0.0])
    y = F.conv2d(nl.tensor(x), nl.tensor(np.ones((1, 1, 1, 1), dtype)),
                 stride=(1, 2**30), padding=(0, 2**31 - 1)).numpy()
    # out = (3 + 2 * (2**31 - 1) - 1) // 2**30 + 1 = 5; output o reads x[o * 2**30 - (2**31 - 1)]
    np.testing.assert_array_equal(y.ravel(), [0.0, 0.0, 2.0, 0.0, 0.0])


def test_empty_output_plane_returns_at_once():
    """A raw im2col with a huge out_h and out_w = 0 has nothing to write; it
    used to loop over out_h with the GIL released, uninterruptibly."""
    from nnlite import _C
    x = np.zeros((1, 1, 4, 4), np.float32)
    _C.im2col_f32(x, np.zeros((4, 0), np.float32), 1, 1, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1,
                  2**31 - 1, 0)


def test_empty_batch_and_no_output_channels_backward():
    """N = 0 and 0 output channels give empty outputs and zero gradients, as PyTorch."""
    x = nl.tensor(np.zeros((0, 2, 5, 5), np.float32), requires_grad=True)
    w = nl.tensor(np.ones((3, 2, 3, 3), np.float32), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), 0)
    x = nl.tensor(np.ones((2, 2, 5, 5), np.float32), requires_grad=True)
    w = nl.tensor(np.ones((0, 2, 3, 3), np.float32), requires_grad=True)
    y = F.conv2d(x, w)
    assert y.shape == (2, 0, 3, 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    assert w.grad.shape == (0, 2, 3, 3)


@pytest.mark.parametrize("user_policy", [None, "active"])
def test_openmp_wait_policy_leaves_the_environment_as_the_user_set_it(user_policy):
    """nnlite.kernels loads nnlite._C with OMP_WAIT_POLICY=passive unless
    the user chose a policy, and removes the variable again afterwards."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_policy:
        env["OMP_WAIT_POLICY"] = user_policy
    code = ("import os, sys, nnlite.kernels; "
            "print('nnlite._C' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", str(user_policy)]
