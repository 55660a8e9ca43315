"""The Python side of the conv and pool GPU backend (nnlite/kernels/cuda_conv.py)
against a stand-in CuPy built on NumPy. Each fake kernel reads the parameter
list of its extern "C" entry point from csrc/cuda/<family>.cu, binds the
launch arguments to those names, checks types and geometry, and runs the host
twin: so an argument passed in the wrong order fails here, without a GPU.
The real GPU run is in the device-parametrised tests."""
import re
import types
from pathlib import Path

import numpy as np
import pytest

import nnlite.cuda
from nnlite import _C
from nnlite.kernels import cuda as cuda_kernels
from nnlite.kernels import cuda_conv
from nnlite.reference import conv as conv_ref
from nnlite.reference import pooling as pool_ref

CSRC = Path(__file__).resolve().parents[1] / "csrc"
CONV_PARAMS = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left",
               "dilation_h", "dilation_w", "out_h", "out_w")
POOL_PARAMS = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w")


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


class FakeRawModule:
    def __init__(self, code, options):
        self.family = "conv" if "im2col_grid" in code else "pool"

    def get_function(self, name):
        params = entry_parameters(self.family, name)

        def launch(grid, block, args, shared_mem=0):
            assert len(args) == len(params), f"{name}: {len(args)} arguments for {params}"
            assert block == (cuda_conv.THREADS,) and 1 <= grid[0] <= cuda_conv.MAX_BLOCKS
            bound = {}
            for (kind, pname), value in zip(params, args):
                if kind == "pointer":
                    assert isinstance(value, np.ndarray), f"{name}: {pname} is not an array"
                else:
                    assert isinstance(value, np.int32), f"{name}: {pname} is {type(value)}"
                    value = int(value)
                bound[pname] = value
            run_host_twin(name, bound)
        return launch


def run_host_twin(name, a):
    op, suffix = name.rsplit("_", 1)
    host = getattr(_C, name)
    if op in ("im2col", "col2im"):
        x = a["x"]
        assert x.shape == (a["n"], a["channels"], a["height"], a["width"])
        host(*((a["x"], a["cols"]) if op == "im2col" else (a["cols"], a["x"])),
             tuple(a[p] for p in CONV_PARAMS))
        return
    image = a["x"] if "forward" in op else a["gx"]
    pooled = a["y"] if "forward" in op else a["gy"]
    assert image.shape[0] * image.shape[1] == a["planes"]
    assert image.shape[2:] == (a["height"], a["width"])
    assert pooled.shape[2:] == (a["out_h"], a["out_w"])
    window = tuple(a[p] for p in POOL_PARAMS)
    if op == "maxpool_forward":
        host(a["x"], a["y"], a["argmax"], window)
    elif op == "maxpool_backward":
        host(a["gy"], a["argmax"], a["gx"], window)
    elif op == "avgpool_forward":
        host(a["x"], a["y"], window, a["count_include_pad"])
    else:
        host(a["gy"], a["gx"], window, a["count_include_pad"])


@pytest.fixture
def fake_cupy(monkeypatch):
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_launches_match_the_reference(fake_cupy, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    geometry = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 2))
    cols = cuda_kernels.im2col(x, **geometry)
    np.testing.assert_array_equal(cols, conv_ref.im2col(x, (3, 2), (2, 1), (1, 0, 2, 1), (1, 2)))
    back = cuda_kernels.col2im(cols, x.shape, **geometry)
    np.testing.assert_allclose(back, conv_ref.col2im(cols, x.shape, (3, 2), (2, 1),
                                                     (1, 0, 2, 1), (1, 2)), rtol=1e-5)


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
    np.testing.assert_allclose(cuda_kernels.maxpool_backward(gy, argmax, x.shape, **window),
                               pool_ref.maxpool_backward(gy, argmax_ref, x.shape, **window))
    avg = cuda_kernels.avgpool_forward(x, count_include_pad=count_include_pad, **window)
    np.testing.assert_allclose(avg, pool_ref.avgpool_forward(
        x, count_include_pad=count_include_pad, **window))
    np.testing.assert_allclose(
        cuda_kernels.avgpool_backward(gy, x.shape, count_include_pad=count_include_pad,
                                      **window),
        pool_ref.avgpool_backward(gy, x.shape, count_include_pad=count_include_pad, **window))


def test_launch_grid_is_capped():
    assert cuda_conv.MAX_BLOCKS == 65535 and cuda_conv.THREADS <= cuda_kernels.MAX_THREADS_PER_BLOCK
