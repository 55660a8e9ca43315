"""Training runs side by side: the training loss (log scale) and each
validation metric against step, one line per run, from their metrics.json.

    python scripts/compare_runs.py runs/a runs/b --labels im2col auto --out compare.png
    python scripts/compare_runs.py runs/a runs/b --metrics word_accuracy --out compare.png
    python scripts/compare_runs.py runs/s0 runs/s1 --metrics word_accuracy --at 5000 10000

A run without training-loss rows (metrics.json "train") only adds its
validation curves. --at prints, instead of plotting, a Markdown table of each
metric at the given steps and its best value, one row per run, with the
mean, minimum and maximum over the runs (a seed study's summary).
"""
import argparse
import json
import os

from nnlite.training.plots import _figure, _save_atomic


def load(run):
    with open(os.path.join(run, "metrics.json")) as f:
        return json.load(f)


def value_at(report, name, step):
    """The metric's value at the evaluation of `step`, or None when the run
    did not evaluate there."""
    for row in report.get("eval", []):
        if row.get("step") == step and name in row:
            return row[name]
    return None


def best_of(report, name, higher_is_better=True):
    """(best value, its step) over the run's evaluations, or (None, None)."""
    rows = [row for row in report.get("eval", []) if name in row]
    if not rows:
        return None, None
    pick = max if higher_is_better else min
    row = pick(rows, key=lambda r: r[name])
    return row[name], row["step"]


def lower_is_better(name, named=None):
    """Whether metric `name`'s best value is its smallest: `named` is the
    --lower-is-better list (None: not given; empty: every metric)."""
    if named is not None:
        return not named or name in named
    return "loss" in name or "error" in name


def summary_table(labels, reports, name, steps, higher_is_better=True):
    """Markdown: one row per run (the metric at each step, then its best and
    where), then mean / min / max over the runs that reached each step."""
    def cell(value):
        return "-" if value is None else f"{value:.3f}"
    head = ["run"] + [f"step {s:,}" for s in steps] + ["best (step)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    columns = [[] for _ in steps]
    bests = []
    for label, report in zip(labels, reports):
        values = [value_at(report, name, s) for s in steps]
        for column, value in zip(columns, values):
            if value is not None:
                column.append(value)
        best, where = best_of(report, name, higher_is_better)
        if best is not None:
            bests.append(best)
        lines.append("| " + " | ".join([label] + [cell(v) for v in values] + [
            "-" if best is None else f"{best:.3f} ({where:,})"]) + " |")
    for title, reduce in (("mean", lambda v: sum(v) / len(v)), ("min", min), ("max", max)):
        lines.append("| " + " | ".join([title] + [cell(reduce(c)) if c else "-" for c in columns]
                                       + [cell(reduce(bests)) if bests else "-"]) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (each with metrics.json)")
    parser.add_argument("--labels", nargs="+", default=None, help="one per run")
    parser.add_argument("--out", default=None, help="PNG to write (required unless --at)")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="validation metrics to plot (default: every one logged)")
    parser.add_argument("--at", nargs="+", type=int, default=None, metavar="STEP",
                        help="print a Markdown table of each metric at these steps instead "
                             "of plotting")
    parser.add_argument("--lower-is-better", nargs="*", default=None, metavar="METRIC",
                        help="with --at: for these metrics (all, if none named) the best "
                             "value is the smallest; by default a metric named like a loss "
                             "or an error is lower-is-better and any other higher")
    args = parser.parse_args(argv)
    if args.at is None and args.out is None:
        parser.error("give --out PNG to plot, or --at STEP ... for a table")
    labels = args.labels or [os.path.basename(os.path.normpath(r)) for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"--labels: {len(labels)} given for {len(args.runs)} runs")
    reports = [load(run) for run in args.runs]
    metrics = args.metrics or sorted({key for report in reports for row in report.get("eval", [])
                                      for key in row} - {"step", "loss"})
    if args.at is not None:
        for name in metrics:
            print(f"validation {name}:\n")
            print(summary_table(labels, reports, name, args.at,
                                not lower_is_better(name, args.lower_is_better)))
            print()
        return
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
