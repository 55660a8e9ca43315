"""The measurements behind the "auto" rule (README "Convolution and pooling").

    python scripts/winograd_measure.py            # per layer: im2col, F(2x2), F(4x4)
    python scripts/winograd_measure.py --step     # the compact CRNN's training step

Per layer: forward+backward at N=32, one thread, process time (robust to
other jobs on the machine), median of 5 runs interleaved across the
algorithms, as a share of im2col's time; and each algorithm's float32 error
(max |error| / max |value| over the output and both gradients) against
float64 im2col. --step: one compact-CRNN training step (batch 32, CTC, Adam)
under "im2col" and "auto", interleaved, at --threads threads.
"""
import argparse
import time

import numpy as np

import nnlite as nl
import nnlite.backends as backends
import nnlite.functional as F

# label: (N, C_in, H, W, C_out), 3x3 same
LAYERS = {"seed CRNN conv2": (32, 64, 16, 64, 128), "seed CRNN conv3": (32, 128, 8, 32, 256),
          "seed CRNN conv4": (32, 256, 4, 32, 256), "seed CRNN conv6": (32, 512, 4, 32, 512),
          "compact CRNN conv2": (32, 16, 16, 64, 32), "compact CRNN conv3": (32, 32, 8, 32, 64),
          "compact CRNN conv5": (32, 64, 4, 32, 128), "4->16": (32, 4, 32, 32, 16),
          "6->16": (32, 6, 32, 32, 16), "8->64": (32, 8, 32, 32, 64),
          "16->16": (32, 16, 32, 32, 16), "16->256": (32, 16, 16, 16, 256)}
VARIANTS = (("im2col", None), ("winograd", 2), ("winograd", 4))


def conv_forward_backward(x, w, algorithm, tile):
    backends.winograd_tile = tile
    xt, wt = nl.tensor(x, requires_grad=True), nl.tensor(w, requires_grad=True)
    start = time.process_time()
    y = F.conv2d(xt, wt, padding=1, algorithm=algorithm)
    y.backward(nl.tensor(np.ones_like(y.numpy())))
    return time.process_time() - start, (y.numpy(), xt.grad.numpy(), wt.grad.numpy())


def layers(repeats):
    rng = np.random.default_rng(0)
    print(f"{'layer':20s} {'im2col ms':>9s} {'F2/im2col':>9s} {'F4/im2col':>9s}  "
          f"error im2col / F2 / F4")
    for label, (n, c, h, width, k) in LAYERS.items():
        x = rng.standard_normal((n, c, h, width)).astype(np.float32)
        w = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
        times = {variant: [] for variant in VARIANTS}
        for _ in range(repeats):
            for variant in VARIANTS:
                times[variant].append(conv_forward_backward(x, w, *variant)[0])
        reference = conv_forward_backward(x.astype(np.float64), w.astype(np.float64),
                                          "im2col", None)[1]
        errors = []
        for variant in VARIANTS:
            got = conv_forward_backward(x, w, *variant)[1]
            errors.append(max(float(np.abs(g - r).max() / np.abs(r).max())
                              for g, r in zip(got, reference)))
        median = {variant: np.median(t) for variant, t in times.items()}
        base = median[VARIANTS[0]]
        print(f"{label:20s} {base * 1e3:9.1f} {median[VARIANTS[1]] / base:9.2f} "
              f"{median[VARIANTS[2]] / base:9.2f}  " + " / ".join(f"{e:.1e}" for e in errors),
              flush=True)
    backends.winograd_tile = None


def training_step(repeats):
    from nnlite.models import crnn, crnn_train
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 32, 128), dtype=np.float32)
    alphabet = crnn.alphabet(crnn.default_config()["blank"])
    texts = ["hello", "World", "2026", "testing", "abc", "recognition"] * 5 + ["a", "b"]
    targets, lengths = crnn.encode_batch(texts, alphabet)
    runs = {}
    for algorithm in ("im2col", "auto"):
        nl.manual_seed(0)
        model = crnn_train.build_sized(size="compact")
        runs[algorithm] = (model, nl.optim.Adam(model.parameters(), lr=1e-3), [])

    def step(algorithm):
        backends.conv_algorithm = algorithm
        model, optimizer, times = runs[algorithm]
        start, wall = time.process_time(), time.perf_counter()
        optimizer.zero_grad()
        loss = crnn.ctc_loss(model(nl.tensor(x)), targets, lengths, blank=model.blank)
        loss.backward()
        optimizer.step()
        times.append((time.process_time() - start, time.perf_counter() - wall))

    for algorithm in runs:  # warm-up
        step(algorithm)
        runs[algorithm][2].clear()
    for _ in range(repeats):
        for algorithm in runs:
            step(algorithm)
    medians = {a: np.median(np.array(r[2]), axis=0) for a, r in runs.items()}
    for algorithm, (process, wall) in medians.items():
        print(f"{algorithm:7s} process {process * 1e3:.0f} ms, wall {wall * 1e3:.0f} ms")
    ratio = medians["auto"] / medians["im2col"]
    print(f"auto / im2col: process {ratio[0]:.2f}, wall {ratio[1]:.2f}")
    backends.conv_algorithm = "auto"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", action="store_true", help="time the training step instead")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    nl.set_num_threads(args.threads)
    if args.step:
        training_step(args.repeats or 8)
    else:
        layers(args.repeats or 5)


if __name__ == "__main__":
    main()
