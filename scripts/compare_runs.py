"""Training runs side by side: the training loss (log scale) and each
validation metric against step, one line per run, from their metrics.json.

    python scripts/compare_runs.py runs/a runs/b --labels im2col auto --out compare.png
    python scripts/compare_runs.py runs/a runs/b --metrics word_accuracy --out compare.png

A run without training-loss rows (metrics.json "train") only adds its
validation curves.
"""
import argparse
import json
import os

from nnlite.training.plots import _figure, _save_atomic


def load(run):
    with open(os.path.join(run, "metrics.json")) as f:
        return json.load(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (each with metrics.json)")
    parser.add_argument("--labels", nargs="+", default=None, help="one per run")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="validation metrics to plot (default: every one logged)")
    args = parser.parse_args(argv)
    labels = args.labels or [os.path.basename(os.path.normpath(r)) for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"--labels: {len(labels)} given for {len(args.runs)} runs")
    reports = [load(run) for run in args.runs]
    metrics = args.metrics or sorted({key for report in reports for row in report.get("eval", [])
                                      for key in row} - {"step", "loss"})
    figure = _figure(5 * (1 + len(metrics)), 4)
    loss_axes = figure.add_subplot(1, 1 + len(metrics), 1)
    for label, report in zip(labels, reports):
        rows = report.get("train", [])
        loss_axes.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=label,
                       linewidth=0.8)
    loss_axes.set_yscale("log")
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("training loss")
    loss_axes.legend()
    loss_axes.grid(alpha=0.3, which="both")
    for i, name in enumerate(metrics, start=2):
        axes = figure.add_subplot(1, 1 + len(metrics), i)
        for label, report in zip(labels, reports):
            rows = [r for r in report.get("eval", []) if name in r]
            axes.plot([r["step"] for r in rows], [r[name] for r in rows], "o-", label=label)
        axes.set_xlabel("step")
        axes.set_ylabel(f"validation {name}")
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    _save_atomic(args.out, lambda target: figure.savefig(target, format="png"))
    print(args.out)


if __name__ == "__main__":
    main()
