"""deep_reader's recipe trained by a PyTorch replica of the attention reader,
on nnlite's data, from nnlite's initial weights (issue 16).

    python scripts/reader_torch_replica.py --out /work/runs/reader_torch [--steps 10000]
    python scripts/reader_torch_replica.py --out /work/runs/reader_torch --resume

It builds `nnlite train attention_reader`'s recipe
(models/attention_reader.training_recipe, same seed), copies the recipe's
initial weights into the replica the benchmark uses
(bench/cases/models_attention.py, checked there against nnlite's output),
and trains it on the recipe's batches with the seed's optimiser and lr rule:
Adam 1e-3, lr x0.1 at the third test-loss fail in a row and at every further
fail (deep_reader's main.py). Every 100 steps it evaluates the recipe's fixed
1024-image test set with nnlite's own metric. So the run differs from
`nnlite train attention_reader --seed S` only in the library that computes
it: whether PyTorch learns faster on the same data tells a library problem
from a recipe or data one, and the wall time compares the two libraries on
this machine.

Writes OUT/metrics.json ({"eval": [{step, word_accuracy, loss, lr, elapsed_s}],
"train": [{step, loss}] every 10 steps, as nnlite's Trainer logs them)
and OUT/state.pt every 500 steps (replica, optimiser, lr rule, data loader
position), from which --resume continues exactly. Threads: NNLITE_NUM_THREADS
or --threads (default: as nnlite's). Needs PyTorch (not an nnlite dependency).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nnlite as nl  # noqa: E402
from bench.cases.models import load_nnlite_state  # noqa: E402
from bench.cases.models_attention import _torch_masked_cross_entropy, _torch_reader  # noqa: E402
from nnlite.models import attention_reader as reader  # noqa: E402

SAVE_EVERY = int(os.environ.get("READER_SAVE_EVERY", 500))


class SeedLossRule:
    """deep_reader's lr rule on the test loss (as models/attention_reader.py's
    TestLossFails): a loss above the best is a fail; the third fail in a row
    and every further one cut lr by `factor`; a loss at or below the best
    resets the count."""

    def __init__(self, optimizer, factor=0.1, fails=3):
        self.optimizer, self.factor, self.fails = optimizer, factor, fails
        self.best, self.count = float("inf"), 0

    def step(self, loss):
        if loss > self.best:
            self.count += 1
            if self.count >= self.fails:
                for group in self.optimizer.param_groups:
                    group["lr"] *= self.factor
        else:
            self.best, self.count = loss, 0

    def state_dict(self):
        return {"best": self.best, "count": self.count}

    def load_state_dict(self, state):
        self.best, self.count = state["best"], state["count"]


def evaluate(replica, loader):
    """(word accuracy by nnlite's metric, the seed's test loss) over the test set."""
    correct = loss = 0.0
    count = 0
    with torch.no_grad():
        for images, words in loader:
            targets = reader.encode_words(words)
            logits, _ = replica(torch.from_numpy(np.asarray(images)))
            n = len(targets)
            correct += reader.metrics(logits.numpy(), targets)["word_accuracy"] * n
            loss += _torch_masked_cross_entropy(torch, logits, torch.from_numpy(targets)).item() * n
            count += n
    return correct / count, loss / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    threads = args.threads or nl.get_num_threads()
    torch.set_num_threads(threads)
    os.makedirs(args.out, exist_ok=True)
    state_path = os.path.join(args.out, "state.pt")
    metrics_path = os.path.join(args.out, "metrics.json")
    if not args.resume and os.path.exists(state_path):
        sys.exit(f"{state_path} exists: pass --resume to continue that run, or another --out")

    recipe = reader.training_recipe(seed=args.seed)
    replica = load_nnlite_state(torch, _torch_reader(torch, recipe.model), recipe.model,
                                "attention reader")
    optimizer = torch.optim.Adam(replica.parameters(), lr=reader.default_config()["lr"])
    rule = SeedLossRule(optimizer)
    train, test = recipe.train_loader, recipe.val_loader
    step, elapsed, history, train_log = 0, 0.0, [], []
    if args.resume:
        state = torch.load(state_path, weights_only=False)
        replica.load_state_dict(state["replica"])
        optimizer.load_state_dict(state["optimizer"])
        rule.load_state_dict(state["rule"])
        train.load_state_dict(state["loader"])
        step, elapsed = state["step"], state["elapsed_s"]
        with open(metrics_path) as f:
            saved = json.load(f)
        history = saved["eval"]
        train_log = [row for row in saved.get("train", []) if row["step"] <= step]

    def save():
        torch.save({"replica": replica.state_dict(), "optimizer": optimizer.state_dict(),
                    "rule": rule.state_dict(), "loader": train.state_dict(), "step": step,
                    "elapsed_s": elapsed}, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)
        with open(metrics_path + ".tmp", "w") as f:
            json.dump({"eval": history, "train": train_log, "threads": threads,
                       "seed": args.seed}, f, indent=1)
        os.replace(metrics_path + ".tmp", metrics_path)

    batches = iter(train)
    progress = tqdm(total=args.steps, initial=step, desc="torch replica", unit="step")
    started = time.perf_counter() - elapsed
    while step < args.steps:
        try:
            images, words = next(batches)
        except StopIteration:
            batches = iter(train)
            continue
        replica.train()
        logits, _ = replica(torch.from_numpy(np.asarray(images)))
        loss = _torch_masked_cross_entropy(torch, logits,
                                           torch.from_numpy(reader.encode_words(words)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        progress.update(1)
        if step % 10 == 0:
            train_log.append({"step": step, "loss": loss.item()})
        if step % 100 == 0:  # the seed evaluates every 100 iterations
            replica.eval()
            accuracy, test_loss = evaluate(replica, test)
            rule.step(test_loss)
            elapsed = time.perf_counter() - started
            history.append({"step": step, "word_accuracy": accuracy, "loss": test_loss,
                            "lr": optimizer.param_groups[0]["lr"], "elapsed_s": elapsed})
            progress.set_postfix(word_accuracy=f"{accuracy:.3f}", lr=history[-1]["lr"])
            if step % SAVE_EVERY == 0 or step == args.steps:
                save()
    progress.close()
    elapsed = time.perf_counter() - started
    save()
    best = max(history, key=lambda e: e["word_accuracy"])
    print(f"step {step}: word accuracy {history[-1]['word_accuracy']:.3f}; best "
          f"{best['word_accuracy']:.3f} at step {best['step']}; {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
