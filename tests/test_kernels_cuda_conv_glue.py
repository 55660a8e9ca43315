"""The conv and pool families' GPU path (nnlite/kernels/conv.py, pool.py through
nnlite/kernels/nvrtc.py, and the device code of csrc/cuda/conv.cu, pool.cu)
without a GPU.

tests/cuda_emulation.py compiles the source NVRTC would get with g++ and runs
every (block, thread) of each launch on the CPU, binding the Python launch
arguments to the parameters of the .cu entry point (wrong order, wrong type or
dtype, or inconsistent geometry fail); see its docstring for what that does
and does not prove. The grid-stride loops cover the whole problem from any
grid, so each launch is emulated on a small grid on which every loop wraps.
The real GPU run is in the device-parametrised tests."""
import numpy as np
import pytest

from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.kernels import conv as conv_kernels
from nnlite.kernels import nvrtc
from nnlite.kernels import pool as pool_kernels
from nnlite.kernels.shapes import ConvGeometry, PoolGeometry
from nnlite.reference import conv as conv_ref
from nnlite.reference import pool as pool_ref

EMULATED_GRID = (3, 5)  # blocks, threads: small, so every grid-stride loop wraps


def conv_pool_launch(launch):
    """The launch rules of a grid-stride kernel; returns the grid to emulate."""
    assert launch.block == (nvrtc.GRID_THREADS,)
    assert 1 <= launch.grid[0] <= nvrtc.MAX_GRID_BLOCKS and launch.shared_mem == 0
    check_geometry(launch.name, launch.bound)
    return EMULATED_GRID


def check_geometry(name, a):
    """The scalar arguments agree with the arrays they describe."""
    op = name.rsplit("_", 1)[0]
    if op in ("im2col", "col2im"):
        assert a["x"].shape == (a["images"], a["channels"], a["height"], a["width"])
        rows = a["channels"] * a["kernel_h"] * a["kernel_w"]
        assert a["cols"].shape == (rows, a["images"] * a["out_h"] * a["out_w"])
        return
    image = a["x"] if "forward" in op else a["gx"]
    pooled = a["y"] if "forward" in op else a["gy"]
    assert image.shape[0] * image.shape[1] == a["planes"]
    assert image.shape[2:] == (a["height"], a["width"])
    assert pooled.shape[2:] == (a["out_h"], a["out_w"])
    if "argmax" in a:
        assert a["argmax"].shape == pooled.shape and a["argmax"].dtype == np.int32


@pytest.fixture(params=["narrow", "wide"])
def fake_cupy(request, monkeypatch):
    """The emulated GPU, running the kernels' 32-bit index path (every array of
    these tests fits it) or, with NNL_NARROW_INDEX_LIMIT defined as 0, the
    64-bit one that arrays past 2^31 elements take."""
    if request.param == "wide":
        load = nvrtc.load_source
        monkeypatch.setattr(nvrtc, "load_source", lambda relpath, root=None:
                            "#define NNL_NARROW_INDEX_LIMIT 0\n" + load(relpath, root))
    return install_fake_cupy(monkeypatch, conv_pool_launch)


def test_entry_parameters_are_parsed():
    pool, conv = family_source("pool"), family_source("conv")
    assert entry_parameters(pool, "avgpool_forward_f32")[-1] == ("int", "count_include_pad")
    assert entry_parameters(conv, "col2im_f64")[:3] == [
        ("const double*", "cols"), ("double*", "x"), ("long long", "images")]


CONV_GEOMETRIES = [  # (x shape, kernel, stride, (top, bottom, left, right), dilation)
    ((2, 3, 7, 6), (3, 2), (2, 1), (1, 0, 2, 1), (1, 2)),
    ((1, 2, 1, 1), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((2, 1, 9, 11), (2, 2), (3, 4), (0, 0, 0, 0), (1, 1)),
    ((1, 2, 6, 8), (4, 4), (1, 1), (1, 2, 1, 2), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, kernel, stride, padding, dilation", CONV_GEOMETRIES)
def test_conv_launches_match_the_reference(fake_cupy, dtype, x_shape, kernel, stride, padding,
                                           dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    g = ConvGeometry.of(x.shape[2:], kernel, stride, padding, dilation)
    cols = conv_kernels.im2col(x, g)
    np.testing.assert_array_equal(cols, conv_ref.im2col(x, kernel, stride, padding, dilation))
    grad_cols = rng.standard_normal(cols.shape).astype(dtype)
    back = conv_kernels.col2im(grad_cols, x.shape, g)
    np.testing.assert_allclose(back, conv_ref.col2im(grad_cols, x.shape, kernel, stride,
                                                     padding, dilation), rtol=1e-5, atol=1e-6)
    # The host twin gathers the same terms in the same order: the same bits.
    with host_build():
        host_back = conv_kernels.col2im(grad_cols, x.shape, g)
    assert back.tobytes() == host_back.tobytes()


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_pool_launches_match_the_reference(fake_cupy, count_include_pad):
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 3 * 7 * 9).reshape(2, 3, 7, 9).astype(np.float64)
    window = dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    g = PoolGeometry.of(x.shape[2:], **window)
    y, argmax = pool_kernels.maxpool_forward(x, g)
    y_ref, argmax_ref = pool_ref.maxpool_forward(x, **window)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    gy = rng.standard_normal(y.shape)
    gx = pool_kernels.maxpool_backward(gy, argmax, g)
    np.testing.assert_allclose(gx, pool_ref.maxpool_backward(gy, argmax_ref, x.shape, **window))
    with host_build():
        assert gx.tobytes() == pool_kernels.maxpool_backward(gy, argmax, g).tobytes()
    avg = pool_kernels.avgpool_forward(x, g, count_include_pad)
    np.testing.assert_allclose(avg, pool_ref.avgpool_forward(
        x, count_include_pad=count_include_pad, **window))
    np.testing.assert_allclose(
        pool_kernels.avgpool_backward(gy, g, count_include_pad),
        pool_ref.avgpool_backward(gy, x.shape, count_include_pad=count_include_pad, **window))


def test_launch_grid_is_capped():
    from nnlite.kernels.launch import Grid
    assert nvrtc.launch_shape(Grid(10**12), 4) == (65535, 256, 0)
    assert nvrtc.launch_shape(Grid(1), 8) == (1, 256, 0)
    assert nvrtc.GRID_THREADS <= nvrtc.MAX_THREADS_PER_BLOCK
