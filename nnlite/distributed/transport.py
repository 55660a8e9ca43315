"""How gradient buckets travel: MPI on host (NumPy) buffers, or NCCL between
GPUs through CuPy. A transport starts a non-blocking sum over ranks of one
flat buffer (``start``), lets MPI progress the ones in flight
(``progress``), and waits for one with the group's deadline (``finish``).

Two reductions:

* ``"ordered"`` (the default): every rank receives every other rank's
  bucket and adds them in rank order 0, 1, ... (MPI: Isend/Irecv pairs, so a
  missing bucket names its rank; NCCL: ncclAllGather). Same bits on every
  rank and in every run, whatever the MPI library. Each rank receives
  (size - 1) buckets per bucket: against a ring all-reduce's 2 (size - 1) /
  size, that is size / 2 times the traffic, equal at 2 ranks.
* ``"allreduce"``: MPI_Iallreduce / ncclAllReduce with SUM, bandwidth-optimal
  at any size; the summation order is the library's, which MPICH, Open MPI
  and NCCL keep fixed for a fixed job shape and message size but do not
  promise.

``choose_transport`` picks NCCL when the parameters are on a GPU, CuPy has
NCCL and every rank has a GPU of its own on its host, and MPI otherwise.
The NCCL path is written to CuPy's documented API but has not run on
hardware with more than one GPU (see docs/distributed.md).
"""
import time

import numpy as np

from nnlite import device as _device
from nnlite.distributed.group import sum_in_rank_order

REDUCTIONS = ("ordered", "allreduce")


class _Pending:
    __slots__ = ("requests", "result", "send", "what", "device", "event", "started")

    def __init__(self, what, device):
        self.what, self.device = what, device
        self.requests, self.result, self.send, self.event = [], None, None, None
        self.started = time.monotonic()


class MPITransport:
    """Buckets as NumPy buffers over MPI (CuPy buckets are staged through
    the host, one copy each way)."""

    def __init__(self, group, reduction="ordered"):
        self.group, self.reduction = group, _check_reduction(reduction)
        self.in_flight = []

    def describe(self):
        how = ("ordered reduction: every rank's bucket to every rank, summed in rank order"
               if self.reduction == "ordered" else "MPI_Iallreduce (the library's order)")
        return f"MPI on host buffers, {how}"

    def start(self, flat, tag, what):
        group = self.group
        pending = _Pending(what, _device.device_of(flat))
        host = np.ascontiguousarray(_device.to_numpy(flat))
        pending.send = host  # kept alive until the sends complete
        comm = group.grad_comm
        if self.reduction == "ordered":
            rows = np.empty((group.size,) + host.shape, dtype=host.dtype)
            rows[group.rank] = host
            others = [p for p in range(group.size) if p != group.rank]
            pending.requests = [(comm.Irecv(rows[p], source=p, tag=tag), p) for p in others]
            pending.requests += [(comm.Isend(host, dest=p, tag=tag), p) for p in others]
            pending.result = rows
        else:
            out = np.empty_like(host)
            pending.requests = [(comm.Iallreduce(host, out, op=group.MPI.SUM), None)]
            pending.result = out
        self.in_flight.append(pending)
        return pending

    def progress(self):
        """Let MPI move the buckets in flight (without a progress thread, MPI
        moves data only inside MPI calls)."""
        for pending in self.in_flight:
            pending.requests = [(r, p) for r, p in pending.requests if not r.Test()]

    def finish(self, pending):
        self.group.wait(pending.requests, pending.what,
                        deadline=pending.started + self.group.timeout)
        self.in_flight.remove(pending)
        total = sum_in_rank_order(pending.result) if self.reduction == "ordered" else \
            pending.result
        return _device.move(total, pending.device) if pending.device != "cpu" else total


class NCCLTransport:
    """Buckets as CuPy buffers over NCCL on a stream of their own; the
    bucket's stream waits for the gradients (an event on the current stream)
    and the result is used only after the collective's event. Untested on
    hardware: written to cupy.cuda.nccl's documented API."""

    def __init__(self, group, reduction="ordered"):
        import cupy
        from cupy.cuda import nccl
        self.cupy, self.nccl = cupy, nccl
        self.group, self.reduction = group, _check_reduction(reduction)
        unique_id = nccl.get_unique_id() if group.rank == 0 else None
        unique_id = group.bcast_object(unique_id, what="the NCCL unique id")
        self.comm = nccl.NcclCommunicator(group.size, unique_id, group.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.types = {np.dtype(np.float32): nccl.NCCL_FLOAT32,
                      np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def describe(self):
        how = "ncclAllGather + sum in rank order" if self.reduction == "ordered" else \
            "ncclAllReduce"
        return f"NCCL {self.nccl.get_version()} between GPUs ({how}); untested on hardware"

    def start(self, flat, tag, what):
        cupy, group = self.cupy, self.group
        pending = _Pending(what, "cuda")
        kind = self.types.get(np.dtype(flat.dtype))
        if kind is None:
            raise TypeError(f"nnlite.distributed: NCCL buckets hold float32 or float64, got "
                            f"{flat.dtype}")
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(cupy.cuda.get_current_stream())
        self.stream.wait_event(ready)
        pending.send = flat
        n = flat.size
        if self.reduction == "ordered":
            out = cupy.empty((group.size, n), dtype=flat.dtype)
            self.comm.allGather(flat.data.ptr, out.data.ptr, n, kind, self.stream.ptr)
        else:
            out = cupy.empty_like(flat)
            self.comm.allReduce(flat.data.ptr, out.data.ptr, n, kind, self.nccl.NCCL_SUM,
                                self.stream.ptr)
        pending.event = cupy.cuda.Event(disable_timing=True)
        pending.event.record(self.stream)
        pending.result = out
        return pending

    def progress(self):
        pass  # NCCL runs on its own stream

    def finish(self, pending):
        group = self.group
        deadline = pending.started + group.timeout
        pause = 0.0
        while not pending.event.done:
            if time.monotonic() > deadline:
                self.comm.abort()
                group.timed_out(pending.what)
            time.sleep(pause)
            pause = min(max(pause * 2, 2e-5), 2e-3)
        self.cupy.cuda.get_current_stream().wait_event(pending.event)
        return sum_in_rank_order(pending.result) if self.reduction == "ordered" else \
            pending.result


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"nnlite.distributed: reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    return reduction


def nccl_unavailable(group):
    """Why NCCL cannot carry this rank's gradients (a sentence), or None."""
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError:
        return "CuPy is not installed"
    except Exception as error:  # noqa: BLE001 - a broken CUDA install says so here
        return f"CuPy's NCCL did not load ({type(error).__name__}: {error})"
    if not getattr(nccl, "available", True):
        return "this CuPy was built without NCCL"
    try:
        gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # noqa: BLE001
        return f"no GPU ({type(error).__name__})"
    if gpus < group.local_size:
        return (f"{group.local_size} ranks share this host's {gpus} GPU"
                f"{'s' if gpus != 1 else ''}; NCCL needs one GPU per rank")
    return None


def choose_transport(group, device, reduction="ordered", transport="auto"):
    """(transport, note): NCCL when `device` is "cuda" and every rank can use
    it, else MPI; `note` says why NCCL was not taken (or None). All ranks
    agree, since a choice that differed would deadlock."""
    if transport not in ("auto", "mpi", "nccl"):
        raise ValueError(f"nnlite.distributed: transport must be 'auto', 'mpi' or 'nccl', got "
                         f"{transport!r}")
    note = None
    if transport == "mpi":
        return MPITransport(group, reduction), note
    reason = "the parameters are on the CPU" if device != "cuda" else nccl_unavailable(group)
    verdicts = group.allgather_rows(np.array([reason is None], dtype=np.int64),
                                    what="the choice of transport")
    if transport == "nccl" and not verdicts.all():
        unable = ", ".join(str(r) for r in np.flatnonzero(verdicts[:, 0] == 0))
        raise RuntimeError(f"nnlite.distributed: transport='nccl' but rank(s) {unable} cannot "
                           f"use NCCL" + (f" (here: {reason})" if reason else ""))
    if bool(verdicts.all()):
        return NCCLTransport(group, reduction), note
    if device == "cuda":
        note = reason or "another rank cannot use NCCL"
    return MPITransport(group, reduction), note
