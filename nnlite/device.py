"""Where arrays live: "cpu" (NumPy), "cuda" (CuPy) or "meta" (nowhere).

The only module that decides which array library an array belongs to. CuPy is
imported lazily, so a CPU-only install never needs it.

"meta" is PyTorch's meta device: a MetaArray has a shape and a dtype and no
values, so a model whose parameters are meta describes itself (``nl.summary``,
parameter counts, checkpoint shapes) without allocating them. Computing with
one raises; ``Module.to_empty(device)`` gives it real arrays.
"""
import sys

import numpy as np

DEVICES = ("cpu", "cuda", "meta")


def canonical(device):
    """'cpu', 'cuda' or 'cuda:0' (one GPU is supported), 'meta' -> 'cpu' | 'cuda' | 'meta'."""
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "cuda:0", "gpu"):
        return "cuda"
    if name == "meta":
        return "meta"
    raise ValueError(f"device: unknown device {device!r}; expected 'cpu', 'cuda' "
                     f"('cuda:0') or 'meta'")


class MetaArray:
    """The array of a tensor on the meta device: shape and dtype, no values
    (nbytes is what the real array would take)."""

    __slots__ = ("shape", "dtype")
    base = None

    def __init__(self, shape, dtype=np.float32):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    def astype(self, dtype, copy=True):
        return MetaArray(self.shape, dtype)

    def copy(self):
        return MetaArray(self.shape, self.dtype)

    def _no_values(self, *args, **kwargs):
        raise RuntimeError(f"a {self.dtype} array of shape {self.shape} on the meta device has "
                           f"no values to read or write; give the model real arrays first "
                           f"(Module.to_empty(device), nnlite.nn.materialize, or load a "
                           f"checkpoint after to_empty)")

    __array__ = __getitem__ = __iter__ = __float__ = _no_values

    def __setitem__(self, index, value):
        """Writes are dropped, as PyTorch's meta tensors drop them, so a
        builder's own initialisation (a forget-gate bias set to 1) runs on a
        meta model too. Loading a checkpoint into one is refused instead
        (nnlite.nn.state)."""

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d meta array")
        return self.shape[0]

    def __repr__(self):
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"


def is_meta(x):
    return isinstance(x, MetaArray)


def is_device_array(x):
    """True for a CuPy array, without importing CuPy when it was never loaded."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def device_of(array):
    if isinstance(array, MetaArray):
        return "meta"
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
    device = canonical(device)
    if device == "meta":
        raise RuntimeError("device 'meta' has no array module: its arrays have no values "
                           "(nnlite.device.MetaArray)")
    return np if device == "cpu" else _cupy()


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
    if device == "meta":
        return MetaArray(array.shape, array.dtype)
    if is_meta(array):
        array._no_values()
    if device == "cpu":
        return array.get()
    return _cupy().asarray(array)


def to_numpy(array):
    if is_meta(array):
        array._no_values()
    return array.get() if is_device_array(array) else np.asarray(array)
