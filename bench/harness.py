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


def primary_output(result):
    """The first array of what an implementation returned, as a NumPy array:
    (y, argmax) -> y, an nnlite or torch tensor or a CuPy array -> its values."""
    while isinstance(result, (tuple, list)):
        result = result[0]
    if type(result).__module__.startswith("torch"):
        return result.detach().cpu().numpy()
    if hasattr(result, "numpy"):  # nnlite.Tensor
        return result.numpy()
    if hasattr(result, "get"):  # cupy.ndarray
        return result.get()
    return np.asarray(result)


@dataclass
class Impl:
    name: str                      # "nnlite" (or "nnlite:<version>"), "numpy-ref", "torch"
    run: Callable[[], object]      # one timed call
    sync: Callable[[], None] = _no_sync  # waits for queued device work
    # What of run()'s result is compared with the case's reference (host array).
    output: Callable[[object], np.ndarray] = primary_output


@dataclass
class Case:
    name: str                      # e.g. "log_softmax fwd+bwd"
    device: str                    # "cpu" | "cuda"
    shape: str                     # e.g. "crnn 992x63 float32"
    impls: List[Impl]
    nbytes: int = 0                # bytes read + written once by the ideal kernel
    flops: int = 0
    # The NumPy reference's result (a host array), which every implementation's
    # output must match before it is timed; None for a case with nothing to check.
    expected: Callable[[], np.ndarray] = None
    rtol: float = 1e-4             # float32 kernels against a float32/64 reference
    atol: float = 1e-4
    # At most this many timed rounds, whatever --repeat says (whole networks
    # take seconds per run on a CPU); None: --repeat's.
    max_repeat: int = None
    # A long case (a whole network, a large-kernel layer): run when --all is
    # given or --filter names it, so that a plain `python -m bench` stays short.
    long: bool = False


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
    failed: str = None             # why its output disagreed with the reference (not timed)


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


def time_impls(impls, repeat, warmup):
    """[times of impl, ...] in ms: every impl warmed up, then `repeat` rounds
    that time each impl once. Interleaved so that a machine whose load changes
    during a case (other jobs on shared cores) slows every implementation
    alike, and their ratios stay fair; the order rotates from round to round
    because an implementation also pays for the one before it (BLAS and
    OpenMP threads that still spin after their work, measured up to 1.3x)."""
    for impl in impls:
        for _ in range(warmup):
            impl.run()
        impl.sync()
    times = [[] for _ in impls]
    order = list(range(len(impls)))
    for round_ in range(repeat):
        shift = round_ % max(1, len(order))
        for i in order[shift:] + order[:shift]:
            start = time.perf_counter()
            impls[i].run()
            impls[i].sync()
            times[i].append((time.perf_counter() - start) * 1e3)
    return times


def build_cases(devices, name_filter=None, include_long=False):
    """The registered cases of `devices`: those whose name or shape contains
    name_filter (then long ones too), else every case but the long ones
    unless include_long."""
    from bench import cases  # noqa: F401  (registers the factories)
    found = []
    for device in devices:
        xp = np
        if device == "cuda":
            import nnlite.cuda
            xp = nnlite.cuda.ensure_initialized()
        for factory in _FACTORIES:
            for case in factory(device, xp):
                if name_filter:
                    if name_filter.lower() in f"{case.name} {case.shape}".lower():
                        found.append(case)
                elif include_long or not case.long:
                    found.append(case)
    return found


def disagreement(case, impl, expected):
    """None when impl's output matches the reference within the case's
    tolerance, else what differs."""
    try:
        result = impl.run()
        impl.sync()
    except Exception as exc:  # one broken implementation must not end the whole run
        return f"raised {type(exc).__name__}: {exc}"
    actual = impl.output(result)
    if actual.shape != expected.shape:
        return f"shape {actual.shape}, reference {expected.shape}"
    if np.allclose(actual, expected, rtol=case.rtol, atol=case.atol, equal_nan=True):
        return None
    with np.errstate(invalid="ignore"):
        worst = np.nanmax(np.abs(actual.astype(np.float64) - expected))
    return f"max |difference| {worst:.3g} > rtol {case.rtol:g}, atol {case.atol:g}"


def pair_ratio(times, base_times):
    """The median over rounds of times[i] / base_times[i]: the two were timed in
    the same round (time_impls), so a load change between rounds cancels out
    of each ratio, where a ratio of the two medians would keep it."""
    return statistics.median(t / b for t, b in zip(times, base_times))


def run_cases(cases, repeat, warmup, progress=None):
    """Validate, then time (interleaved, time_impls), every implementation of
    every case. An implementation whose output disagrees with the case's
    reference is reported as failed and not timed: a fast wrong kernel has no
    speed."""
    results = []
    for case in cases:
        expected = None if case.expected is None else primary_output(case.expected())
        problems = [None if expected is None else disagreement(case, impl, expected)
                    for impl in case.impls]
        valid = [impl for impl, problem in zip(case.impls, problems) if problem is None]
        rounds = repeat if case.max_repeat is None else min(repeat, case.max_repeat)
        timed = dict(zip((impl.name for impl in valid),
                         time_impls(valid, rounds, min(warmup, rounds))))
        case_results = []
        for impl, problem in zip(case.impls, problems):
            if problem is not None:
                case_results.append(Result(case.name, case.device, case.shape, impl.name,
                                           float("nan"), float("nan"), failed=problem))
            else:
                times = timed[impl.name]
                median = statistics.median(times)
                seconds = median / 1e3
                case_results.append(Result(
                    case.name, case.device, case.shape, impl.name, median, min(times),
                    gb_per_s=case.nbytes / seconds / 1e9 if case.nbytes else None,
                    gflop_per_s=case.flops / seconds / 1e9 if case.flops else None,
                    times_ms=times))
            if progress is not None:
                progress.update(1)
        base = next((r for r in case_results if r.impl == BASELINE and not r.failed), None)
        for r in case_results:
            r.ratio_to_nnlite = pair_ratio(r.times_ms, base.times_ms) if base and not r.failed \
                else None
        results += case_results
    return results


def format_table(results, device):
    """The results of one device as an aligned table; `vs nnlite` is the median
    of the implementation's per-round time over nnlite's in the same round
    (pair_ratio), so above 1x means nnlite is faster."""
    rows = [r for r in results if r.device == device]
    case_width = max([len("case")] + [len(r.case) for r in rows])
    shape_width = max([len("shape")] + [len(r.shape) for r in rows])
    impl_width = max([len("impl")] + [len(r.impl) for r in rows])
    head = f"{'case':<{case_width}} {'shape':<{shape_width}} {'impl':<{impl_width}} " \
           f"{'median ms':>10} {'min ms':>9} {'GB/s':>7} {'GFLOP/s':>8} {'vs nnlite':>9}"
    lines = [f"device: {device}    (vs nnlite = median over rounds of time / nnlite's time "
             f"in that round: > 1x means nnlite is faster; every output is checked against "
             f"the NumPy reference first)",
             head, "-" * len(head)]
    previous = None
    for r in rows:
        label = (r.case, r.shape) if (r.case, r.shape) != previous else ("", "")
        previous = (r.case, r.shape)
        start = f"{label[0]:<{case_width}} {label[1]:<{shape_width}} {r.impl:<{impl_width}} "
        if r.failed:
            lines.append(start + f"FAILED, not timed: {r.failed}")
            continue
        rate = f"{r.gb_per_s:7.1f}" if r.gb_per_s is not None else f"{'':>7}"
        flops = f"{r.gflop_per_s:8.1f}" if r.gflop_per_s is not None else f"{'':>8}"
        ratio = f"{r.ratio_to_nnlite:8.2f}x" if r.ratio_to_nnlite is not None else ""
        lines.append(start + f"{r.median_ms:10.4f} {r.min_ms:9.4f} {rate} {flops} {ratio:>9}")
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
