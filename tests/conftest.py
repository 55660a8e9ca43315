"""Shared test plumbing: the device parametrisation and the GPU auto-skip.

Markers (`cuda`, `slow`) are declared in pyproject.toml. A test asks for the
`device` fixture to run once per device ("cpu", and "cuda" marked `cuda`),
and for `xp` to get that device's array module.
"""
import numpy as np
import pytest

import nnlite.cuda

def pytest_collection_modifyitems(config, items):
    if nnlite.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs an NVIDIA GPU with CuPy; none usable here: "
                                   f"{nnlite.cuda.why_unavailable()}")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def xp_for(device):
    """numpy for "cpu", cupy for "cuda" (imported only when asked for)."""
    if device == "cpu":
        return np
    nnlite.cuda.ensure_initialized()
    import cupy
    return cupy


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    return request.param


@pytest.fixture
def xp(device):
    return xp_for(device)
