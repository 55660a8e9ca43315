"""One network's training step (or inference) in nnlite beside the bench's
PyTorch replica, in process time, then nnlite's step under cProfile.

    python scripts/profile_model_step.py digits --threads 1
    python scripts/profile_model_step.py compact --threads 2 --batch 32
    python scripts/profile_model_step.py seed --infer --batch 1 --rounds 20

Models: seed / compact (the CRNN sizes), reader (the attention reader),
digits (the digit-sequence model); the setups are bench/cases' (same weights
in both libraries). Process time counts the CPU both libraries used, so it is
steadier than wall time on a machine that other jobs share; at more than one
thread it adds up the threads' time. Needs PyTorch.
"""
import argparse
import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nnlite as nl  # noqa: E402

DEFAULT_BATCH = {"seed": 32, "compact": 32, "reader": 32, "digits": 50}


def setup_of(model):
    if model in ("seed", "compact"):
        from bench.cases.models import _LazySetup, _compact_crnn, _seed_crnn
        return _LazySetup("cpu", _compact_crnn if model == "compact" else _seed_crnn)
    if model == "digits":
        from bench.cases.models_digits import DigitsSetup
        return DigitsSetup("cpu")
    from bench.cases.models_attention import ReaderSetup
    return ReaderSetup("cpu")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(DEFAULT_BATCH))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--infer", action="store_true", help="inference instead of a step")
    parser.add_argument("--rounds", type=int, default=5, help="calls per timing")
    parser.add_argument("--top", type=int, default=18, help="profile lines shown")
    args = parser.parse_args(argv)
    if args.threads:
        nl.set_num_threads(args.threads)
    import torch
    torch.set_num_threads(nl.get_num_threads())
    n = args.batch or DEFAULT_BATCH[args.model]
    setup = setup_of(args.model)
    ours = setup.nnlite_infer if args.infer else setup.nnlite_step
    theirs = setup.torch_infer if args.infer else setup.torch_step
    for _ in range(2):  # warm-up: builds, first-use compiles, buffers
        ours(n)
        theirs(n)

    def timed(fn):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.rounds):
            fn(n)
        return ((time.process_time() - cpu) / args.rounds * 1e3,
                (time.perf_counter() - wall) / args.rounds * 1e3)

    print(f"{args.model}, {'inference' if args.infer else 'training step'}, N={n}, "
          f"{nl.get_num_threads()} thread(s) each; ms per call")
    for _ in range(3):
        a, b = timed(ours), timed(theirs)
        print(f"nnlite cpu {a[0]:.1f} wall {a[1]:.1f}   torch cpu {b[0]:.1f} wall {b[1]:.1f}"
              f"   nnlite/torch (cpu) {a[0] / b[0]:.2f}")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.rounds):
        ours(n)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
