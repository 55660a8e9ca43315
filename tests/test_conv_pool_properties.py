"""Property-based tests of the one shape helper and of the conv / pool kernels
over random (H, W, kernel, stride, padding, dilation, ceil_mode)."""
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnlite as nl
import nnlite.functional as F
from nnlite.kernels import conv as conv_kernels
from nnlite.kernels import pool as pool_kernels
from nnlite.kernels.shapes import ConvGeometry, PoolGeometry
from nnlite.kernels.shapes import output_size, same_padding
from nnlite.reference import conv as conv_ref
from nnlite.reference import pool as pool_ref

SETTINGS = settings(max_examples=50, deadline=None)


def brute_force_windows(size, kernel, stride, pad_before, pad_after, dilation, ceil_mode):
    """Count window starts by walking the padded axis, with no formula:
    floor mode keeps windows that end inside the padded input; ceil mode also
    keeps a partial window that overhangs the end, as long as it starts inside
    the input or its leading padding (never in the trailing padding).

    Valid while the trailing padding is shorter than one window, which holds
    for every pool (padding <= kernel / 2) and every conv ("same" pads at most
    extent - 1); beyond that PyTorch's formula, ours, drops only the last window.
    """
    extent = dilation * (kernel - 1) + 1
    count = 0
    start = 0  # in padded coordinates
    while True:
        fits = start + extent <= size + pad_before + pad_after
        overhangs = ceil_mode and start < size + pad_before and \
            start + extent > size + pad_before + pad_after and \
            start - stride + extent < size + pad_before + pad_after
        if not (fits or overhangs):
            break
        count += 1
        start += stride
    return count


@SETTINGS
@given(size=st.integers(1, 40), kernel=st.integers(1, 9), stride=st.integers(1, 6),
       pad_before=st.integers(0, 5), pad_after=st.integers(0, 5), dilation=st.integers(1, 3),
       ceil_mode=st.booleans())
def test_output_size_matches_brute_force_enumeration(size, kernel, stride, pad_before,
                                                     pad_after, dilation, ceil_mode):
    extent = dilation * (kernel - 1) + 1
    assume(extent <= size + pad_before + pad_after and pad_after < extent)
    assert output_size(size, kernel, stride, pad_before, pad_after, dilation, ceil_mode) == \
        brute_force_windows(size, kernel, stride, pad_before, pad_after, dilation, ceil_mode)


@SETTINGS
@given(size=st.integers(1, 40), kernel=st.integers(1, 11), dilation=st.integers(1, 3))
def test_same_padding_keeps_the_size(size, kernel, dilation):
    before, after = same_padding(kernel, dilation)
    assert after - before in (0, 1)  # the odd one goes after (bottom / right)
    assert output_size(size, kernel, 1, before, after, dilation) == size


geometries = st.fixed_dictionaries(dict(
    n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
    kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
    dh=st.integers(1, 2), dw=st.integers(1, 2), pads=st.tuples(*[st.integers(0, 3)] * 4),
    seed=st.integers(0, 2**16)))


@SETTINGS
@given(g=geometries)
def test_conv_kernels_and_shapes_match_reference(g):
    pads = g["pads"]
    assume(g["dh"] * (g["kh"] - 1) + 1 <= g["h"] + pads[0] + pads[1])
    assume(g["dw"] * (g["kw"] - 1) + 1 <= g["w"] + pads[2] + pads[3])
    rng = np.random.default_rng(g["seed"])
    x = rng.standard_normal((g["n"], g["c"], g["h"], g["w"]))
    w = rng.standard_normal((2, g["c"], g["kh"], g["kw"]))
    stride, dilation = (g["sh"], g["sw"]), (g["dh"], g["dw"])
    y = F.conv2d(nl.tensor(x), nl.tensor(w), None, stride, pads, dilation)
    out_h = output_size(g["h"], g["kh"], g["sh"], pads[0], pads[1], g["dh"])
    out_w = output_size(g["w"], g["kw"], g["sw"], pads[2], pads[3], g["dw"])
    assert y.shape == (g["n"], 2, out_h, out_w)
    np.testing.assert_allclose(y.numpy(), conv_ref.conv2d_forward(x, w, None, stride, pads,
                                                                  dilation), rtol=1e-11,
                               atol=1e-11)
    cols = rng.standard_normal((g["c"] * g["kh"] * g["kw"], g["n"] * out_h * out_w))
    geometry = dict(kernel_size=(g["kh"], g["kw"]), stride=stride, padding=pads,
                    dilation=dilation)
    g_conv = ConvGeometry.of(x.shape[2:], **geometry)
    np.testing.assert_allclose(conv_kernels.col2im(cols, x.shape, g_conv),
                               conv_ref.col2im(cols, x.shape, **geometry), rtol=1e-12,
                               atol=1e-12)


@SETTINGS
@given(g=geometries, ceil_mode=st.booleans(), count_include_pad=st.booleans())
def test_pool_kernels_and_shapes_match_reference(g, ceil_mode, count_include_pad):
    kernel, stride = (g["kh"], g["kw"]), (g["sh"], g["sw"])
    padding = (min(g["pads"][0], g["kh"] // 2), min(g["pads"][2], g["kw"] // 2))
    # Ceil mode also takes a kernel larger than the padded input, when a window
    # starts inside it (PyTorch's rule); floor mode needs the whole window.
    try:
        PoolGeometry.of(shape_hw := (g["h"], g["w"]), kernel, stride, padding, ceil_mode)
    except ValueError:
        assume(False)
    rng = np.random.default_rng(g["seed"])
    shape = (g["n"], g["c"], g["h"], g["w"])
    x = rng.permutation(np.prod(shape)).reshape(shape) / 7.0  # no ties
    window = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    out = tuple(output_size(shape[2 + d], kernel[d], stride[d], padding[d], padding[d],
                            ceil_mode=ceil_mode) for d in range(2))
    pg = PoolGeometry.of(shape_hw, **window)
    y, argmax = pool_kernels.maxpool_forward(x, pg)
    y_ref, argmax_ref = pool_ref.maxpool_forward(x, **window)
    assert y.shape == shape[:2] + out
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(pool_kernels.maxpool_backward(gy, argmax, pg),
                               pool_ref.maxpool_backward(gy, argmax_ref, shape, **window),
                               rtol=1e-12, atol=1e-12)
    avg = pool_kernels.avgpool_forward(x, pg, count_include_pad)
    assert avg.shape == shape[:2] + out
    np.testing.assert_allclose(avg, pool_ref.avgpool_forward(
        x, count_include_pad=count_include_pad, **window), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        pool_kernels.avgpool_backward(gy, pg, count_include_pad),
        pool_ref.avgpool_backward(gy, shape, count_include_pad=count_include_pad, **window),
        rtol=1e-12, atol=1e-12)
