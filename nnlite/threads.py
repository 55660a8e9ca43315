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
import contextlib
import os
import threading

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


_split = {"lock": threading.Lock(), "executor": None, "workers": 0}
# Smaller products run as one plain matmul: handing work to a thread costs tens
# of microseconds, and a column block narrower than this wastes BLAS's kernels.
_MIN_SPLIT_FLOPS = 2**24
_MIN_SPLIT_COLUMNS = 64
_PIECES_PER_WORKER = 4


_blas = {"lock": threading.RLock(), "depth": 0, "libraries": None, "before": None}


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS at one thread, process-wide, for the duration, then back; nests.

    For loops of small GEMMs (an RNN's recurrent product per time step: 32x128
    by 128x512 in the CRNN), which a multi-threaded BLAS splits across threads
    that meet at a barrier inside every call. On idle cores that costs little;
    on cores shared with other processes each barrier waits for a descheduled
    thread: the seed CRNN's training step took 6.1 s with 2 BLAS threads and
    2.1 s with one, on 2 cores at load average 4 (PyTorch: 0.8 s). Python
    threads that enter take turns (the setting is process-wide)."""
    with _blas["lock"]:
        if _blas["depth"] == 0:
            if _blas["libraries"] is None:
                from threadpoolctl import ThreadpoolController
                _blas["libraries"] = [lib for lib in ThreadpoolController().lib_controllers
                                      if lib.user_api == "blas"]
            _blas["before"] = [lib.num_threads for lib in _blas["libraries"]]
            for lib in _blas["libraries"]:
                if lib.num_threads != 1:
                    lib.set_num_threads(1)
        _blas["depth"] += 1
        try:
            yield
        finally:
            _blas["depth"] -= 1
            if _blas["depth"] == 0:
                for lib, threads in zip(_blas["libraries"], _blas["before"]):
                    if threads != 1:
                        lib.set_num_threads(threads)


def split_matmul(a, b, out=None):
    """numpy.matmul of a (m, k) and b (k, n), or of stacked matrices a (B, m, k)
    and b (B, k, n), as independent single-threaded BLAS GEMMs shared among
    nnlite's threads: the B products of a stack, or column blocks of b.

    A multi-threaded GEMM makes BLAS's threads meet at barriers inside it; on
    cores shared with other processes each barrier waits for a descheduled
    thread (measured on 2 busy cores: the 16 products of a Winograd
    convolution took 490 ms as one threaded matmul, 57 ms split this way; on
    idle cores the two are within 10%). While the products run, BLAS is at one
    thread for the whole process; calls from several Python threads take turns.
    Each output element is one dot product over k in BLAS's order, so the
    result is the same from run to run. `out`: a C-contiguous array of the
    product's shape and dtype to write into, as numpy.matmul's.
    """
    import numpy as np
    stacked = a.ndim == 3
    if out is None:
        out = np.empty(a.shape[:-1] + b.shape[-1:], dtype=np.result_type(a, b))
    parts = a.shape[0] if stacked else -(-b.shape[1] // _MIN_SPLIT_COLUMNS)
    workers = min(get_num_threads(), parts)
    if workers <= 1 or out.size == 0 or 2 * out.size * a.shape[-1] < _MIN_SPLIT_FLOPS:
        # One GEMM, still at one BLAS thread: a small product split by BLAS
        # waits at its barriers as long as a large one on busy cores (a 16
        # MFLOP weight gradient: 100 ms at 2 BLAS threads, 0.15 ms at one).
        with single_threaded_blas():
            return np.matmul(a, b, out=out)
    # More pieces than workers, handed out as workers come free: on shared
    # cores a descheduled worker then holds up one small piece, not half the
    # product (a static half each measured 1.5 s a CRNN step, at load 4).
    # The pieces are fixed before any worker starts, so which worker computes
    # which piece never changes a result.
    if stacked:
        pieces = [(i, slice(None)) for i in range(a.shape[0])]
    else:
        count = min(parts, workers * _PIECES_PER_WORKER)
        step = -(-b.shape[1] // count)
        pieces = [(None, slice(start, start + step)) for start in range(0, b.shape[1], step)]
    claim = threading.Lock()
    queue = iter(pieces)

    def products(_):
        while True:
            with claim:
                piece = next(queue, None)
            if piece is None:
                return
            index, columns = piece
            if index is None:
                np.matmul(a, b[:, columns], out=out[:, columns])
            else:
                np.matmul(a[index], b[index], out=out[index])

    with _split["lock"]:
        if _split["workers"] != workers:
            from concurrent.futures import ThreadPoolExecutor
            if _split["executor"] is not None:
                _split["executor"].shutdown()
            _split["executor"] = ThreadPoolExecutor(workers - 1,
                                                    thread_name_prefix="nnlite-matmul")
            _split["workers"] = workers
        with single_threaded_blas():
            shares = [_split["executor"].submit(products, w) for w in range(1, workers)]
            products(0)
            for share in shares:
                share.result()
    return out
