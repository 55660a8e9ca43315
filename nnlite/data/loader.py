"""DataLoader: batches of a map-style dataset, shuffled by (seed, epoch),
prepared ahead by background threads, resumable mid-epoch.

    loader = DataLoader(dataset, batch_size=32, shuffle=True, seed=0)
    for images, texts in loader: ...
    state = loader.state_dict()        # {"seed", "epoch", "batch"}: the NEXT batch
    loader.load_state_dict(state)      # a fresh loader continues from that batch

The order of epoch e is a permutation drawn from (seed, e) only, so a resumed
run sees exactly the batches an uninterrupted one would have seen. The state
advances when a batch is HANDED to the consumer (not when a thread prepares
it), so prefetching never skips data. Iterating again after stopping early
continues where the last batch left off; ``set_epoch(e)`` restarts at epoch e.

Data-parallel training (nnlite.distributed) gives each of `num_replicas`
processes the loader with its `rank`, as PyTorch's DistributedSampler does:
``batch_size`` is then the batch of ONE rank, and batch b of an epoch is the
global batch ``order[b*G:(b+1)*G]`` (G = batch_size * num_replicas, the same
order on every rank) cut into num_replicas consecutive pieces, rank r taking
the r-th. So 2 ranks at batch_size B see, step for step, exactly the samples
of one process at batch_size 2B, and an epoch covers the dataset once.
Worker processes (``worker_type="process"``) serve datasets whose items
cost CPU time in Python, such as rendered text: threads share one
interpreter lock, so they overlap only what releases it. Each process gets
its own copy of the dataset (it must pickle) and returns whole batches; the
order, resume and sharding rules are the same as with threads, and since
items are functions of their index the batches are identical.

A last, partial global batch is cut as evenly as possible (np.array_split);
one with fewer samples than ranks is dropped, since a rank cannot train on
an empty batch. ``last_shard_fraction`` is this rank's share of the global
batch it last handed out, the weight of its gradient in the global mean.
"""
import collections
import concurrent.futures
import math
import multiprocessing
import numbers
import signal
import sys

import numpy as np


class DataLoaderError(RuntimeError):
    """A dataset item or a collate call failed in a worker thread; `index` is the
    sample index (None when collating failed) and __cause__ the original error."""

    def __init__(self, message, index=None):
        super().__init__(message)
        self.index = index

    def __reduce__(self):  # keeps `index` when raised in a worker process
        return type(self), (str(self), self.index)


WORKER_TYPES = ("thread", "process")


def load_batch(dataset, collate, epoch, batch, indices):
    """collate([dataset[i] for i in indices]), with errors that say which
    sample of which batch failed (a DataLoaderError)."""
    samples = []
    for index in indices:
        try:
            samples.append(dataset[index])
        except Exception as error:
            raise DataLoaderError(f"DataLoader: dataset[{index}] (epoch {epoch}, batch "
                                  f"{batch}) raised {type(error).__name__}: {error}",
                                  index=index) from error
    try:
        return collate(samples)
    except Exception as error:
        raise DataLoaderError(f"DataLoader: collating batch {batch} of epoch {epoch} "
                              f"(indices {indices[:8]}{'...' if len(indices) > 8 else ''}) "
                              f"raised {type(error).__name__}: {error}") from error


_WORKER = {}  # in a worker process: the dataset and collate it was started with


def _start_worker(dataset, collate):
    # Ctrl-C reaches every process of the terminal's group: the training
    # process stops the run (and saves last.h5) and shuts the workers down;
    # a worker that raised KeyboardInterrupt itself would only print a
    # traceback over that message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["dataset"], _WORKER["collate"] = dataset, collate


def _load_in_worker(epoch, batch, indices):
    return load_batch(_WORKER["dataset"], _WORKER["collate"], epoch, batch, indices)


def _process_context():
    """forkserver on Linux: a fork of a process that holds a CUDA context (a
    GPU training run) is unsafe, and forkserver children come from a clean
    server; spawn where there is no forkserver."""
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


INT64_RANGE = (-2 ** 63, 2 ** 63 - 1)


def _is_numeric(value):
    """A number or an array of numbers: what default_collate stacks."""
    if isinstance(value, (str, bytes)):  # np.str_ and np.bytes_ are np.generic too
        return False
    return isinstance(value, (numbers.Number, np.bool_, np.ndarray, np.generic))


def _stack_numeric(samples):
    """One array of all samples, typed as numpy promotes them together (so
    [1, 2.5] is float, [True, 2] integer), never by the first sample alone."""
    strangers = sorted({type(s).__name__ for s in samples if not _is_numeric(s)})
    if strangers:
        raise TypeError(f"default_collate: the batch mixes numbers and "
                        f"{', '.join(strangers)}; give every sample the same kind of field")
    shapes = {np.shape(s) for s in samples}
    if len(shapes) != 1:
        raise ValueError(f"default_collate: cannot stack arrays of different shapes "
                         f"{sorted(shapes)}")
    too_large = [s for s in samples if isinstance(s, int) and not isinstance(s, bool)
                 and not INT64_RANGE[0] <= s <= INT64_RANGE[1]]
    if too_large:
        # numpy would hold such an int as uint64 or object and promote the
        # whole batch to float64, silently rounding every other integer
        raise ValueError(f"default_collate: integer {too_large[0]} is outside int64")
    batch = np.stack(samples)
    return batch.astype(np.float32) if batch.dtype.kind == "f" else batch


def default_collate(samples):
    """Stack a list of samples into a batch.

    Tuples/lists are collated field by field (a tuple back), dicts key by key.
    Numbers and arrays (Python or numpy) are stacked into one array whose type
    is what numpy promotes all of them to, as PyTorch's default_collate does:
    all bools stay bool, integers keep their promoted integer type (Python
    ints as int64), and a batch with any float becomes float32, nnlite's
    compute type (where PyTorch may keep float64). Strings and anything else
    stay a list."""
    if not samples:
        raise ValueError("default_collate: got an empty list of samples")
    first = samples[0]
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        widths = {len(s) for s in samples}
        if len(widths) != 1:
            raise ValueError(f"default_collate: samples have different numbers of fields "
                             f"{sorted(widths)}")
        return tuple(default_collate(list(field)) for field in zip(*samples))
    if _is_numeric(first):
        return _stack_numeric(samples)
    return list(samples)  # strings and other objects


class DataLoader:
    """Batches of `dataset` (see the module docstring).

    len() is the number of batches per epoch. `prefetch` batches are prepared
    ahead by `workers` threads, or processes with worker_type="process"
    (prefetch=0 loads in the consumer's thread).
    `num_replicas` and `rank` shard every batch across data-parallel
    processes (see the module docstring)."""

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, drop_last=False,
                 collate=default_collate, prefetch=2, workers=1, num_replicas=1, rank=0,
                 worker_type="thread"):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if prefetch < 0 or workers < 1:
            raise ValueError(f"DataLoader: prefetch must be >= 0 and workers >= 1, got "
                             f"prefetch={prefetch}, workers={workers}")
        if worker_type not in WORKER_TYPES:
            raise ValueError(f"DataLoader: worker_type must be one of {WORKER_TYPES}, got "
                             f"{worker_type!r}")
        for name, value, low in (("num_replicas", num_replicas, 1), ("rank", rank, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"DataLoader: {name} must be an int >= {low}, got {value!r}")
        if rank >= num_replicas:
            raise ValueError(f"DataLoader: rank {rank} is not one of the {num_replicas} "
                             f"replicas (0..{num_replicas - 1})")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.last_shard_fraction = 1.0 / self.num_replicas
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.collate = collate
        self.prefetch = int(prefetch)
        self.workers = int(workers)
        self.worker_type = worker_type
        self.epoch = 0
        self.batch = 0  # the next batch of self.epoch to hand out

    @property
    def global_batch_size(self):
        """The samples of one step over all replicas (batch_size * num_replicas)."""
        return self.batch_size * self.num_replicas

    def __len__(self):
        n, size = len(self.dataset), self.global_batch_size
        if self.drop_last:
            return n // size
        # a last global batch too small to give every replica a sample is dropped
        return n // size + (1 if n % size >= self.num_replicas else 0)

    def epoch_order(self, epoch):
        """The sample indices of `epoch` in the order they are served."""
        n = len(self.dataset)
        if not self.shuffle:
            return range(n)  # lazy: a synthetic stream may be 2**40 items long
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def batch_indices(self, epoch, batch):
        """This rank's sample indices in batch `batch` of `epoch`."""
        return self._shard(self.epoch_order(epoch), batch)[0]

    def _shard(self, order, batch):
        size = self.global_batch_size
        whole = order[batch * size:(batch + 1) * size]
        if len(whole) == size:
            mine = whole[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        else:
            mine = np.array_split(whole, self.num_replicas)[self.rank]
        return [int(i) for i in mine], len(mine) / max(len(whole), 1)

    # ---------------------------------------------------------------- state

    def set_epoch(self, epoch):
        """Start the next iteration at the beginning of `epoch`."""
        self.epoch, self.batch = int(epoch), 0

    def state_dict(self):
        """{"seed", "epoch", "batch"}: the next batch iteration will yield."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state):
        missing = {"seed", "epoch", "batch"} - set(state)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: state lacks {sorted(missing)}; "
                           f"got keys {sorted(state)}")
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if epoch < 0 or not 0 <= batch <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: epoch {epoch}, batch {batch} is not "
                             f"a position in epochs of {len(self)} batches")
        self.seed = int(state["seed"])
        self.epoch, self.batch = (epoch + 1, 0) if batch == len(self) else (epoch, batch)

    def _advance(self, fraction):
        self.last_shard_fraction = fraction
        self.batch += 1
        if self.batch >= len(self):
            self.epoch, self.batch = self.epoch + 1, 0

    # ---------------------------------------------------------------- iteration

    def _load(self, epoch, batch, indices):
        return load_batch(self.dataset, self.collate, epoch, batch, indices)

    def __iter__(self):
        return _BatchIterator(self)


class _BatchIterator:
    """Serves the rest of the loader's current epoch; closes its threads when
    exhausted, closed, or garbage-collected (a consumer that breaks early)."""

    def __init__(self, loader):
        self.loader = loader
        self.epoch = loader.epoch
        self.order = loader.epoch_order(self.epoch)
        self.start, self.served = loader.batch, 0
        self.next_to_submit = loader.batch
        self.end = len(loader)
        self.pending = collections.deque()
        self.executor = None
        self.closed = False
        self.load = loader._load
        if loader.prefetch > 0 and loader.worker_type == "process":
            self.executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=loader.workers, mp_context=_process_context(),
                initializer=_start_worker, initargs=(loader.dataset, loader.collate))
            self.load = _load_in_worker
            self._fill()
        elif loader.prefetch > 0:
            self.executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=loader.workers, thread_name_prefix="nnlite-data")
            self._fill()

    def _indices(self, batch):
        return self.loader._shard(self.order, batch)[0]

    def _fill(self):
        while len(self.pending) < self.loader.prefetch and self.next_to_submit < self.end:
            batch = self.next_to_submit
            self.pending.append(self.executor.submit(self.load, self.epoch, batch,
                                                     self._indices(batch)))
            self.next_to_submit += 1

    def __iter__(self):
        return self

    def __next__(self):
        loader = self.loader
        if self.closed or self.next_batch >= self.end or \
                (loader.epoch, loader.batch) != (self.epoch, self.next_batch):
            # done, closed, or the loader was moved (set_epoch/load_state_dict);
            # the consumer's thread may wait here for idle workers to exit
            self.close(wait=True)
            raise StopIteration
        if self.executor is None:
            result = loader._load(self.epoch, self.next_batch, self._indices(self.next_batch))
        else:
            future = self.pending.popleft()
            try:
                result = future.result()
            except BaseException:
                self.close()
                raise
            self._fill()
        loader._advance(self.loader._shard(self.order, self.next_batch)[1])
        self.served += 1
        return result

    @property
    def next_batch(self):
        return self.start + self.served

    def close(self, wait=False):
        """Cancel the batches not started and let the threads go; wait=True
        joins them (never from __del__, which may run on a worker thread)."""
        self.closed = True
        executor, self.executor = getattr(self, "executor", None), None
        if executor is not None:
            for future in self.pending:
                future.cancel()
            self.pending.clear()
            executor.shutdown(wait=wait, cancel_futures=True)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
