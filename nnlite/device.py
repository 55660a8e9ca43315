"""Where arrays live: "cpu" (NumPy) or "cuda" (CuPy).

The only module that decides which array library an array belongs to. CuPy is
imported lazily, so a CPU-only install never needs it.
"""
import sys

import numpy as np

DEVICES = ("cpu", "cuda")


def canonical(device):
    """'cpu', 'cuda' or 'cuda:0' (one GPU is supported) -> 'cpu' | 'cuda'."""
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "cuda:0", "gpu"):
        return "cuda"
    raise ValueError(f"device: unknown device {device!r}; expected 'cpu' or 'cuda' "
                     f"('cuda:0')")


def is_device_array(x):
    """True for a CuPy array, without importing CuPy when it was never loaded."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def device_of(array):
    return "cuda" if is_device_array(array) else "cpu"


def _cupy():
    from nnlite import cuda
    if not cuda.is_available():
        raise RuntimeError("device 'cuda' requested, but no GPU is usable here: CuPy is not "
                           "installed (pip install -e '.[cuda12]' or '.[cuda13]') or no "
                           "NVIDIA device was found; see `nnlite info`")
    cuda.ensure_initialized()
    import cupy
    return cupy


def xp(device):
    """The array module (numpy or cupy) for a device name."""
    return np if canonical(device) == "cpu" else _cupy()


def xp_of(array):
    """The array module an array belongs to."""
    if is_device_array(array):
        return sys.modules["cupy"]
    return np



def move(array, device):
    """Copy `array` to `device` (no copy when it is already there)."""
    device = canonical(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return _cupy().asarray(array)


def to_numpy(array):
    return array.get() if is_device_array(array) else np.asarray(array)
