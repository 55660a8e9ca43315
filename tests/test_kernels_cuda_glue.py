"""The Python side of the GPU backend (nnlite.kernels.nvrtc) against a stand-in
CuPy built on NumPy: NVRTC options, the inlined source, launch geometry and
argument order. Runs everywhere; the real GPU run is in test_kernel_softmax."""
import types
import warnings

import numpy as np
import pytest

import nnlite.cuda
from nnlite import _C
from nnlite.kernels import launch as kernel_launch
from nnlite.kernels import nvrtc
from nnlite.kernels import softmax as softmax_kernels
from nnlite.reference import softmax as ref


class FakeRawModule:
    """Compiles nothing; each 'kernel' checks its launch and runs the host twin."""
    compiled = []

    def __init__(self, code, options):
        FakeRawModule.compiled.append((code, options))
        # What CuPy says about -std=c++03; nnlite must keep it from reaching users.
        warnings.warn("CCCL requires c++11 or above")

    def get_function(self, name):
        def launch(grid, block, args, shared_mem=0):
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            rows, cols, log = args[len(arrays):]
            # Converted to the C types the .cu declares: long long rows, int cols, int log.
            assert isinstance(rows, np.int64)
            assert isinstance(cols, np.int32) and isinstance(log, np.int32)
            assert grid == (arrays[0].shape[0],) == (rows,) and cols == arrays[0].shape[1]
            assert block[0] & (block[0] - 1) == 0 and block[0] >= min(cols, 1024)
            assert shared_mem == block[0] * arrays[0].itemsize
            getattr(_C, name)(*arrays, int(rows), int(cols), int(log))
        return launch


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = types.SimpleNamespace(
        __name__="cupy", ndarray=np.ndarray, ascontiguousarray=np.ascontiguousarray,
        empty_like=np.empty_like, empty=np.empty, RawModule=FakeRawModule,
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0)))
    monkeypatch.setattr(nnlite.cuda, "ensure_initialized", lambda: fake)
    monkeypatch.setattr(nvrtc, "_modules", {})
    monkeypatch.setattr(kernel_launch, "on_device", lambda array: True)
    FakeRawModule.compiled = []
    return fake


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", [(3, 1), (992, 63), (2, 5000), (0, 7)])
def test_launches_match_the_host_twin(fake_cupy, shape, log):
    rng = np.random.default_rng(0)
    x, gy = rng.standard_normal(shape), rng.standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = softmax_kernels.softmax_forward(x, log=log)
        gx = softmax_kernels.softmax_backward(y, gy, log=log)
    np.testing.assert_allclose(y, ref.softmax_forward(x, log), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gx, ref.softmax_backward(y, gy, log), rtol=1e-12, atol=1e-13)


def test_compiles_once_with_cxx03_and_a_self_contained_source(fake_cupy):
    x = np.ones((2, 3), np.float32)
    softmax_kernels.softmax_forward(x)
    softmax_kernels.softmax_backward(x, x, log=True)
    assert len(FakeRawModule.compiled) == 1  # forward and backward share one module
    # compile_check compiles every other family once more, softmax not again.
    assert nvrtc.compile_check() == {family: None for family in nvrtc.FAMILIES}
    assert len(FakeRawModule.compiled) == len(nvrtc.FAMILIES)
    code, options = FakeRawModule.compiled[0]
    assert options == ("-std=c++03",)
    assert "#include" not in code and code.count("#define NNLITE_PORTABLE_CUH") == 1


def test_compile_check_reports_instead_of_raising(fake_cupy, monkeypatch):
    def broken(code, options):
        raise RuntimeError("NVRTC says no")
    monkeypatch.setattr(fake_cupy, "RawModule", broken)
    result = nvrtc.compile_check()
    assert "csrc/cuda/softmax.cu" in result["softmax"] and "NVRTC says no" in result["softmax"]


def test_missing_include_names_the_includer(tmp_path):
    (tmp_path / "cuda").mkdir()
    (tmp_path / "cuda" / "k.cu").write_text('#include "nnlite/absent.cuh"\n')
    with pytest.raises(FileNotFoundError, match=r"nnlite/absent.cuh \(included from cuda/k.cu\)"):
        nvrtc.load_source("cuda/k.cu", root=tmp_path)


def test_launch_converts_ints_to_the_declared_types_and_checks_their_range():
    params = nvrtc.family_signatures("softmax")["softmax_forward_f32"]
    x = np.zeros((2, 3), np.float32)
    args = nvrtc._converted("softmax_forward_f32", params, (x, x, 2, 3, 1))
    assert [type(a) for a in args[2:]] == [np.int64, np.int32, np.int32]
    with pytest.raises(ValueError, match=r"softmax_forward_f32: cols = 2147483648 does not "
                                         r"fit the kernel's int"):
        nvrtc._converted("softmax_forward_f32", params, (x, x, 2, 2**31, 1))
    with pytest.raises(TypeError, match=r"softmax_forward_f32: 4 arguments for the 5"):
        nvrtc._converted("softmax_forward_f32", params, (x, x, 2, 3))
