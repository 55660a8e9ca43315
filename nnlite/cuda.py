"""The GPU as nnlite sees it: availability, and the device-memory budget.

Nothing here imports CuPy at import time; a CPU-only install never needs it.
The budget (the TK1 profile is 1.5 GiB) comes from ``set_memory_limit`` or the
environment variable ``NNLITE_GPU_MEMORY_LIMIT``, read at first GPU use. It is
enforced by a CuPy allocator wrapped around CuPy's default memory pool, so it
covers every CuPy allocation in the process, nnlite's or not.
"""
import os
import re
import threading

from nnlite.errors import OutOfMemoryError

TK1_MEMORY_BUDGET = int(1.5 * 2**30)
MEMORY_LIMIT_ENV = "NNLITE_GPU_MEMORY_LIMIT"
INSTALL_HINT = "pip install -e '.[cuda12]' or '.[cuda13]', matching the CUDA driver"

# CuPy's pool hands out 512-byte multiples; the budget counts what it really takes.
_POOL_ROUNDING = 512

_UNITS = {"": 1, "b": 1,
          "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6,
          "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
          "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20,
          "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([A-Za-z]*)\s*")

_lock = threading.RLock()  # reentrant: a locked section may resolve the limit
_limit = None            # bytes, or None for no budget
_limit_resolved = False  # set once the env var was read or set_memory_limit called
_initialized = False     # the budget allocator is installed
_UNKNOWN = object()
_unavailable_reason = _UNKNOWN  # cached why_unavailable() answer
_peak_bytes = 0  # the most the pool had in use at once since the last reset


def parse_bytes(text):
    """A size as bytes: 1073741824, '1073741824', '1.5GiB', '512MiB', '2GB', '64k'.

    Units are case-insensitive; k/M/G/T (with or without B) are powers of 1000,
    Ki/Mi/Gi/Ti (with or without B) powers of 1024.
    """
    if isinstance(text, bool):
        raise TypeError(f"parse_bytes: expected a size such as 1073741824 or '1.5GiB'; "
                        f"got {text!r}")
    if isinstance(text, (int, float)):
        if text < 0 or text != text:
            raise ValueError(f"parse_bytes: a size must be a non-negative number; got {text!r}")
        return int(text)
    match = _SIZE.fullmatch(str(text))
    if not match or match.group(3).lower() not in _UNITS:
        raise ValueError(f"parse_bytes: cannot read {text!r} as a size; expected bytes such as "
                         f"1073741824, or a number with a unit: '1.5GiB', '512MiB', '2GB'")
    digits, exponent, unit = match.groups()
    scale = _UNITS[unit.lower()]
    if exponent is None and "." not in digits:
        return int(digits) * scale  # exact, however large
    return int(float(digits + "e" + (exponent or "0")) * scale)


def format_bytes(nbytes):
    """1610612736 -> '1.50 GiB' (binary units, for messages)."""
    if nbytes < 1024:
        return f"{int(nbytes)} B"
    value = float(nbytes)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.2f} {unit}"


def is_available():
    """True if CuPy imports and sees at least one CUDA device. Never raises."""
    return why_unavailable() is None


def why_unavailable():
    """None when a GPU is usable, else why not (for `nnlite info` and skip reasons)."""
    global _unavailable_reason
    if _unavailable_reason is _UNKNOWN:
        try:
            import cupy
            count = cupy.cuda.runtime.getDeviceCount()
            _unavailable_reason = None if count > 0 else "CuPy sees no CUDA device"
        except ImportError:
            _unavailable_reason = f"CuPy is not installed; install it with {INSTALL_HINT}"
        except Exception as exc:  # a CUDA driver error, a broken install: all mean no
            _unavailable_reason = f"CuPy cannot use a GPU: {type(exc).__name__}: {exc}"
    return _unavailable_reason


def device_count():
    """Number of CUDA devices CuPy can use (0 without CuPy or a GPU)."""
    if not is_available():
        return 0
    import cupy
    return cupy.cuda.runtime.getDeviceCount()


def set_memory_limit(nbytes):
    """Cap device memory in use at `nbytes` (an int or a string like '1.5GiB');
    None removes the cap. Takes precedence over NNLITE_GPU_MEMORY_LIMIT."""
    global _limit, _limit_resolved
    with _lock:
        _limit = None if nbytes is None else parse_bytes(nbytes)
        _limit_resolved = True


def get_memory_limit():
    """The budget in bytes, or None when unlimited."""
    _resolve_limit()
    return _limit


def memory_allocated():
    """Bytes of device memory in use through CuPy's default pool (0 without a GPU)."""
    if not is_available():
        return 0
    import cupy
    return cupy.get_default_memory_pool().used_bytes()


def max_memory_allocated():
    """The most device memory in use at once through CuPy's default pool since
    the GPU was first used or since reset_peak_memory_stats(), as PyTorch's
    torch.cuda.max_memory_allocated (0 without a GPU)."""
    return _peak_bytes if is_available() else 0


def reset_peak_memory_stats():
    """Start max_memory_allocated() again from what is in use now."""
    global _peak_bytes
    _peak_bytes = memory_allocated()


def synchronize():
    """Wait for all work queued on the current device (a no-op without a GPU)."""
    if is_available():
        import cupy
        cupy.cuda.Device().synchronize()


def ensure_initialized():
    """Prepare GPU use: check CuPy and a device, read the budget, install the
    budget allocator. Idempotent and cheap after the first call; returns cupy."""
    global _initialized
    if not is_available():
        raise RuntimeError(f"nnlite.cuda: the GPU backend needs CuPy and an NVIDIA GPU, and "
                           f"none is usable here: {why_unavailable()}")
    import cupy
    if not _initialized:
        _resolve_limit()
        with _lock:
            if not _initialized:
                cupy.cuda.set_allocator(_make_budget_allocator(cupy.get_default_memory_pool()))
                _initialized = True
    return cupy


def _resolve_limit():
    global _limit, _limit_resolved
    if _limit_resolved:
        return
    with _lock:
        if _limit_resolved:
            return
        text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
        if text:
            try:
                _limit = parse_bytes(text)
            except ValueError:
                raise ValueError(f"{MEMORY_LIMIT_ENV}={text!r} is not a size; expected bytes "
                                 f"such as 1073741824, or '1.5GiB', '512MiB', '2GB'") from None
        _limit_resolved = True


def _make_budget_allocator(pool):
    def allocate(nbytes):
        limit = _limit
        if limit is not None:
            request = -(-nbytes // _POOL_ROUNDING) * _POOL_ROUNDING
            in_use = pool.used_bytes()
            if in_use + request > limit:
                raise OutOfMemoryError(
                    f"GPU allocation of {format_bytes(request)} ({request} bytes) would exceed "
                    f"nnlite's memory budget: {format_bytes(in_use)} in use, budget "
                    f"{format_bytes(limit)}; free tensors, use smaller batches, or raise the "
                    f"budget with nnlite.cuda.set_memory_limit / {MEMORY_LIMIT_ENV}")
            if pool.total_bytes() + request > limit:
                # Cached free blocks count against a small device too (on the TK1
                # the GPU shares RAM with the CPU): give them back first.
                pool.free_all_blocks()
        memory = pool.malloc(nbytes)
        # The pool's use only grows at an allocation, so its peak is seen here.
        global _peak_bytes
        in_use = pool.used_bytes()
        if in_use > _peak_bytes:
            _peak_bytes = in_use
        return memory
    return allocate
