"""The random state behind dropout masks, initialisers and ``nl.randn``.

One seed makes a run reproducible: ``nl.manual_seed`` seeds the NumPy
generator used for CPU arrays and CuPy's generator for GPU arrays.
"""
import sys

import numpy as np

_generator = {"numpy": np.random.default_rng()}


def manual_seed(seed):
    """Seed every generator nnlite draws from (CPU, and the GPU if CuPy is loaded)."""
    _generator["numpy"] = np.random.default_rng(seed)
    _generator["seed"] = seed
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        cupy.random.seed(seed)
    _generator["gpu_seeded"] = cupy is not None


def generator():
    """The NumPy Generator behind CPU randomness."""
    return _generator["numpy"]


def uniform(xp, shape, low=0.0, high=1.0, dtype=np.float32):
    """Uniform samples in [low, high) as an array of module `xp`."""
    if xp is np:
        return generator().uniform(low, high, size=shape).astype(dtype, copy=False)
    _seed_gpu_once(xp)
    return xp.random.uniform(low, high, size=shape).astype(dtype, copy=False)


def normal(xp, shape, mean=0.0, std=1.0, dtype=np.float32):
    if xp is np:
        return generator().normal(mean, std, size=shape).astype(dtype, copy=False)
    _seed_gpu_once(xp)
    return xp.random.normal(mean, std, size=shape).astype(dtype, copy=False)


# Arrays filled in place are drawn this many elements at a time when they
# cannot be drawn into directly (a dtype the generator does not draw, a
# non-contiguous array, a GPU array): the temporary stays small whatever the
# size of the array (DictNet's classifier is 1.35 GiB).
FILL_CHUNK = 1 << 20


def fill_uniform(array, low=0.0, high=1.0):
    """Overwrite `array` (NumPy or CuPy, floating point) with U(low, high)
    samples, in place and in its own dtype: no float64 copy of the whole array,
    so initialising a parameter costs no memory beyond the parameter.
    float32 values are drawn as float32 (NumPy's Generator.random(dtype=...)),
    so they differ from a float64 draw cast down, but they are just as uniform."""
    return _fill(array, "uniform", float(low), float(high))


def fill_normal(array, mean=0.0, std=1.0):
    """Overwrite `array` with N(mean, std**2) samples, in place (see fill_uniform)."""
    return _fill(array, "normal", float(mean), float(std))


def _fill(array, kind, a, b):
    if array.dtype.kind != "f":
        raise TypeError(f"fill_{kind}: expected a floating-point array, got dtype {array.dtype}")
    if array.ndim == 0 or not array.flags.c_contiguous:
        # A strided view (or a scalar): fill it one sub-array at a time.
        if array.ndim <= 1:
            array[...] = _drawn(array, kind, a, b, array.shape)
        else:
            for index in range(array.shape[0]):
                _fill(array[index], kind, a, b)
        return array
    flat = array.reshape(-1)
    direct = isinstance(array, np.ndarray) and array.dtype in (np.float32, np.float64)
    for start in range(0, flat.size, FILL_CHUNK):
        chunk = flat[start:start + FILL_CHUNK]
        if direct:
            _draw_numpy(chunk, kind, a, b)
        else:
            chunk[...] = _drawn(array, kind, a, b, chunk.shape)
    return array


def _draw_numpy(out, kind, a, b):
    """Draw straight into the contiguous float32/float64 NumPy array `out`."""
    if kind == "uniform":
        generator().random(out=out, dtype=out.dtype)
        out *= out.dtype.type(b - a)
        out += out.dtype.type(a)
    else:
        generator().standard_normal(out=out, dtype=out.dtype)
        out *= out.dtype.type(b)
        out += out.dtype.type(a)


def _drawn(like, kind, a, b, shape):
    """A small temporary of samples for `like`'s device (float32 draws for float16)."""
    xp = np if isinstance(like, np.ndarray) else sys.modules["cupy"]
    dtype = np.float64 if like.dtype == np.float64 else np.float32
    if xp is np:
        out = np.empty(shape, dtype)
        _draw_numpy(out, kind, a, b)
        return out
    _seed_gpu_once(xp)
    if kind == "uniform":
        return xp.random.uniform(a, b, size=shape, dtype=dtype)
    return xp.random.normal(a, b, size=shape, dtype=dtype)


def _seed_gpu_once(cupy):
    # A seed set before CuPy was imported must still reach CuPy's generator.
    if "seed" in _generator and not _generator.get("gpu_seeded"):
        cupy.random.seed(_generator["seed"])
    _generator["gpu_seeded"] = True


def get_rng_state():
    """The state of the CPU generator nnlite draws from (dropout masks,
    initialisers, ``nl.randn``) as a JSON-able dict; ``set_rng_state`` puts it
    back, so a resumed run draws the same numbers. The GPU generator (CuPy's)
    is not included."""
    bit_generator = generator().bit_generator
    return {"bit_generator": bit_generator.state, "seed": _generator.get("seed")}


def set_rng_state(state):
    """Restore a state returned by ``get_rng_state``."""
    try:
        bit_state = state["bit_generator"]
        kind = getattr(np.random, bit_state["bit_generator"])
    except (TypeError, KeyError, AttributeError):
        raise ValueError(f"set_rng_state: expected a dict from get_rng_state(), got "
                         f"{state!r:.200}") from None
    current = generator().bit_generator
    if isinstance(current, kind):  # in place: holders of generator() see the state too
        current.state = bit_state
    else:
        bit_generator = kind()
        bit_generator.state = bit_state
        _generator["numpy"] = np.random.Generator(bit_generator)
    if state.get("seed") is not None:
        _generator["seed"] = state["seed"]
