"""The winograd family's GPU path (nnlite/kernels/winograd.py through
nnlite/kernels/nvrtc.py, and the device code of csrc/cuda/winograd.cu) without
a GPU.

tests/cuda_emulation.py compiles the source NVRTC would get with g++ and runs
every (block, thread) of each launch on the CPU, binding the Python launch
arguments to the parameters of the .cu entry point; see its docstring for what
that does and does not prove. Every winograd.cu kernel is a grid-stride loop
with one thread per row of a tile or of a filter, so each launch is emulated
on a small grid on which the loop wraps; both variants (tile 2 and 4). The
emulated kernels are compared with the reference and, bit for bit, with the
host build: both apply the same
1-D transforms of csrc/nnlite/winograd.cuh, output by output, in the same
order (columns, then rows), compiled by g++ without FMA contraction."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.kernels import nvrtc
from nnlite.kernels import winograd as wk
from nnlite.reference import conv as conv_ref
from nnlite.reference import winograd as ref

EMULATED_GRID = (3, 5)  # blocks, threads: small, so every grid-stride loop wraps


def winograd_launch(launch):
    """The launch rules of a grid-stride kernel and the geometry of its arguments."""
    assert launch.block == (nvrtc.GRID_THREADS,)
    assert 1 <= launch.grid[0] <= nvrtc.MAX_GRID_BLOCKS and launch.shared_mem == 0
    a = launch.bound
    op = launch.name.rsplit("_", 1)[0]
    if op in ("winograd_filter_transform", "winograd_filter_adjoint"):
        filters, tiles = (a["w"], a["u"]) if "w" in a else (a["gw"], a["du"])
        assert filters.shape == (a["out_channels"], a["in_channels"], 3, 3)
        assert tiles.shape == ((a["tile"] + 2) ** 2, a["out_channels"], a["in_channels"])
        return EMULATED_GRID
    plane, tiles = {"winograd_input_transform": ("x", "v"), "winograd_output_transform": ("y", "m"),
                    "winograd_output_adjoint": ("gy", "dm")}[op]
    size = ("height", "width") if op == "winograd_input_transform" else ("out_h", "out_w")
    assert a[plane].shape == (a["images"], a["channels"], a[size[0]], a[size[1]])
    assert a[tiles].shape == ((a["tile"] + 2) ** 2, a["channels"],
                              a["images"] * a["tiles_h"] * a["tiles_w"])
    return EMULATED_GRID


@pytest.fixture
def fake_cupy(monkeypatch):
    return install_fake_cupy(monkeypatch, winograd_launch)


def test_entry_parameters_are_parsed():
    source = family_source("winograd")
    assert entry_parameters(source, "winograd_input_transform_f32")[:4] == [
        ("const float*", "x"), ("float*", "v"), ("long long", "images"), ("int", "channels")]
    assert entry_parameters(source, "winograd_filter_adjoint_f64") == [
        ("const double*", "du"), ("double*", "gw"), ("int", "out_channels"),
        ("int", "in_channels"), ("int", "tile")]


# (x shape, out_channels, (top, bottom, left, right)): odd / even sizes, 1x1,
# padding past the filter's reach, asymmetric padding.
GEOMETRIES = [
    ((2, 3, 7, 6), 2, (1, 1, 1, 1)),
    ((1, 2, 1, 1), 3, (1, 1, 1, 1)),
    ((2, 1, 5, 8), 2, (3, 0, 0, 4)),
    ((1, 2, 6, 5), 1, (0, 0, 0, 0)),
]


@pytest.mark.parametrize("tile", wk.TILES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, out_channels, padding", GEOMETRIES)
def test_transforms_match_reference_and_host(fake_cupy, dtype, x_shape, out_channels,
                                             padding, tile):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((out_channels, x_shape[1], 3, 3)).astype(dtype)
    top, bottom, left, right = padding
    out_hw = (x_shape[2] + top + bottom - 2, x_shape[3] + left + right - 2)
    tiles = wk.output_tiles(*out_hw, tile)
    alpha2 = wk.components(tile)
    m = rng.standard_normal((alpha2, out_channels, x_shape[0] * tiles[0] * tiles[1]))
    m = m.astype(dtype)
    gy = rng.standard_normal((x_shape[0], out_channels) + out_hw).astype(dtype)
    du = rng.standard_normal((alpha2, out_channels, x_shape[1])).astype(dtype)
    calls = {
        "input": lambda: wk.input_transform(x, top, left, tiles, tile),
        "filter": lambda: wk.filter_transform(w, tile),
        "output": lambda: wk.output_transform(m, x_shape[0], out_hw, tile),
        "output adjoint": lambda: wk.output_adjoint(gy, tile),
        "filter adjoint": lambda: wk.filter_adjoint(du, tile),
    }
    expected = {
        "input": ref.input_transform(x, top, left, *tiles, tile),
        "filter": ref.filter_transform(w, tile),
        "output": ref.output_transform(m, x_shape[0], *out_hw, tile),
        "output adjoint": ref.output_adjoint(gy, tile),
        "filter adjoint": ref.filter_adjoint(du, tile),
    }
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for name, call in calls.items():
        emulated = call()
        np.testing.assert_allclose(emulated, expected[name], err_msg=name, **tol)
        with host_build():
            host = call()
        assert emulated.tobytes() == host.tobytes(), name


@pytest.mark.parametrize("tile", wk.TILES)
def test_conv2d_winograd_through_the_emulated_kernels(fake_cupy, monkeypatch, tile):
    """The whole Function, forward and backward, with every transform launched
    through the GPU path (the GEMMs stay NumPy's: the fake CuPy arrays are
    NumPy arrays)."""
    from nnlite import backends
    monkeypatch.setattr(backends, "winograd_tile", tile)
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 5, 6), (4, 3, 3, 3), (4,)))
    ts = [nl.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ts, padding=(2, 0, 1, 1), algorithm="winograd")
    pad4 = (2, 0, 1, 1)
    np.testing.assert_allclose(y.numpy(), conv_ref.conv2d_forward(x, w, b, (1, 1), pad4, (1, 1)),
                               rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    y.backward(nl.tensor(gy))
    for t, e in zip(ts, conv_ref.conv2d_backward(x, w, gy, (1, 1), pad4, (1, 1))):
        np.testing.assert_allclose(t.grad.numpy(), e, rtol=1e-10, atol=1e-10)
    launched = {launch.name for launch in fake_cupy}
    assert launched == {f"winograd_{k}_f64" for k in ("input_transform", "filter_transform",
                                                      "output_transform", "output_adjoint",
                                                      "filter_adjoint")}
    assert {launch.bound["tile"] for launch in fake_cupy} == {tile}
