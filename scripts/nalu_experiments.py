"""The NALU reproductions (SPECS section 4; Trask et al. 2018):

  static    the static arithmetic task: MLP (ReLU6 and linear), NAC and NALU
            on a+b, a-b, a*b, a/b, a^2, sqrt(a); interpolation and
            extrapolation RMSE scaled so that a randomly initialised model is
            100 and a perfect one 0; median and mean over seeds. Writes a
            markdown table, a JSON of every run and a bar chart.
  identity  MLPs 1-8-8-8-1 with several nonlinearities trained on the
            identity over [-5, 5]; mean absolute error over [-20, 20] plotted.
  tutorial  the seed's tutorial setting: one NALU 2 -> 1 on integer pairs
            (a, b) drawn from [1, 100), MSE, Adam lr 0.01, for a+b, a-b, a*b
            and a/b; tested on pairs from [1, 1000) (mostly outside the
            training range). Per seed: the median relative error on the test
            pairs, the learned weight and the gate, and whether it is solved
            (median relative error below 1%).

Uses the same data, models, scale and optimiser as `nnlite train nalu`
(models/nalu.py), with a plain training loop (minibatches drawn with
replacement) so that hundreds of small runs fit on a CPU.

`static --setup paper` runs the paper's static task as Madsen & Johansen
(ICLR 2020; 2019) reproduce it, since Trask et al. do not publish its dataset
parameters: input size 100, two contiguous subsets of 25 features overlapping
by 12, at a random offset per seed; training batches of 128 drawn fresh every
step from U[1, 2]; fixed validation (U[1, 2]) and extrapolation (U[2, 6]) sets
of 10,000; Adam lr 1e-3. Scored three ways: the paper's "100 = random model,
0 = perfect" scale on MSE (as Madsen & Johansen read Table 1) and on RMSE
(this project's first table), and Madsen & Johansen's success criterion
(extrapolation MSE below a nearly perfect solution's). Writes per-seed tables.
`--setup ours` (the default) keeps the first setting: x in [0, 1)^100,
slices 0:10 and 5:15, extrapolation [0, 5), 10,000 fixed training samples,
Adam lr 0.01, batch 64.

    python scripts/nalu_experiments.py static --steps 5000 --seeds 0 1 2 \
        --out /work/runs/nalu_static
    python scripts/nalu_experiments.py identity --steps 5000 --seeds 0 1 2 \
        --figure docs/results/nalu_identity.png --out /work/runs/nalu_identity
"""
import argparse
import json
import os
import time

import numpy as np
from tqdm.auto import tqdm

import nnlite as nl
from nnlite import optim
from nnlite.models import nalu as M

OPERATION_LABELS = {"add": "a+b", "sub": "a-b", "mul": "a*b", "div": "a/b", "square": "a^2",
                    "sqrt": "sqrt(a)"}
KIND_LABELS = {"mlp_relu6": "MLP ReLU6", "mlp_linear": "MLP linear", "nac": "NAC",
               "nalu": "NALU", "nalu_separate": "NALU (separate W)"}


def train(model, x, y, steps, batch, seed, lr, sampler=None):
    """Adam on MSE over minibatches of (x, y), or over fresh batches
    sampler(rng, batch) -> (x, y) when a sampler is given; returns the last
    loss (nan if it diverged)."""
    optimizer = optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    value = float("nan")
    for _ in range(steps):
        if sampler is None:
            index = rng.integers(0, len(x), size=batch)
            xb, yb = x[index], y[index]
        else:
            xb, yb = sampler(rng, batch)
        loss = M.loss(model(nl.tensor(xb)), nl.tensor(yb))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not np.isfinite(value):
            break
    return value


def scaled(model, data, baseline):
    result = {}
    for name in ("val", "extrapolation"):
        x, y = data[name]
        error = M.rmse(M.predict(model, x), y)
        result[name] = 100.0 * error / baseline[name] if np.isfinite(error) else float("inf")
    return result


PAPER_SET_SIZE = 10_000


def paper_data(op, seed):
    """The paper setup's sets for one (operation, seed): the subsets, a fresh-batch
    training sampler, and the fixed validation and extrapolation sets."""
    from nnlite.data import arithmetic as A
    slice_a, slice_b = A.subset_slices(seed=seed)

    def sampler(rng, batch):
        return A.arithmetic_task(op, batch, int(rng.integers(2 ** 63)),
                                 value_range=A.PAPER_INTERPOLATION_RANGE,
                                 slice_a=slice_a, slice_b=slice_b)
    val_seed = seed + M.VAL_SEED_OFFSET
    return {"slices": (slice_a, slice_b), "sampler": sampler,
            "val": A.arithmetic_task(op, PAPER_SET_SIZE, val_seed,
                                     value_range=A.PAPER_INTERPOLATION_RANGE,
                                     slice_a=slice_a, slice_b=slice_b),
            "extrapolation": A.arithmetic_task(op, PAPER_SET_SIZE, val_seed + 1,
                                               value_range=A.PAPER_EXTRAPOLATION_RANGE,
                                               slice_a=slice_a, slice_b=slice_b)}


def mse(model, x, y):
    with np.errstate(over="ignore", invalid="ignore"):
        error = float(np.mean((M.predict(model, x) - np.asarray(y, np.float64)) ** 2))
    return error if np.isfinite(error) else float("inf")


def random_model_mse(kind, sets, seed, count=M.RANDOM_MODELS):
    """{set: mean MSE of `count` randomly initialised models}: the paper's "100"."""
    totals = {name: 0.0 for name in sets}
    for k in range(count):
        nl.manual_seed(seed + M.BASELINE_SEED_OFFSET + k)
        model = M.experiment_model(kind)
        for name, (x, y) in sets.items():
            totals[name] += mse(model, x, y) / count
    return totals


def run_static_paper(args):
    from nnlite.data import near_perfect_mse
    runs = []
    jobs = [(op, kind, seed) for op in args.operations for kind in args.models
            for seed in args.seeds]
    start = time.time()
    for op, kind, seed in tqdm(jobs, desc="static task (paper setup)", unit="run"):
        t0 = time.time()
        data = paper_data(op, seed)
        sets = {"val": data["val"], "extrapolation": data["extrapolation"]}
        baseline = random_model_mse(kind, sets, seed)
        nl.manual_seed(seed)
        model = M.experiment_model(kind)
        last_loss = train(model, None, None, args.steps, args.batch, seed, args.lr,
                          sampler=data["sampler"])
        row = {"operation": op, "model": kind, "seed": seed, "last_loss": last_loss,
               "slices": [[s.start, s.stop] for s in data["slices"]]}
        for name, (x, y) in sets.items():
            error = mse(model, x, y)
            row[f"{name}_mse"] = error
            row[f"{name}_random_mse"] = baseline[name]
            ok = np.isfinite(baseline[name]) and baseline[name] > 0
            row[f"{name}_scaled_mse"] = 100.0 * error / baseline[name] if ok else float("nan")
            row[f"{name}_scaled_rmse"] = (100.0 * np.sqrt(error / baseline[name]) if ok
                                          else float("nan"))
        x, _ = data["extrapolation"]
        row["success_threshold_mse"] = near_perfect_mse(op, x, *data["slices"])
        row["solved"] = bool(row["extrapolation_mse"] < row["success_threshold_mse"])
        row["wall_s"] = time.time() - t0
        runs.append(row)
    wall = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "static_paper_runs.json"), "w") as f:
        json.dump({"args": vars(args), "wall_s": wall, "runs": runs}, f, indent=1)
    table = static_paper_table(runs, args)
    with open(args.table, "w") as f:
        f.write(table)
    print(table)
    print(f"wall time {wall:.0f} s")


def _cell(value):
    if np.isnan(value):
        return "nan"
    if not np.isfinite(value):
        return "inf"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-2):
        return f"{value:.1e}"
    return f"{value:.2f}"


def static_paper_table(runs, args):
    """Per-seed tables: scaled MSE (the paper's scale as Madsen & Johansen read
    it), scaled RMSE, and the success criterion, for each model and operation."""
    lines = [f"Static task, paper setup (Madsen & Johansen's reproduction), {args.steps} Adam "
             f"steps (lr {args.lr}, batch {args.batch}), seeds "
             f"{' '.join(map(str, args.seeds))}. Cells list the seeds in order.", ""]
    for key, title in (("scaled_mse", "100 x MSE / MSE of a random model"),
                       ("scaled_rmse", "100 x RMSE / RMSE of a random model")):
        for split, label in (("val", "interpolation U[1,2]"),
                             ("extrapolation", "extrapolation U[2,6]")):
            lines.append(f"{title}, {label}:")
            lines.append("")
            lines.append("| op | " + " | ".join(KIND_LABELS[k] for k in args.models) + " |")
            lines.append("|---|" + "---|" * len(args.models))
            for op in args.operations:
                cells = []
                for kind in args.models:
                    mine = [r for r in runs if r["operation"] == op and r["model"] == kind]
                    cells.append(" / ".join(_cell(r[f"{split}_{key}"]) for r in mine))
                lines.append(f"| {OPERATION_LABELS[op]} | " + " | ".join(cells) + " |")
            lines.append("")
    lines.append("Solved (extrapolation MSE below the nearly perfect solution's, eps = 1e-5), "
                 "per seed:")
    lines.append("")
    lines.append("| op | " + " | ".join(KIND_LABELS[k] for k in args.models) + " |")
    lines.append("|---|" + "---|" * len(args.models))
    for op in args.operations:
        cells = []
        for kind in args.models:
            mine = [r for r in runs if r["operation"] == op and r["model"] == kind]
            cells.append(f"{sum(r['solved'] for r in mine)}/{len(mine)} ("
                         + "".join("y" if r["solved"] else "n" for r in mine) + ")")
        lines.append(f"| {OPERATION_LABELS[op]} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def run_static(args):
    runs = []
    jobs = [(op, kind, seed) for op in args.operations for kind in args.models
            for seed in args.seeds]
    start = time.time()
    for op, kind, seed in tqdm(jobs, desc="static task", unit="run"):
        data = M.experiment_data(kind, op, seed)
        baseline = M.random_model_rmse(kind, {"val": data["val"],
                                              "extrapolation": data["extrapolation"]}, seed)
        nl.manual_seed(seed)
        model = M.experiment_model(kind)
        last_loss = train(model, *data["train"], args.steps, args.batch, seed, args.lr)
        score = scaled(model, data, baseline)
        runs.append({"operation": op, "model": kind, "seed": seed, "last_loss": last_loss,
                     "interpolation": score["val"], "extrapolation": score["extrapolation"]})
    wall = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "static_runs.json"), "w") as f:
        json.dump({"args": vars(args), "wall_s": wall, "runs": runs}, f, indent=1)
    table = static_table(runs, args)
    with open(args.table, "w") as f:
        f.write(table)
    static_figure(runs, args)
    print(table)
    print(f"wall time {wall:.0f} s")


def summary(runs, op, kind, split):
    values = np.array([r[split] for r in runs if r["operation"] == op and r["model"] == kind])
    return float(np.median(values)), float(np.mean(values)), values


def static_table(runs, args):
    lines = [f"Static task, {args.steps} Adam steps (lr {args.lr}, batch {args.batch}), "
             f"seeds {' '.join(map(str, args.seeds))}: scaled RMSE, random model = 100, "
             f"perfect = 0; median (mean) over seeds.", ""]
    for split, title in (("interpolation", "Interpolation"), ("extrapolation", "Extrapolation")):
        lines.append(f"| {title} | " + " | ".join(KIND_LABELS[k] for k in args.models) + " |")
        lines.append("|---|" + "---|" * len(args.models))
        for op in args.operations:
            cells = []
            for kind in args.models:
                median, mean, _ = summary(runs, op, kind, split)
                cells.append(f"{median:.1f} ({mean:.1f})")
            lines.append(f"| {OPERATION_LABELS[op]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def static_figure(runs, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    width = 0.8 / len(args.models)
    for ax, split in zip(axes, ("interpolation", "extrapolation")):
        for i, kind in enumerate(args.models):
            medians = [max(summary(runs, op, kind, split)[0], 1e-3) for op in args.operations]
            ax.bar(np.arange(len(args.operations)) + i * width, medians, width,
                   label=KIND_LABELS[kind])
        ax.set_yscale("log")
        ax.axhline(100, color="k", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(args.operations)) + 0.4 - width / 2)
        ax.set_xticklabels([OPERATION_LABELS[op] for op in args.operations])
        ax.set_title(f"{split} (median scaled error; random = 100)")
    axes[0].set_ylabel("scaled RMSE (log)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.figure, dpi=80)
    plt.close(fig)


def run_identity(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    grid = np.linspace(-20, 20, 401, dtype=np.float32)[:, None]
    curves, rows = {}, []
    start = time.time()
    jobs = [(a, s) for a in args.activations for s in args.seeds]
    for activation, seed in tqdm(jobs, desc="identity", unit="run"):
        data = M.experiment_data("identity", None, seed)
        nl.manual_seed(seed)
        model = M.identity_mlp(activation)
        last_loss = train(model, *data["train"], args.steps, args.batch, seed, args.lr)
        error = np.abs(M.predict(model, grid) - grid.astype(np.float64))[:, 0]
        curves.setdefault(activation, []).append(error)
        inside = np.abs(grid[:, 0]) <= 5
        rows.append({"activation": activation, "seed": seed, "last_loss": last_loss,
                     "mae_inside_5": float(error[inside].mean()),
                     "mae_outside_5": float(error[~inside].mean())})
    wall = time.time() - start
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for activation, errors in curves.items():
        ax.plot(grid[:, 0], np.mean(errors, axis=0), label=activation, lw=1.2)
    ax.axvspan(-5, 5, color="0.9", label="training range")
    ax.set_xlabel("x")
    ax.set_ylabel("mean absolute error")
    ax.set_title(f"MLP 1-8-8-8-1 learning y = x on [-5, 5] ({len(args.seeds)} seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    fig.savefig(args.figure, dpi=80)
    plt.close(fig)
    with open(os.path.join(args.out, "identity_runs.json"), "w") as f:
        json.dump({"args": vars(args), "wall_s": wall, "runs": rows}, f, indent=1)
    print("| activation | MAE on [-5, 5] | MAE on [-20, 20] outside [-5, 5] |")
    print("|---|---|---|")
    for activation in args.activations:
        mine = [r for r in rows if r["activation"] == activation]
        print(f"| {activation} | {np.mean([r['mae_inside_5'] for r in mine]):.3f} | "
              f"{np.mean([r['mae_outside_5'] for r in mine]):.3f} |")
    print(f"wall time {wall:.0f} s")


TUTORIAL_OPERATIONS = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                       "div": np.divide}


def tutorial_pairs(rng, low, high, count):
    """`count` integer pairs (a, b), each uniform in [low, high), as float32."""
    return rng.integers(low, high, size=(count, 2)).astype(np.float32)


def run_tutorial(args):
    rows = []
    start = time.time()
    jobs = [(op, seed) for op in args.operations if op in TUTORIAL_OPERATIONS
            for seed in args.seeds]
    for op, seed in tqdm(jobs, desc="tutorial", unit="run"):
        rng = np.random.default_rng(seed)
        target = TUTORIAL_OPERATIONS[op]
        x_train = tutorial_pairs(rng, 1, 100, 10000)
        y_train = target(x_train[:, :1], x_train[:, 1:]).astype(np.float32)
        test_rng = np.random.default_rng(10000 + seed)
        x_test = tutorial_pairs(test_rng, 1, 1000, 1000)
        y_test = target(x_test[:, :1].astype(np.float64), x_test[:, 1:].astype(np.float64))
        nl.manual_seed(seed)
        model = nl.nn.NALU(2, 1)
        last_loss = train(model, x_train, y_train, args.steps, args.batch, seed, args.lr)
        predicted = M.predict(model, x_test)
        with np.errstate(invalid="ignore", over="ignore"):
            relative = np.abs(predicted - y_test) / np.abs(y_test)
        inside = (x_test < 100).all(axis=1)
        with nl.no_grad():
            g = nl.functional.sigmoid(nl.functional.linear(
                nl.tensor(x_test[:200]), model.G)).numpy()
        rows.append({"operation": op, "seed": seed, "last_loss": last_loss,
                     "median_relative_error": float(np.nanmedian(relative)),
                     "median_relative_error_inside": float(np.nanmedian(relative[inside]))
                     if inside.any() else None,
                     "median_relative_error_outside": float(np.nanmedian(relative[~inside])),
                     "weight": model.nac.weight.numpy().round(3).tolist(),
                     "gate_mean": float(np.mean(g)),
                     "solved": bool(np.nanmedian(relative) < 0.01)})
    wall = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tutorial_runs.json"), "w") as f:
        json.dump({"args": vars(args), "wall_s": wall, "runs": rows}, f, indent=1)
    print(f"NALU 2 -> 1, {args.steps} Adam steps (lr {args.lr}, batch {args.batch}), trained "
          f"on [1, 100), tested on [1, 1000); median relative error per seed")
    print("| operation | " + " | ".join(f"seed {s}" for s in args.seeds) + " | solved |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for op in TUTORIAL_OPERATIONS:
        mine = [r for r in rows if r["operation"] == op]
        if not mine:
            continue
        cells = [f"{r['median_relative_error']:.2g}" for r in mine]
        print(f"| {OPERATION_LABELS[op]} | " + " | ".join(cells) +
              f" | {sum(r['solved'] for r in mine)}/{len(mine)} |")
    print(f"wall time {wall:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("static", "identity", "tutorial"))
    parser.add_argument("--setup", choices=("ours", "paper"), default="ours",
                        help="static task: this project's first setting, or the paper's as "
                             "Madsen & Johansen reproduce it (see the docstring)")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=None,
                        help="64 (128 with --setup paper)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"{M.default_config()['lr']} (0.001 with --setup paper)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--operations", nargs="+", default=list(OPERATION_LABELS),
                        choices=list(OPERATION_LABELS))
    parser.add_argument("--models", nargs="+", default=list(M.STATIC_MODELS),
                        choices=list(KIND_LABELS))
    parser.add_argument("--activations", nargs="+", default=sorted(M.IDENTITY_ACTIVATIONS),
                        choices=sorted(M.IDENTITY_ACTIVATIONS))
    parser.add_argument("--out", default="runs/nalu", help="folder for the per-run JSON")
    parser.add_argument("--table", default=None, help="markdown table (static)")
    parser.add_argument("--figure", default=None, help="PNG to write")
    args = parser.parse_args(argv)
    paper = args.part == "static" and args.setup == "paper"
    if args.batch is None:
        args.batch = 128 if paper else 64
    if args.lr is None:
        args.lr = 1e-3 if paper else M.default_config()["lr"]
    if paper:
        args.table = args.table or os.path.join(args.out, "static_paper_table.md")
        run_static_paper(args)
    elif args.part == "static":
        args.table = args.table or os.path.join(args.out, "static_table.md")
        args.figure = args.figure or os.path.join(args.out, "static.png")
        run_static(args)
    elif args.part == "tutorial":
        run_tutorial(args)
    else:
        args.figure = args.figure or os.path.join(args.out, "identity.png")
        run_identity(args)


if __name__ == "__main__":
    main()
