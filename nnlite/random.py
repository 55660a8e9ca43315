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
