"""Timing, the case registry, the table and the JSON output of `python -m bench`."""
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List

import numpy as np

BASELINE = "nnlite"
_FACTORIES = []


def register(factory):
    """Decorator for `factory(device, xp) -> [Case, ...]`, called once per device."""
    _FACTORIES.append(factory)
    return factory


def _no_sync():
    pass


@dataclass
class Impl:
    name: str                      # "nnlite", "numpy-ref", "cupy-ref", "torch"
    run: Callable[[], object]      # one timed call
    sync: Callable[[], None] = _no_sync  # waits for queued device work


@dataclass
class Case:
    name: str                      # e.g. "log_softmax fwd+bwd"
    device: str                    # "cpu" | "cuda"
    shape: str                     # e.g. "crnn 992x63 float32"
    impls: List[Impl]
    nbytes: int = 0                # bytes read + written once by the ideal kernel
    flops: int = 0


@dataclass
class Result:
    case: str
    device: str
    shape: str
    impl: str
    median_ms: float
    min_ms: float
    gb_per_s: float = None
    gflop_per_s: float = None
    ratio_to_nnlite: float = None  # this impl's median / nnlite's median
    times_ms: List[float] = field(default_factory=list)


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    # Time true float32 work: TF32 would flatter PyTorch against float32 kernels.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def device_sync(device):
    """The synchronisation that makes a wall-clock time mean finished work."""
    if device != "cuda":
        return _no_sync
    import cupy
    return cupy.cuda.Device().synchronize


def time_impl(impl, repeat, warmup):
    for _ in range(warmup):
        impl.run()
    impl.sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        impl.run()
        impl.sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def build_cases(devices, name_filter=None):
    from bench import cases  # noqa: F401  (registers the factories)
    found = []
    for device in devices:
        xp = np
        if device == "cuda":
            import nnlite.cuda
            xp = nnlite.cuda.ensure_initialized()
        for factory in _FACTORIES:
            found += [c for c in factory(device, xp) if not name_filter
                      or name_filter.lower() in f"{c.name} {c.shape}".lower()]
    return found


def run_cases(cases, repeat, warmup, progress=None):
    results = []
    for case in cases:
        case_results = []
        for impl in case.impls:
            times = time_impl(impl, repeat, warmup)
            median = statistics.median(times)
            seconds = median / 1e3
            case_results.append(Result(
                case.name, case.device, case.shape, impl.name, median, min(times),
                gb_per_s=case.nbytes / seconds / 1e9 if case.nbytes else None,
                gflop_per_s=case.flops / seconds / 1e9 if case.flops else None,
                times_ms=times))
            if progress is not None:
                progress.update(1)
        base = next((r for r in case_results if r.impl == BASELINE), None)
        for r in case_results:
            r.ratio_to_nnlite = r.median_ms / base.median_ms if base else None
        results += case_results
    return results


def format_table(results, device):
    rows = [r for r in results if r.device == device]
    head = f"{'case':<22} {'shape':<26} {'impl':<10} {'median ms':>10} {'min ms':>9} " \
           f"{'GB/s':>7} {'vs nnlite':>9}"
    lines = [f"device: {device}", head, "-" * len(head)]
    previous = None
    for r in rows:
        label = (r.case, r.shape) if (r.case, r.shape) != previous else ("", "")
        previous = (r.case, r.shape)
        rate = f"{r.gb_per_s:7.1f}" if r.gb_per_s is not None else f"{'':>7}"
        ratio = f"{r.ratio_to_nnlite:8.2f}x" if r.ratio_to_nnlite is not None else ""
        lines.append(f"{label[0]:<22} {label[1]:<26} {r.impl:<10} {r.median_ms:10.4f} "
                     f"{r.min_ms:9.4f} {rate} {ratio:>9}")
    return "\n".join(lines)


def write_json(path, results, meta):
    """Write atomically: a reader never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".bench-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump({"meta": meta, "results": [asdict(r) for r in results]}, out, indent=1)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever reads it
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
