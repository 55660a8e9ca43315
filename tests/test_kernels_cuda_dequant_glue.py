"""The dequant family's GPU path (nnlite/kernels/dequant.py through nvrtc.py,
and the device code of csrc/cuda/dequant.cu) without a GPU.

tests/cuda_emulation.py compiles the source NVRTC would get with g++ and runs
each launch on the CPU, blocks and threads in both orders; see its docstring
for what that does and does not prove. dequant_int8 takes one block per
weight row whose threads stride over the columns: the launch is checked (grid
= rows, a power-of-two block covering the row up to 1024 threads, no shared
memory), then emulated with 7 threads per block so every thread owns several
columns. dequant_binary16 is a grid-stride loop: the launch is checked, then
emulated on 3 blocks of 5 threads so the loop wraps. Results are compared bit
for bit with the host build (the same csrc/nnlite/dequant.cuh functions)."""
import numpy as np
import pytest

from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.kernels import dequant
from nnlite.kernels import nvrtc

ROW_THREADS = 7
GRID = (3, 5)


def dequant_launch(launch):
    a = launch.bound
    assert launch.shared_mem == 0
    if launch.name.startswith("dequant_int8"):
        rows, cols = int(a["rows"]), int(a["cols"])
        assert a["q"].shape == (rows, cols) and a["q"].dtype == np.int8
        assert a["scale"].shape == (rows,) and a["w"].shape == (rows, cols)
        assert a["scale"].dtype == a["w"].dtype
        assert launch.grid == (rows,)  # one block per row
        threads = launch.block[0]
        assert threads & (threads - 1) == 0 and 32 <= threads <= 1024
        assert threads >= min(cols, 1024)
        return rows, ROW_THREADS
    count = int(a["count"])
    assert a["bits"].dtype == np.uint16 and a["bits"].size == a["w"].size == count
    assert launch.block == (nvrtc.GRID_THREADS,)
    assert launch.grid == (min(-(-count // nvrtc.GRID_THREADS), nvrtc.MAX_GRID_BLOCKS),)
    return GRID


@pytest.fixture
def launches(monkeypatch):
    return install_fake_cupy(monkeypatch, dequant_launch)


def test_entry_parameters_are_parsed():
    source = family_source("dequant")
    assert entry_parameters(source, "dequant_int8_f32") == [
        ("const signed char*", "q"), ("const float*", "scale"), ("float*", "w"),
        ("long long", "rows"), ("int", "cols")]
    assert entry_parameters(source, "dequant_binary16_f64") == [
        ("const unsigned short*", "bits"), ("double*", "w"), ("long long", "count")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 16), (5, 33), (2, 1500)])
def test_int8_matches_the_host_build_bit_for_bit(launches, dtype, shape):
    rng = np.random.default_rng(shape[1])
    q = rng.integers(-128, 128, size=shape).astype(np.int8)
    scale = rng.uniform(-1, 1, size=shape[0]).astype(dtype)
    scale[0] = np.nan if shape[0] > 1 else scale[0]
    w = dequant.dequant_int8(q, scale, dtype=dtype)
    with host_build():
        host = dequant.dequant_int8(q, scale, dtype=dtype)
    assert w.tobytes() == host.tobytes()
    assert [launch.name for launch in launches] == [f"dequant_int8_{'f32' if dtype == np.float32 else 'f64'}"]
    assert launches[0].block == (nvrtc.block_threads(shape[1]),)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_binary16_pattern_matches_the_host_build(launches, dtype):
    bits = np.arange(2**16, dtype=np.uint16)
    w = dequant.dequant_binary16(bits, dtype=dtype)
    with host_build():
        host = dequant.dequant_binary16(bits, dtype=dtype)
    assert w.tobytes() == host.tobytes()
    assert launches[0].grid == (256,)  # 65536 / 256 threads


def test_a_wrong_workspace_is_refused_before_any_launch(launches):
    q = np.zeros((3, 4), np.int8)
    with pytest.raises(ValueError, match=r"dequant_int8: w has shape \(4, 3\)"):
        dequant.dequant_int8(q, np.ones(3, np.float32), w=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dequant_binary16: w has shape \(5,\)"):
        dequant.dequant_binary16(np.zeros(4, np.float16), w=np.empty(5, np.float32))
    assert launches == []


def test_empty_weights_launch_nothing(launches):
    assert dequant.dequant_int8(np.zeros((0, 4), np.int8), np.ones(0, np.float32)).shape == \
        (0, 4)
    assert dequant.dequant_binary16(np.zeros(0, np.float16)).shape == (0,)
    assert launches == []
