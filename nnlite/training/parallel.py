"""What a Trainer does differently as one rank of a data-parallel job.

The Trainer talks to one of two objects with the same methods:
``SingleProcess`` (the default: every method is the identity) and
``DataParallel`` (nnlite.distributed underneath). As one of several ranks:

* parameters and buffers start as rank 0's (broadcast), and each rank draws
  dropout masks from its own seed (rank 0 keeps the run's seed);
* each step, rank 0's buffers go to every rank (PyTorch's broadcast_buffers),
  the gradients are averaged weighted by each rank's share of the global
  batch, and the logged loss and statistics are the global batch's means;
* rank 0 alone evaluates and writes files, then shares the metrics, so an
  lr schedule on the validation metric moves every rank alike;
* a Ctrl-C (mpiexec forwards SIGINT to every rank) or a SIGTERM that reaches
  a rank is noted, not raised: the flag travels with the step's loss, and
  all ranks stop after the same step, rank 0 saving last.h5 with every
  rank's random generators.
  Alone, a SIGTERM raises KeyboardInterrupt as Ctrl-C does.
"""

import numpy as np

from nnlite.training import state as _state


class SingleProcess:
    rank, size, is_root = 0, 1, True

    def check(self, op, train_loader):
        pass

    def start(self, model):
        pass

    def rank_seed(self, seed):
        return seed

    def before_backward(self, step, train_loader):
        pass

    def after_backward(self):
        pass

    def summarize(self, loss_value, stats):
        return loss_value, stats, False

    def share(self, value, what):
        return value

    def gather_rng(self, rng):
        return None

    def resume_rng(self, meta, seed, step):
        return meta["rng"]

    def interrupts(self):
        return _state.terminate_as_interrupt()


def make_parallel(distributed):
    """None or a one-process group -> SingleProcess; a ProcessGroup or a
    Reducer -> DataParallel."""
    if distributed is None:
        return SingleProcess()
    group = getattr(distributed, "group", distributed)
    if not hasattr(group, "size") or not hasattr(group, "rank"):
        raise TypeError(f"Trainer: distributed must be None, an nnlite.distributed process "
                        f"group or Reducer, got {type(distributed).__name__}")
    if group.size == 1:
        return SingleProcess()
    return DataParallel(group, distributed if hasattr(distributed, "prepare") else None)


class DataParallel(SingleProcess):
    def __init__(self, group, reducer=None):
        self.group, self.reducer = group, reducer
        self.rank, self.size, self.is_root = group.rank, group.size, group.rank == 0
        self.model, self.interrupted = None, False

    def check(self, op, train_loader):
        replicas = getattr(train_loader, "num_replicas", None)
        if replicas is not None and replicas != self.size:
            raise ValueError(f"{op}: train_loader is sharded over {replicas} rank(s) but the "
                             f"job has {self.size}; give each rank "
                             f"nnlite.distributed.shard_loader(loader)")

    def start(self, model):
        from nnlite import distributed
        self.model = model
        self.group.phase = "the start of training"
        distributed.broadcast_parameters(model, group=self.group)
        if self.reducer is None:
            self.reducer = distributed.Reducer(model.parameters(), self.group)

    def rank_seed(self, seed):
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def before_backward(self, step, train_loader):
        self.group.phase = f"step {step}"
        buffers = [b.data for b in self.model.buffers() if b is not None]
        if buffers:
            self.group.broadcast_arrays(buffers, what="the broadcast of rank 0's buffers")
        self.reducer.prepare(getattr(train_loader, "last_shard_fraction", None))

    def after_backward(self):
        self.reducer.finish()

    def summarize(self, loss_value, stats):
        keys = sorted(stats or {})
        weight = self.reducer.weight
        row = np.array([weight * loss_value] + [weight * float(stats[k]) for k in keys]
                       + [float(self.interrupted)])
        total = self.group.ordered_sum(row, what="the sum of the step's losses")
        return float(total[0]), {k: float(v) for k, v in zip(keys, total[1:-1])}, total[-1] > 0

    def share(self, value, what):
        return self.group.bcast_object(value, root=0, what=what)

    def gather_rng(self, rng):
        return self.group.gather_object(rng, root=0, what="the gather of the random states")

    def resume_rng(self, meta, seed, step):
        saved = meta.get("rng_ranks")
        if isinstance(saved, list) and len(saved) == self.size:
            return saved[self.rank]
        if self.rank == 0:
            return meta["rng"]
        # saved by another number of processes: this rank starts a new stream
        _state.seed_everything(int(np.random.SeedSequence([seed, self.rank, step])
                                   .generate_state(1)[0]))
        return _state.capture_rng()

    def interrupts(self):
        def note(signum, frame):
            self.interrupted = True

        return _state.handle_signals(note)
