"""F.relu forward + backward through autograd, the NumPy formulation F.relu
used before the activation kernels ("old": x * (x > 0), gy * mask) against
the kernels ("new"), at the digit-sequence model's conv1 output, float32.

    NNLITE_NUM_THREADS=1 python scripts/relu_ab.py --threads 1 2 --rounds 15

Old and new alternate call by call, so load from other jobs on shared cores
falls on both alike; medians of process time (all threads' CPU) and wall time.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nnlite as nl  # noqa: E402
import nnlite.functional as F  # noqa: E402


class NumpyReLU(nl.Function):
    """F.relu as it was before the activation kernels."""

    @staticmethod
    def forward(ctx, x):
        positive = x > 0
        ctx.save_for_backward(positive)
        return x * positive

    @staticmethod
    def backward(ctx, gy):
        positive, = ctx.saved_tensors
        return gy * positive


def step(relu, x_host, gy):
    x = nl.tensor(x_host, requires_grad=True)
    relu(x).backward(gy)
    return x.grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--shape", type=int, nargs="+", default=[50, 8, 128, 256])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal(args.shape, dtype=np.float32)
    gy = nl.tensor(rng.standard_normal(args.shape, dtype=np.float32))
    impls = {"old numpy": NumpyReLU.apply, "new kernel": F.relu}
    a, b = (step(fn, x_host, gy).numpy() for fn in impls.values())
    assert a.tobytes() == b.tobytes(), "old and new gradients differ"
    print(f"F.relu forward+backward, {tuple(args.shape)} float32, median of {args.rounds} "
          f"interleaved rounds, ms")
    for threads in args.threads:
        nl.set_num_threads(threads)
        times = {name: ([], []) for name in impls}
        for fn in impls.values():  # warm-up
            step(fn, x_host, gy)
        for round_ in range(args.rounds):
            order = list(impls) if round_ % 2 == 0 else list(impls)[::-1]
            for name in order:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                step(impls[name], x_host, gy)
                times[name][0].append((time.process_time() - cpu0) * 1e3)
                times[name][1].append((time.perf_counter() - wall0) * 1e3)
        for name, (cpu, wall) in times.items():
            print(f"threads {threads}  {name:10s}  process {statistics.median(cpu):7.1f}  "
                  f"wall {statistics.median(wall):7.1f}")


if __name__ == "__main__":
    main()
