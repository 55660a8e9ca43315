"""Steps per second of CRNN training, alone or as ranks under mpiexec.

    NNLITE_NUM_THREADS=2 python scripts/distributed_scaling.py            # 1 process x 2 threads
    NNLITE_NUM_THREADS=1 mpiexec -n 2 python scripts/distributed_scaling.py   # 2 ranks x 1 thread

The README's compact CRNN on synthetic words at a global batch of --batch
(split over the ranks), Adam, the Trainer's step; no evaluation. Prints
the median step time over the steps after --warmup, steps/s, and (ranks)
the time each step spent waiting for gradient buckets after backward.
Figures and the model of larger jobs: docs/distributed.md.
"""
import argparse
import os
import statistics
import tempfile
import time

import nnlite as nl
from nnlite import distributed
from nnlite.models import crnn_train
from nnlite.training import Trainer


class TimedTask:
    def __init__(self, task):
        self.task, self.stamps = task, []
        self.metric_name, self.higher_is_better = task.metric_name, task.higher_is_better

    def loss(self, model, batch):
        self.stamps.append(time.perf_counter())
        return self.task.loss(model, batch)

    def evaluate(self, model, loader):
        return self.task.evaluate(model, loader)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32, help="global batch")
    parser.add_argument("--size", default="compact", choices=("compact", "seed"))
    parser.add_argument("--sync-bn", action="store_true")
    parser.add_argument("--reduction", default="ordered", choices=("ordered", "allreduce"))
    parser.add_argument("--bucket-mb", type=float, default=distributed.DEFAULT_BUCKET_MB)
    args = parser.parse_args()
    group = distributed.init()
    recipe = crnn_train.training_recipe(data="synth", batch=args.batch, size=args.size,
                                        val_size=8, show=0)
    if args.sync_bn:
        distributed.convert_sync_batchnorm(recipe.model, group)
    loader = distributed.shard_loader(recipe.train_loader, group)
    reducer = distributed.Reducer(recipe.model.parameters(), group, reduction=args.reduction,
                                  bucket_cap_mb=args.bucket_mb, announce=False)
    task = TimedTask(recipe.task)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(recipe.model, recipe.optimizer, task, loader, None, steps=args.steps,
                          out_dir=os.path.join(out, "run"), eval_every=args.steps + 1,
                          log_every=args.steps, progress=False, distributed=reducer)
        trainer.fit()
    stamps = task.stamps[args.warmup:]
    step = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
    waits = group.gather_object(reducer.wait_seconds / max(reducer.syncs, 1))
    if group.is_root:
        print(f"{group.describe()}, {nl.get_num_threads()} thread(s) per rank, global batch "
              f"{args.batch}, {args.size} CRNN: median step {step * 1000:.0f} ms = "
              f"{1 / step:.2f} steps/s ({args.batch / step:.0f} samples/s)")
        if group.size > 1:
            print(f"  {reducer.describe()}")
            print("  waiting for gradients after backward, per step: "
                  + ", ".join(f"rank {r} {w * 1000:.1f} ms" for r, w in enumerate(waits)))


if __name__ == "__main__":
    main()
