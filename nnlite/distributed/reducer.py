"""Gradient all-reduce in buckets, started from inside backward.

    group = nnlite.distributed.init()
    broadcast_parameters(model)              # every rank starts from rank 0's weights
    reducer = Reducer(model.parameters())
    for batch in loader:                      # loader sharded by rank
        reducer.prepare(weight=loader.last_shard_fraction)
        loss = task_loss(model, batch)
        loss.backward()                       # buckets travel while backward runs
        reducer.finish()                      # no-op when backward already waited
        optimizer.step()

The parameters are cut into buckets of about `bucket_cap_mb` MiB, in the
reverse of their registration order (the order their gradients tend to be
completed by backward). Each parameter carries a grad-ready hook
(Tensor.register_grad_ready_hook): when the last parameter of a bucket is
ready and every earlier bucket has been started, the bucket's non-blocking
reduction starts, so communication overlaps the rest of backward. At the
end of backward a queued callback waits for every bucket and writes the
averaged gradient back into each ``.grad``. Buckets start in a fixed order
on every rank, as MPI requires of collectives.

Each rank contributes ``weight * grad`` with weight its share of the global
batch (1/size for equal shards), so the result is the gradient of the mean
loss over the global batch. A parameter that got no gradient on some rank
contributes zeros there; one that got none on any rank keeps ``.grad =
None``, so an optimiser skips it as it would in one process.
"""
import contextlib
import time

import numpy as np

from nnlite import device as _device
from nnlite.distributed.group import init
from nnlite.distributed.transport import choose_transport
from nnlite.tensor import Tensor, queue_backward_callback

DEFAULT_BUCKET_MB = 1.0  # PyTorch: 25 MiB (1 MiB first); small, so the compact CRNN gets 3


class _Bucket:
    """Consecutive parameters of one device and dtype, in one flat buffer:
    their weighted gradients, then one presence flag per parameter."""

    def __init__(self, index, params):
        self.index, self.params = index, params
        self.offsets, offset = [], 0
        for param in params:
            self.offsets.append(offset)
            offset += param.numel()
        self.numel = offset
        xp = _device.xp(params[0].device)
        self.flat = xp.zeros(offset + len(params), dtype=params[0].dtype)
        self.filled = [False] * len(params)
        self.waiting = len(params)
        self.pending = None

    def reset(self):
        self.filled = [False] * len(self.params)
        self.waiting = len(self.params)
        self.pending = None

    def fill(self, slot, weight):
        if self.filled[slot]:
            return
        param, start = self.params[slot], self.offsets[slot]
        view = self.flat[start:start + param.numel()]
        if param.grad is None:
            view[...] = 0
            self.flat[self.numel + slot] = 0
        else:
            grad = param.grad.data.reshape(-1)
            if weight == 1.0:
                view[...] = grad
            else:
                _device.xp_of(grad).multiply(grad, weight, out=view)
            self.flat[self.numel + slot] = 1
        self.filled[slot] = True
        self.waiting -= 1

    def scatter(self, total):
        flags = _device.to_numpy(total[self.numel:])  # one copy, not one sync per flag
        for param, start, present in zip(self.params, self.offsets, flags):
            if present:
                param.grad = Tensor(total[start:start + param.numel()].reshape(param.shape))
            else:
                param.grad = None


class Reducer:
    """Averages the gradients of `parameters` over the ranks of `group`
    (default: nnlite.distributed.init()) after each backward; see the module
    docstring. `reduction` is "ordered" (reproducible bits) or "allreduce";
    `transport` "auto", "mpi", "nccl" or a transport object (see
    nnlite/distributed/transport.py). With one rank it does nothing."""

    def __init__(self, parameters, group=None, bucket_cap_mb=DEFAULT_BUCKET_MB,
                 reduction="ordered", transport="auto", announce=True):
        self.group = init() if group is None else group
        seen, params = set(), []
        for param in parameters:
            if id(param) not in seen and param.requires_grad:
                seen.add(id(param))
                params.append(param)
        if not bucket_cap_mb > 0:
            raise ValueError(f"Reducer: bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        self.params, self.bucket_cap_mb, self.reduction = params, bucket_cap_mb, reduction
        self.weight = 1.0 / self.group.size
        self.enabled = True
        self.syncs = 0          # completed rounds
        self.wait_seconds = 0.0  # spent after backward waiting for buckets (and summing)
        self.buckets, self._where, self._hooks = [], {}, []
        self._state, self._next, self._queued = "done", 0, False
        self.transport, self.note = None, None
        if self.group.size == 1:
            return
        devices = {p.device for p in params}
        if len(devices) > 1:
            raise ValueError(f"Reducer: the parameters are on several devices {sorted(devices)}; "
                             f"move the model to one device first")
        device = devices.pop() if devices else "cpu"
        if isinstance(transport, str):
            self.transport, self.note = choose_transport(self.group, device, reduction,
                                                         transport)
        else:  # an object with start/progress/finish/describe (tests, other transports)
            self.transport = transport
        self._make_buckets(int(bucket_cap_mb * 2 ** 20))
        self._hooks = [p.register_grad_ready_hook(self._grad_ready) for p in params]
        if announce and self.group.is_root:
            print(f"nnlite.distributed: {self.describe()}", flush=True)

    def describe(self):
        if self.transport is None:
            return "1 process: no gradient reduction"
        nbytes = sum(b.numel * b.flat.itemsize for b in self.buckets)
        size = f"{nbytes / 2 ** 20:.1f} MiB" if nbytes >= 2 ** 20 else f"{nbytes / 1024:.1f} KiB"
        text = (f"{self.group.describe()}; gradients by {self.transport.describe()}; "
                f"{len(self.buckets)} bucket{'s' if len(self.buckets) != 1 else ''} "
                f"({size} in all, cap {self.bucket_cap_mb:g} MiB)")
        return text + (f"; NCCL not used: {self.note}" if self.note else "")

    def _make_buckets(self, cap_bytes):
        current, size, key = [], 0, None
        for param in reversed(self.params):
            param_key = (param.device, np.dtype(param.dtype).str)
            nbytes = param.numel() * param.data.itemsize
            if current and (param_key != key or size + nbytes > cap_bytes):
                self._add_bucket(current)
                current, size = [], 0
            current.append(param)
            size += nbytes
            key = param_key
        if current:
            self._add_bucket(current)

    def _add_bucket(self, params):
        bucket = _Bucket(len(self.buckets), params)
        for slot, param in enumerate(params):
            self._where[id(param)] = (bucket, slot)
        self.buckets.append(bucket)

    # ------------------------------------------------------------- a round
    def prepare(self, weight=None):
        """Before a backward whose gradients are to be averaged: `weight` is
        this rank's share of the global batch (default 1/size)."""
        self.weight = 1.0 / self.group.size if weight is None else float(weight)
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"Reducer.prepare: weight must be in [0, 1], got {weight!r}")
        self.group.grad_weight = self.weight
        self._begin()

    def _begin(self):
        for bucket in self.buckets:
            bucket.reset()
        self._state, self._next, self._queued = "armed", 0, False

    def _grad_ready(self, param):
        if not self.enabled:
            return
        if self._state == "done":  # a backward without prepare(): a new round
            self._begin()
        self._state = "running"
        if not self._queued:
            queue_backward_callback(self._complete)
            self._queued = True
        bucket, slot = self._where[id(param)]
        bucket.fill(slot, self.weight)
        self._start_ready_buckets()
        self.transport.progress()

    def _start_ready_buckets(self):
        while self._next < len(self.buckets) and self.buckets[self._next].waiting == 0:
            bucket = self.buckets[self._next]
            what = (f"gradient reduction (bucket {bucket.index + 1} of {len(self.buckets)}, "
                    f"round {self.syncs + 1})")
            bucket.pending = self.transport.start(bucket.flat, bucket.index, what)
            self._next += 1

    def _complete(self):
        """Start what is left (parameters backward never reached contribute
        their current .grad), wait for every bucket in order, write back."""
        for bucket in self.buckets:
            for slot in range(len(bucket.params)):
                bucket.fill(slot, self.weight)
        self._start_ready_buckets()
        waited = time.perf_counter()
        for bucket in self.buckets:
            bucket.scatter(self.transport.finish(bucket.pending))
            bucket.pending = None
        self.wait_seconds += time.perf_counter() - waited
        self._state = "done"
        self.syncs += 1

    def finish(self):
        """Call after backward: averages the gradients if no hook did (a loss
        that reached no parameter); otherwise nothing is left to do."""
        if self.transport is not None and self.enabled and self._state != "done":
            self._complete()

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate local gradients (gradient
        accumulation); the first one after it averages the accumulated sum."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def remove(self):
        """Unregister the hooks: the parameters train alone again."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []


def broadcast_parameters(module, root=0, group=None):
    """Overwrite every parameter and buffer of `module` with rank `root`'s, so
    that all ranks start from the same weights whatever their seeds."""
    group = init() if group is None else group
    arrays = [p.data for p in module.parameters()] + \
        [b.data for b in module.buffers() if b is not None]
    group.broadcast_arrays(arrays, root=root, what="the broadcast of the initial parameters")

