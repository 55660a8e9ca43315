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
