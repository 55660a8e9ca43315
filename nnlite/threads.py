"""One thread setting for nnlite's two CPU pools: the OpenMP team of the host
kernels (nnlite._C) and the BLAS that NumPy's matmul runs on (every conv2d,
linear and recurrent GEMM).

Two pools sized separately oversubscribe the cores: each believes it owns
the machine, and on a 2-core machine shared with another job a step was 10-20x
slower with OpenBLAS's threads competing (README). So one number sets both,
through threadpoolctl for the BLAS (it finds the BLAS library NumPy loaded;
environment variables such as OPENBLAS_NUM_THREADS are read only when that
library loads, too late to act on).

    nl.set_num_threads(n); nl.get_num_threads()
    NNLITE_NUM_THREADS=n    # read when nnlite is imported

The default is the number of cores this process may run on
(os.sched_getaffinity), not the machine's count: under taskset, a container's
CPU set or a batch scheduler, that is the fair share.
"""
import os

ENV = "NNLITE_NUM_THREADS"
_setting = {"threads": None, "blas_limiter": None}


def available_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _parse(value, source):
    if isinstance(value, bool):
        value = None
    try:
        threads = int(value)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1 or threads > 4096 or str(value).strip() != str(threads):
        raise ValueError(f"{source}: expected a whole number of threads in [1, 4096], "
                         f"got {value!r}")
    return threads


def default_threads():
    """NNLITE_NUM_THREADS when set, else the cores this process may run on."""
    value = os.environ.get(ENV)
    if value is None or value.strip() == "":
        return available_cores()
    return _parse(value.strip(), f"environment variable {ENV}")


def set_num_threads(threads):
    """Size both CPU pools (OpenMP of nnlite's kernels and NumPy's BLAS) to `threads`."""
    threads = _parse(threads, "set_num_threads")
    from nnlite.kernels.launch import host_library
    host_library().set_openmp_threads(threads)
    from threadpoolctl import threadpool_limits
    # Constructing the limiter applies it; it stays applied (it is only undone
    # when used as a context manager, which we do not).
    _setting["blas_limiter"] = threadpool_limits(limits=threads, user_api="blas")
    _setting["threads"] = threads


def get_num_threads():
    """The thread count of both CPU pools."""
    if _setting["threads"] is None:
        set_num_threads(default_threads())
    return _setting["threads"]


def describe():
    """One line for `nnlite info`."""
    from threadpoolctl import threadpool_info
    blas = [f"{pool.get('internal_api')} {pool.get('num_threads')}"
            for pool in threadpool_info() if pool.get("user_api") == "blas"]
    source = f"{ENV}={os.environ[ENV]}" if os.environ.get(ENV, "").strip() else \
        f"the {available_cores()} cores this process may use"
    return (f"{get_num_threads()} (from {source}); OpenMP "
            f"{_openmp_threads()}, BLAS {', '.join(blas) or 'not found'}")


def _openmp_threads():
    from nnlite.kernels.launch import host_library
    return host_library().openmp_max_threads()


def apply_default():
    """At import: both pools to default_threads(). A malformed NNLITE_NUM_THREADS
    is reported and the core count used, rather than failing the import."""
    import warnings
    try:
        threads = default_threads()
    except ValueError as exc:
        warnings.warn(f"nnlite: {exc}; using the {available_cores()} available cores",
                      stacklevel=3)
        threads = available_cores()
    try:
        set_num_threads(threads)
    except ImportError:
        pass  # nnlite._C is not built: the first kernel call says how to rebuild
