"""Who this process is among its peers, and the collectives it makes with
them, each bounded by a deadline.

``init()`` looks at the environment a launcher leaves (mpiexec/mpirun of
MPICH, Intel MPI or Open MPI, srun with PMI): launched as one of several
processes, it imports mpi4py and returns an ``MPIGroup`` over
MPI_COMM_WORLD; otherwise (no launcher, or a job of one process) it returns
``SingleProcess``, whose collectives return their input and which never
imports mpi4py. Launched as several processes without mpi4py installed is
an error, not a silent fallback: every process would then believe it is
alone and write the same run folder.

Every wait polls non-blocking MPI requests against a deadline (``timeout``
seconds, NNLITE_DIST_TIMEOUT, default 600). Past it, the group prints what
it was waiting for, during which step (``phase``) and, where the operation
says so, from which rank, then calls MPI_Abort so that mpiexec ends every
process: a dead or hung rank ends the job with a message, not a hang.
``on_timeout="raise"`` raises CollectiveTimeout instead (tests, or a caller
that wants to clean up itself).

Reductions here are "ordered": every rank receives every other rank's
contribution (point-to-point, so a missing one names its rank) and sums
them in rank order 0, 1, ..., so every rank gets the same bits, run after
run. See docs/distributed.md for what that costs against MPI_Allreduce.
"""
import os
import pickle
import sys
import time

import numpy as np

TIMEOUT_ENV = "NNLITE_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
# Environment variables a launcher sets to the number of processes of the job.
LAUNCH_ENV = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
# Tags of the point-to-point messages on the control communicator.
TAG_ROWS, TAG_LENGTH, TAG_OBJECT = 11, 12, 13
ABORT_GRACE = 0.5  # seconds between the last message and MPI_Abort


class CollectiveTimeout(RuntimeError):
    """A collective did not complete within the group's timeout; `ranks`
    lists the peers whose part was missing (empty when MPI cannot say)."""

    def __init__(self, message, ranks=()):
        super().__init__(message)
        self.ranks = list(ranks)


def launched_size():
    """(variable, number of processes) a launcher announced, or (None, 1)."""
    for variable in LAUNCH_ENV:
        value = os.environ.get(variable, "").strip()
        if value.isdigit():
            return variable, int(value)
    return None, 1


def _timeout_from_env():
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"nnlite.distributed: {TIMEOUT_ENV} must be a positive number of "
                         f"seconds, got {value!r}")
    return seconds


class SingleProcess:
    """The group of one process: every collective returns its input."""
    rank, size, local_rank, local_size, hosts = 0, 1, 0, 1, 1
    library = "none"

    def __init__(self, timeout=None, on_timeout="abort"):
        self.timeout = _timeout_from_env() if timeout is None else float(timeout)
        self.on_timeout = on_timeout
        self.phase = None        # e.g. "step 13": said in every timeout message
        self.grad_weight = 1.0   # this rank's share of the global batch (SyncBatchNorm)

    @property
    def is_root(self):
        return self.rank == 0

    def describe(self):
        return "1 process (no MPI)"

    def broadcast_arrays(self, arrays, root=0, what="broadcast"):
        pass

    def allgather_rows(self, row, what="all-gather"):
        return np.asarray(row)[None]

    def ordered_sum(self, row, what="all-reduce"):
        return np.array(row, copy=True)

    def bcast_object(self, obj, root=0, what="broadcast"):
        return obj

    def gather_object(self, obj, root=0, what="gather"):
        return [obj]

    def barrier(self, what="barrier"):
        pass

    def abort(self, message, status=1):
        raise RuntimeError(message)


class MPIGroup(SingleProcess):
    """The processes of MPI_COMM_WORLD (mpi4py). Gradients travel on their own
    duplicate of the communicator (``grad_comm``) so that bucket messages in
    flight never mix with the control messages of the same step."""

    def __init__(self, comm, timeout=None, on_timeout="abort"):
        super().__init__(timeout, on_timeout)
        from mpi4py import MPI
        self.MPI = MPI
        self.world = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.control = comm.Dup()
        self.grad_comm = comm.Dup()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        names = self.gather_object(MPI.Get_processor_name(), root=0, what="host names")
        self.hosts = self.bcast_object(len(set(names)) if names else 0, what="host count")
        first_line = MPI.Get_library_version().strip().splitlines()[0]
        self.library = " ".join(first_line.replace("Version:", "").split()[:3]).rstrip(",")

    def describe(self):
        hosts = f"{self.hosts} host" + ("s" if self.hosts != 1 else "")
        return f"{self.size} ranks on {hosts} ({self.library})"

    # ---------------------------------------------------------------- waiting
    def wait(self, pending, what, deadline=None):
        """Wait for every (request, peer) of `pending`; peer is the rank the
        request depends on, or None when MPI cannot say (collectives)."""
        deadline = time.monotonic() + self.timeout if deadline is None else deadline
        pending = list(pending)
        pause = 0.0
        while pending:
            pending = [(request, peer) for request, peer in pending if not request.Test()]
            if not pending:
                return
            if time.monotonic() > deadline:
                self.timed_out(what, [peer for _, peer in pending])
            if pause:
                time.sleep(pause)
            # spin briefly, then back off to 2 ms: a waiting rank leaves the
            # cores to the ranks still computing (rank 0 evaluating, say)
            pause = min(max(pause * 2, 2e-5), 2e-3)

    def timed_out(self, what, peers=()):
        missing = sorted({peer for peer in peers if peer is not None and peer != self.rank})
        during = f" during {self.phase}" if self.phase else ""
        message = (f"nnlite.distributed: rank {self.rank}: {what}{during} did not complete "
                   f"within {self.timeout:g} s")
        if missing:
            ranks = ", ".join(str(r) for r in missing)
            message += (f"; nothing arrived from rank{'s' if len(missing) > 1 else ''} {ranks}, "
                        f"which died, hangs or stopped calling collectives")
        else:
            message += "; a rank died, hangs or stopped calling collectives"
        message += f" ({TIMEOUT_ENV} sets the limit); ending the job"
        if self.on_timeout == "raise":
            raise CollectiveTimeout(message, missing)
        self.abort(message)

    def abort(self, message, status=1):
        """Print `message` and end every process of the job (MPI_Abort)."""
        try:
            sys.stdout.flush()
            print("\n" + message, file=sys.stderr, flush=True)  # after any progress bar
            # MPI_Abort has mpiexec kill every process at once; give its I/O
            # forwarding a moment to pass on what was just printed
            time.sleep(ABORT_GRACE)
        finally:
            self.world.Abort(status)

    # ------------------------------------------------------------ collectives
    def broadcast_arrays(self, arrays, root=0, what="broadcast"):
        """Overwrite each array (NumPy, or CuPy through the host) with root's,
        packed into one message per dtype."""
        from nnlite import device as _device
        by_dtype = {}
        for array in arrays:
            by_dtype.setdefault(np.dtype(array.dtype).str, []).append(array)
        for group in by_dtype.values():
            host = [_device.to_numpy(a).reshape(-1) for a in group]
            flat = np.concatenate(host) if self.rank == root else \
                np.empty(sum(a.size for a in host), dtype=group[0].dtype)
            request = self.control.Ibcast(flat, root=root)
            self.wait([(request, root if self.rank != root else None)], what)
            if self.rank == root:
                continue
            offset = 0
            for array in group:
                piece = flat[offset:offset + array.size].reshape(array.shape)
                array[...] = _device.move(piece, _device.device_of(array))
                offset += array.size

    def allgather_rows(self, row, what="all-gather"):
        """(size, n): row r is rank r's `row` (a 1-D NumPy array)."""
        row = np.ascontiguousarray(row)
        rows = np.empty((self.size,) + row.shape, dtype=row.dtype)
        rows[self.rank] = row
        pending = [(self.control.Irecv(rows[p], source=p, tag=TAG_ROWS), p)
                   for p in range(self.size) if p != self.rank]
        pending += [(self.control.Isend(row, dest=p, tag=TAG_ROWS), p)
                    for p in range(self.size) if p != self.rank]
        self.wait(pending, what)
        return rows

    def ordered_sum(self, row, what="all-reduce"):
        """The sum over ranks of `row`, added in rank order: the same bits on
        every rank and in every run."""
        return sum_in_rank_order(self.allgather_rows(row, what))

    def bcast_object(self, obj, root=0, what="broadcast"):
        payload = pickle.dumps(obj) if self.rank == root else b""
        length = np.array([len(payload)], dtype=np.int64)
        peer = root if self.rank != root else None
        self.wait([(self.control.Ibcast(length, root=root), peer)], what)
        data = np.frombuffer(payload, dtype=np.uint8).copy() if self.rank == root else \
            np.empty(int(length[0]), dtype=np.uint8)
        self.wait([(self.control.Ibcast(data, root=root), peer)], what)
        return obj if self.rank == root else pickle.loads(data.tobytes())

    def gather_object(self, obj, root=0, what="gather"):
        """[each rank's obj] on root, None elsewhere."""
        if self.rank != root:
            payload = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
            length = np.array([payload.size], dtype=np.int64)
            self.wait([(self.control.Isend(length, dest=root, tag=TAG_LENGTH), root),
                       (self.control.Isend(payload, dest=root, tag=TAG_OBJECT), root)], what)
            return None
        lengths = {p: np.zeros(1, dtype=np.int64) for p in range(self.size) if p != root}
        self.wait([(self.control.Irecv(lengths[p], source=p, tag=TAG_LENGTH), p)
                   for p in lengths], what)
        data = {p: np.empty(int(n[0]), dtype=np.uint8) for p, n in lengths.items()}
        self.wait([(self.control.Irecv(data[p], source=p, tag=TAG_OBJECT), p) for p in data],
                  what)
        return [obj if p == root else pickle.loads(data[p].tobytes()) for p in range(self.size)]

    def barrier(self, what="barrier"):
        self.wait([(self.control.Ibarrier(), None)], what)


def sum_in_rank_order(rows):
    """rows[0] + rows[1] + ... in that order (a fixed order: reproducible bits)."""
    total = rows[0].copy()
    for row in rows[1:]:
        total += row
    return total


_group = {"current": None}


def init(timeout=None, on_timeout=None):
    """The process group of this process (created on the first call): an
    MPIGroup when launched by mpiexec/mpirun as one of several processes,
    else SingleProcess. `timeout` (seconds; default NNLITE_DIST_TIMEOUT or
    600) bounds every wait; `on_timeout` is "abort" (the default: print and
    MPI_Abort, the whole job ends) or "raise" (CollectiveTimeout). Later
    calls return the same group, changing what they are given."""
    if on_timeout not in (None, "abort", "raise"):
        raise ValueError(f"nnlite.distributed.init: on_timeout must be 'abort' or 'raise', "
                         f"got {on_timeout!r}")
    if timeout is not None and not float(timeout) > 0:
        raise ValueError(f"nnlite.distributed.init: timeout must be > 0 seconds, got {timeout!r}")
    group = _group["current"]
    if group is None:
        variable, size = launched_size()
        if size <= 1:
            group = SingleProcess(timeout, on_timeout or "abort")
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise RuntimeError(
                    f"nnlite.distributed: this process was launched as one of {size} "
                    f"({variable}={size}) but mpi4py is not installed, so it cannot reach the "
                    f"others; install the MPI extra (pip install \"nnlite[mpi]\": mpi4py and "
                    f"MPICH) or run a single process") from None
            group = MPIGroup(MPI.COMM_WORLD, timeout, on_timeout or "abort")
        _group["current"] = group
    else:
        if timeout is not None:
            group.timeout = float(timeout)
        if on_timeout is not None:
            group.on_timeout = on_timeout
    return group


def get_rank():
    return init().rank if _group["current"] is None else _group["current"].rank


def get_world_size():
    return init().size if _group["current"] is None else _group["current"].size


def is_distributed():
    """True when this process is one of several (it calls init())."""
    return get_world_size() > 1
