"""The direct_conv family's GPU path (nnlite/kernels/direct_conv.py through
nnlite/kernels/nvrtc.py, and the device code of csrc/cuda/direct_conv.cu)
without a GPU.

tests/cuda_emulation.py compiles the source NVRTC would get with g++ and runs
every (block, thread) of each launch on the CPU, binding the Python launch
arguments to the parameters of the .cu entry point; see its docstring for what
that does and does not prove. Forward and backward-data are grid-stride loops,
emulated on a small grid on which they wrap, through both index paths (32-bit,
and 64-bit with NNL_NARROW_INDEX_LIMIT defined as 0); they add the same
products in the same order as the host build, so the two agree bit for bit.
The weight gradient runs one block per element and a block-wide tree; it is
emulated with fewer blocks than elements (the blocks' grid-stride loop wraps)
and a few threads, and compared with the reference (its tree adds in another
order than the host's lanes)."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.kernels import direct_conv as dk
from nnlite.kernels import nvrtc
from nnlite.kernels.shapes import ConvGeometry
from nnlite.reference import conv as conv_ref

EMULATED_GRID = (3, 5)  # blocks, threads: small, so every grid-stride loop wraps
EMULATED_WEIGHT_BLOCKS = (2, 4)  # blocks, threads (a power of two, as block_reduce needs)


def direct_launch(launch):
    """The launch rules of each kernel and the geometry of its arguments."""
    a = launch.bound
    op = launch.name.rsplit("_", 1)[0]
    x = a["x"] if "x" in a else a["gx"]
    y = a["y"] if "y" in a else a["gy"]
    assert x.shape == (a["images"], a["channels"], a["height"], a["width"])
    assert y.shape == (a["images"], a["out_channels"], a["out_h"], a["out_w"])
    w = a["w"] if "w" in a else a["gw"]
    assert w.shape == (a["out_channels"], a["channels"], a["kernel_h"], a["kernel_w"])
    if op == "direct_conv_backward_weight":
        assert launch.block == (nvrtc.block_threads(dk.WEIGHT_THREADS),)
        assert launch.grid == (min(w.size, dk.MAX_WEIGHT_BLOCKS),)
        assert launch.shared_mem == launch.block[0] * w.itemsize
        return EMULATED_WEIGHT_BLOCKS
    assert launch.block == (nvrtc.GRID_THREADS,)
    assert 1 <= launch.grid[0] <= nvrtc.MAX_GRID_BLOCKS and launch.shared_mem == 0
    return EMULATED_GRID


@pytest.fixture(params=["narrow", "wide"])
def fake_cupy(request, monkeypatch):
    """The emulated GPU, on the kernels' 32-bit index path or the 64-bit one."""
    if request.param == "wide":
        load = nvrtc.load_source
        monkeypatch.setattr(nvrtc, "load_source", lambda relpath, root=None:
                            "#define NNL_NARROW_INDEX_LIMIT 0\n" + load(relpath, root))
    return install_fake_cupy(monkeypatch, direct_launch)


def test_entry_parameters_are_parsed():
    source = family_source("direct_conv")
    assert entry_parameters(source, "direct_conv_forward_f32")[:6] == [
        ("const float*", "x"), ("const float*", "w"), ("const float*", "b"), ("float*", "y"),
        ("long long", "images"), ("int", "channels")]
    assert entry_parameters(source, "direct_conv_backward_weight_f64")[-1] == ("int", "out_w")


GEOMETRIES = [  # (x shape, out_channels, kernel, stride, (top, bottom, left, right), dilation)
    ((2, 3, 7, 6), 2, (3, 2), (2, 1), (1, 0, 2, 1), (1, 2)),
    ((1, 2, 1, 1), 3, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((2, 1, 9, 11), 2, (2, 2), (3, 4), (0, 0, 0, 0), (1, 1)),
    ((1, 2, 6, 19), 2, (4, 4), (1, 1), (1, 2, 1, 2), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, out_channels, kernel, stride, padding, dilation", GEOMETRIES)
def test_launches_match_reference_and_host(fake_cupy, dtype, x_shape, out_channels, kernel,
                                           stride, padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((out_channels, x_shape[1]) + kernel).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    g = ConvGeometry.of(x.shape[2:], kernel, stride, padding, dilation)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    y = dk.forward(x, w, b, g)
    np.testing.assert_allclose(y, conv_ref.conv2d_forward(x64, w64, b, stride, padding,
                                                          dilation), **tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx_ref, gw_ref, _ = conv_ref.conv2d_backward(x64, w64, gy.astype(np.float64), stride,
                                                 padding, dilation)
    gx = dk.backward_data(gy, w, g, x.shape)
    np.testing.assert_allclose(gx, gx_ref, **tol)
    gw = dk.backward_weight(x, gy, g)
    np.testing.assert_allclose(gw, gw_ref, **tol)
    with host_build():
        host = (dk.forward(x, w, b, g), dk.backward_data(gy, w, g, x.shape),
                dk.backward_weight(x, gy, g))
    assert y.tobytes() == host[0].tobytes()
    assert gx.tobytes() == host[1].tobytes()
    np.testing.assert_allclose(gw, host[2], **tol)


def test_weight_blocks_walk_past_the_grid(fake_cupy, monkeypatch):
    """More weight elements than blocks: the blocks' loop covers the rest."""
    monkeypatch.setattr(dk, "MAX_WEIGHT_BLOCKS", 3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 4))
    gy = rng.standard_normal((2, 3, 5, 4))
    g = ConvGeometry.of((5, 4), (3, 3), 1, 1, 1)
    gw = dk.backward_weight(x, gy, g)
    assert fake_cupy[-1].grid == (3,)
    np.testing.assert_allclose(gw, conv_ref.conv2d_backward(x, np.zeros((3, 2, 3, 3)), gy,
                                                            (1, 1), (1, 1, 1, 1), (1, 1))[1],
                               rtol=1e-12, atol=1e-12)


def test_conv2d_direct_through_the_emulated_kernels(fake_cupy):
    """The whole Function, forward and backward, every kernel launched through
    the GPU path, with a NaN in x reaching the outputs that read it."""
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 5, 6), (4, 3, 3, 2), (4,)))
    x[1, 2, 3, 3] = np.nan
    ts = [nl.tensor(a, requires_grad=True) for a in (x, w, b)]
    pad4 = (2, 0, 1, 1)
    y = F.conv2d(*ts, padding=pad4, algorithm="direct")
    expected = conv_ref.conv2d_forward(x, w, b, (1, 1), pad4, (1, 1))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    y.backward(nl.tensor(gy))
    for t, e in zip(ts, conv_ref.conv2d_backward(x, w, gy, (1, 1), pad4, (1, 1))):
        np.testing.assert_allclose(t.grad.numpy(), e, rtol=1e-10, atol=1e-10)
    assert {launch.name for launch in fake_cupy} == {
        f"direct_conv_{k}_f64" for k in ("forward", "backward_data", "backward_weight")}
