"""What every tests/test_kernel_*.py shares: the dtypes, the tolerances by
dtype, and the dtype x case parametrisation (the device comes from the
`xp` / `device` fixtures of conftest.py, so each test runs over
dtype x device x case).

Tolerances: element-wise kernels (pool, softmax, the recurrent cells) differ
from the NumPy reference only by rounding of a few operations; kernels that
accumulate long sums (conv through GEMM, CTC over paths) get a looser bound.
"""
import numpy as np
import pytest

from nnlite.device import to_numpy

DTYPES = (np.float32, np.float64)
_ELEMENTWISE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
_ACCUMULATING = {np.float32: dict(rtol=2e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-11)}


def dtype_name(dtype):
    return np.dtype(dtype).name


each_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=dtype_name)


def each_case(cases):
    """Parametrise `name` over the keys of a {name: case} table."""
    return pytest.mark.parametrize("name", list(cases))


def tolerance(dtype, accumulates=False):
    """assert_allclose keyword arguments for results computed in `dtype`."""
    return (_ACCUMULATING if accumulates else _ELEMENTWISE)[np.dtype(dtype).type]


def assert_close(actual, expected, dtype, accumulates=False, **kwargs):
    """`actual` (NumPy or CuPy) against the reference `expected`, within the
    tolerance of `dtype`."""
    np.testing.assert_allclose(to_numpy(actual), expected,
                               **tolerance(dtype, accumulates), **kwargs)
