"""Which BLAS NumPy's matmul runs on this CPU: every CPU GEMM of nnlite
(conv2d, linear, the LSTM/GRU projections) goes there, so its kernel choice
sets most of the CPU speed. Reported by `nnlite info` and `python -m bench`.
"""
import ctypes
import os

_CORENAME_SYMBOLS = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename")


def numpy_blas():
    """(name, version) of the BLAS NumPy was built against, or (None, None)."""
    import numpy
    try:
        config = numpy.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return blas.get("name"), blas.get("version")
    except Exception:  # older NumPy: no dict mode; the row then says "unknown"
        return None, None


def openblas_core():
    """The kernel set OpenBLAS picked at load time ("Haswell", "SkylakeX" ...),
    or None when NumPy's BLAS is not a loaded OpenBLAS (Linux only)."""
    import numpy  # noqa: F401  (its BLAS must be loaded to be found)
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(p for p in paths if os.path.isfile(p)):
        lib = ctypes.CDLL(path)
        for symbol in _CORENAME_SYMBOLS:
            function = getattr(lib, symbol, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return function().decode()
    return None


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.startswith("flags") and " avx512f" in line for line in cpuinfo)
    except OSError:
        return False


def describe():
    """One line: the BLAS, its kernel set, and a hint when an AVX-512 CPU runs
    OpenBLAS's AVX2 kernels (as OpenBLAS 0.3.31 does on AMD Zen 4, where
    OPENBLAS_CORETYPE=SkylakeX measured 1.8x faster float32 GEMMs)."""
    name, version = numpy_blas()
    text = f"{name or 'unknown'} {version or ''}".strip()
    core = openblas_core()
    if core is None:
        return text
    text += f", kernels: {core}"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:
        text += f" (set by OPENBLAS_CORETYPE={forced})"
    if core in ("Haswell", "Zen", "Sandybridge") and cpu_has_avx512():
        text += ("; this CPU has AVX-512, and OPENBLAS_CORETYPE=SkylakeX set before Python "
                 "starts may make GEMMs faster")
    return text
