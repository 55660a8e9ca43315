"""The conv and pool GPU backend (nnlite/kernels/cuda_conv.py and the device
code of csrc/cuda/conv.cu, pool.cu) without a GPU.

A stand-in CuPy built on NumPy launches each kernel in an emulator: the .cu
file itself is compiled by g++ with __global__ and friends defined away and
blockIdx / threadIdx as globals, and every (block, thread) of a small grid is
run in turn. The grid-stride loops cover the whole problem from any grid, so
this checks the device index math, and the fake launch also binds the
arguments to the parameter names of the .cu entry point (wrong order, wrong
type or inconsistent geometry fail). The real GPU run is in the
device-parametrised tests."""
import ctypes
import re
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

import nnlite.cuda
from nnlite.kernels import cuda as cuda_kernels
from nnlite import kernels
from nnlite.kernels import cuda_conv
import nnlite.kernels.host  # noqa: F401
from nnlite.reference import conv as conv_ref
from nnlite.reference import pooling as pool_ref

CSRC = Path(__file__).resolve().parents[1] / "csrc"


def entry_parameters(family, name):
    """[(type, name), ...] of `name` in csrc/cuda/<family>.cu, macros expanded."""
    source = (CSRC / "cuda" / f"{family}.cu").read_text()
    macros = dict(re.findall(r"#define (NNL_\w+)\s+((?:.*\\\n)*.*)", source))
    signature = re.search(rf"\b{name}\(([^)]*)\)", source).group(1)
    for macro, body in macros.items():
        signature = signature.replace(macro, body.replace("\\\n", " "))
    params = []
    for declaration in signature.split(","):
        words = declaration.replace("*", " * ").split()
        params.append(("pointer" if "*" in words else words[-2], words[-1]))
    return params


EMULATOR = """
#define __global__
#define __device__
#define __launch_bounds__(threads)
#define __forceinline__ inline
struct emulated_dim3 { unsigned int x, y, z; };
static emulated_dim3 blockIdx, blockDim, threadIdx, gridDim;
extern "C" void emulate_thread(unsigned int block, unsigned int thread, unsigned int blocks,
                               unsigned int threads) {
  blockIdx.x = block; threadIdx.x = thread; gridDim.x = blocks; blockDim.x = threads;
}
#include "cuda/FAMILY.cu"
"""
EMULATED_GRID = (3, 5)  # blocks, threads: small, so every grid-stride loop wraps


@pytest.fixture(scope="module")
def emulated_kernels(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ not found on PATH")
    libraries = {}
    for family in ("conv", "pool"):
        directory = tmp_path_factory.mktemp(f"emulated_{family}")
        unit = directory / f"{family}_emulated.cpp"
        unit.write_text(EMULATOR.replace("FAMILY", family))
        library = directory / f"{family}.so"
        done = subprocess.run(["g++", "-std=c++03", "-O1", "-shared", "-fPIC", f"-I{CSRC}",
                               str(unit), "-o", str(library)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        libraries[family] = ctypes.CDLL(str(library))
    return libraries


class FakeRawModule:
    libraries = {}

    def __init__(self, code, options):
        self.family = "conv" if "im2col_grid" in code else "pool"

    def get_function(self, name):
        params = entry_parameters(self.family, name)
        library = FakeRawModule.libraries[self.family]

        def launch(grid, block, args, shared_mem=0):
            assert len(args) == len(params), f"{name}: {len(args)} arguments for {params}"
            assert block == (cuda_conv.THREADS,) and 1 <= grid[0] <= cuda_conv.MAX_BLOCKS
            bound, c_args = {}, []
            for (kind, pname), value in zip(params, args):
                if kind == "pointer":
                    assert isinstance(value, np.ndarray) and value.flags.c_contiguous, \
                        f"{name}: {pname} is not a C-contiguous array"
                    c_args.append(ctypes.c_void_p(value.ctypes.data))
                else:
                    assert isinstance(value, np.int32), f"{name}: {pname} is {type(value)}"
                    c_args.append(ctypes.c_int(int(value)))
                bound[pname] = value
            check_geometry(name, bound)
            blocks, threads = EMULATED_GRID
            for b in range(blocks):
                for t in range(threads):
                    library.emulate_thread(b, t, blocks, threads)
                    getattr(library, name)(*c_args)
        return launch


def check_geometry(name, a):
    """The scalar arguments agree with the arrays they describe."""
    op = name.rsplit("_", 1)[0]
    if op in ("im2col", "col2im"):
        assert a["x"].shape == (a["n"], a["channels"], a["height"], a["width"])
        rows = a["channels"] * a["kernel_h"] * a["kernel_w"]
        assert a["cols"].shape == (rows, a["n"] * a["out_h"] * a["out_w"])
        return
    image = a["x"] if "forward" in op else a["gx"]
    pooled = a["y"] if "forward" in op else a["gy"]
    assert image.shape[0] * image.shape[1] == a["planes"]
    assert image.shape[2:] == (a["height"], a["width"])
    assert pooled.shape[2:] == (a["out_h"], a["out_w"])
    if "argmax" in a:
        assert a["argmax"].shape == pooled.shape and a["argmax"].dtype == np.int32


@pytest.fixture
def fake_cupy(monkeypatch, emulated_kernels):
    FakeRawModule.libraries = emulated_kernels
    fake = types.SimpleNamespace(
        __name__="cupy", ndarray=np.ndarray, ascontiguousarray=np.ascontiguousarray,
        empty=np.empty, zeros=np.zeros, empty_like=np.empty_like, RawModule=FakeRawModule,
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0)))
    monkeypatch.setattr(nnlite.cuda, "ensure_initialized", lambda: fake)
    monkeypatch.setattr(cuda_kernels, "_functions", {})
    return fake


def test_entry_parameters_are_parsed():
    assert entry_parameters("pool", "avgpool_forward_f32")[-1] == ("int", "count_include_pad")
    assert [n for _, n in entry_parameters("conv", "col2im_f64")][:3] == ["cols", "x", "n"]


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
    geometry = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    cols = cuda_kernels.im2col(x, **geometry)
    np.testing.assert_array_equal(cols, conv_ref.im2col(x, kernel, stride, padding, dilation))
    grad_cols = rng.standard_normal(cols.shape).astype(dtype)
    back = cuda_kernels.col2im(grad_cols, x.shape, **geometry)
    np.testing.assert_allclose(back, conv_ref.col2im(grad_cols, x.shape, kernel, stride,
                                                     padding, dilation), rtol=1e-5, atol=1e-6)
    # The host twin gathers the same terms in the same order: the same bits.
    host_back = kernels.host.col2im(grad_cols, x.shape, **geometry)
    assert back.tobytes() == host_back.tobytes()


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_pool_launches_match_the_reference(fake_cupy, count_include_pad):
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 3 * 7 * 9).reshape(2, 3, 7, 9).astype(np.float64)
    window = dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    y, argmax = cuda_kernels.maxpool_forward(x, **window)
    y_ref, argmax_ref = pool_ref.maxpool_forward(x, **window)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    gy = rng.standard_normal(y.shape)
    gx = cuda_kernels.maxpool_backward(gy, argmax, x.shape, **window)
    np.testing.assert_allclose(gx, pool_ref.maxpool_backward(gy, argmax_ref, x.shape, **window))
    assert gx.tobytes() == kernels.host.maxpool_backward(gy, argmax, x.shape, **window).tobytes()
    avg = cuda_kernels.avgpool_forward(x, count_include_pad=count_include_pad, **window)
    np.testing.assert_allclose(avg, pool_ref.avgpool_forward(
        x, count_include_pad=count_include_pad, **window))
    np.testing.assert_allclose(
        cuda_kernels.avgpool_backward(gy, x.shape, count_include_pad=count_include_pad,
                                      **window),
        pool_ref.avgpool_backward(gy, x.shape, count_include_pad=count_include_pad, **window))


def test_launch_grid_is_capped():
    assert cuda_conv.MAX_BLOCKS == 65535 and cuda_conv.THREADS <= cuda_kernels.MAX_THREADS_PER_BLOCK
