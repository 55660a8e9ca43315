"""One launch for every kernel: `launch(name, dtype, work, args)`.

`args` are the arguments of the entry point `name`_<f32|f64>, in the order of
its CUDA `extern "C"` signature: arrays, then Python ints. The arrays' device
picks the backend:

* host: ``nnlite._C.<name>_<f32|f64>(*args)``, the pybind11 build of the same
  .cuh math, whose entry points take exactly the CUDA arguments and check them
  all (a test holds the two signatures against each other);
* cuda: ``nnlite.kernels.nvrtc`` compiles csrc/cuda/<family>.cu at first use
  and launches it on the grid that `work` describes.

`work` says how the GPU spreads the work; the host build ignores it:
``Grid(total)`` is one thread per item of a grid-stride loop, ``Blocks(count,
width, shared_per_thread)`` one block per item with threads covering `width`.
"""
import importlib
import os
from collections import namedtuple

import numpy as np

from nnlite import device

Grid = namedtuple("Grid", "total")
Blocks = namedtuple("Blocks", "count width shared_per_thread")
Blocks.__new__.__defaults__ = (0,)

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def dtype_suffix(dtype):
    """float32 -> 'f32', float64 -> 'f64': the suffix of the entry points."""
    return _SUFFIX[np.dtype(dtype)]


def on_device(array):
    """True when `array` lives on the GPU (the CUDA emulator of the tests
    replaces this to run the CUDA path on NumPy arrays)."""
    return device.is_device_array(array)


def array_module(array):
    """numpy for host arrays, cupy (initialised, under the memory budget) for GPU ones."""
    if on_device(array):
        from nnlite import cuda
        return cuda.ensure_initialized()
    return np


def launch(name, dtype, work, args):
    """Run entry point `name` for `dtype` on the device of the first array in `args`."""
    first_array = next(a for a in args if hasattr(a, "dtype"))
    if on_device(first_array):
        from nnlite.kernels import nvrtc
        nvrtc.launch(name, dtype, work, args)
    else:
        getattr(host_library(), f"{name}_{dtype_suffix(dtype)}")(*args)


_host = None


def host_library():
    """nnlite._C, loaded once with OpenMP workers that sleep between loops.

    The host kernels are short OpenMP loops between BLAS calls; libgomp's
    default keeps idle workers spinning after each loop, holding the cores
    OpenBLAS's threads need next (conv2d forward+backward of the CRNN conv3
    shape took 110-320 ms instead of about 92 ms on 2 shared cores). libgomp
    reads OMP_WAIT_POLICY once, when it loads, so the variable is set only
    around the first import and then removed: libraries loaded later (PyTorch's
    OpenMP runtime) see the environment as the user left it, and a user's own
    setting always wins.
    """
    global _host
    if _host is None:
        user_set = "OMP_WAIT_POLICY" in os.environ
        if not user_set:
            os.environ["OMP_WAIT_POLICY"] = "passive"
        try:
            _host = importlib.import_module("nnlite._C")
        except ImportError as exc:
            raise ImportError(f"nnlite.kernels: the compiled host kernels nnlite._C are "
                              f"missing or failed to load ({exc}); rebuild them by "
                              f"reinstalling from the repository root with "
                              f"`pip install -e .`") from exc
        finally:
            if not user_set:
                del os.environ["OMP_WAIT_POLICY"]
    return _host
