"""The training loop: steps, periodic evaluation, best/last checkpoints,
exact resume and Ctrl-C safety.

A run lives in `out_dir`, one run per folder: ``fit()`` refuses a folder that
already holds files, ``fit(resume=True)`` continues the run there and
``fit(overwrite=True)`` deletes its files and starts afresh.
    last.h5       model + optimiser + meta after the latest evaluation (or Ctrl-C)
    best.h5       the same at the evaluation with the best validation metric
    metrics.json  {"train": [{step, loss, lr, stats...}], "eval": [{step, metrics...}],
                   "best": {step, metric}}
    curves.png    loss and validation metric against step

The meta of last.h5 holds everything outside the model and optimiser that the
next step depends on: the step, the loader's position (state_dict), the lr
scheduler's state, the CPU random generators (nnlite's, NumPy's global one,
Python's) and the partly filled logging window, so ``fit(resume=True)``
continues bit for bit as if never stopped (on the CPU; CuPy's generator is
not saved, so GPU dropout masks differ after a resume).

The loaders follow nnlite.data.DataLoader's interface: ``len(loader)``
batches per epoch, iteration yields batches from the current position,
``state_dict()`` -> {"seed", "epoch", "batch"} (the next batch),
``load_state_dict(state)``, and ``set_epoch(e)`` which starts epoch e at its
first batch.

As one rank of a data-parallel job (``distributed=`` a process group or a
Reducer of nnlite.distributed, and a train_loader sharded by rank) the same
loop averages gradients over the ranks; rank 0 alone evaluates, writes the
files above and shows the progress bar, and last.h5 holds every rank's
random generators, so ``fit(resume=True)`` on the same number of ranks
continues bit for bit (nnlite/training/parallel.py).
"""
import copy
import math
import os

from tqdm.auto import tqdm

import nnlite as nl
from nnlite import device as _device
from nnlite import io as _io
from nnlite.optim.lr_scheduler import ReduceLROnPlateau
from nnlite.training import plots, state as _state
from nnlite.training.parallel import make_parallel
from nnlite.training.task import check_task

LAST, BEST, METRICS, CURVES = "last.h5", "best.h5", "metrics.json", "curves.png"
TRAINER_FORMAT = 1
_GATHER = object()  # _save_last: gather the ranks' random states itself


def _positive_int(op, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return value


def _positive_number(op, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive finite number, got {value!r}")
    return float(value)


def evaluation_line(row):
    """'validation at step N: metric value, ...' for one row of history["eval"]."""
    metrics = ", ".join(f"{key} {value:.4g}" for key, value in row.items() if key != "step")
    return f"validation at step {row['step']}: {metrics}"


class RunExistsError(FileExistsError):
    """A fresh run was pointed at a folder that already holds files; `out_dir`,
    `entries` (its sorted names) and `listing` (the first of them, as text)
    let a caller such as the CLI word its own advice."""

    def __init__(self, out_dir, entries, shown=6):
        self.out_dir, self.entries = out_dir, entries
        more = len(entries) - shown
        self.listing = ", ".join(entries[:shown]) + (f" and {more} more" if more > 0 else "")
        super().__init__(f"Trainer.fit: {out_dir} already holds {self.listing}; "
                         f"fit(resume=True) continues that run, fit(overwrite=True) replaces "
                         f"it, or give the Trainer another out_dir")


def check_run_directory(out_dir, resume=False, overwrite=False):
    """Raise unless a run may use `out_dir` as fit(resume, overwrite) would:
    ValueError for both flags, FileNotFoundError when resuming without
    out_dir/last.h5, RunExistsError when starting afresh without overwrite in
    a folder that holds anything. Writes nothing, so a caller can check before
    the slow work of building a recipe."""
    if resume and overwrite:
        raise ValueError("Trainer.fit: resume=True continues the run in out_dir and "
                         "overwrite=True replaces it; give one")
    if resume:
        last = os.path.join(out_dir, LAST)
        if not os.path.exists(last):
            raise FileNotFoundError(f"Trainer.fit(resume=True): no checkpoint to resume from: "
                                    f"{last} does not exist")
        return
    if overwrite or not os.path.isdir(out_dir):
        return
    entries = sorted(os.listdir(out_dir))
    if entries:
        raise RunExistsError(out_dir, entries)


def check_loader(op, name, loader):
    missing = [m for m in ("__iter__", "__len__", "state_dict", "load_state_dict", "set_epoch")
               if not hasattr(loader, m)]
    if missing:
        raise TypeError(f"{op}: {name} ({type(loader).__name__}) lacks {', '.join(missing)}; "
                        f"expected an nnlite.data.DataLoader-like object")


class Trainer:
    """Train `model` with `optimizer` on `task` for `steps` optimiser steps.

    `scheduler` (optional) is stepped once per optimiser step (a
    ReduceLROnPlateau instead once per evaluation, with the metric).
    Evaluation on `val_loader` runs every `eval_every` steps and at the end;
    the mean training loss is logged every `log_every` steps. `seed` seeds
    the random generators at the start of a fresh run. `distributed` (an
    nnlite.distributed process group or Reducer) makes this one rank of a
    data-parallel job; None trains alone. `clip_grad_norm` (optional) scales
    the gradients to that joint 2-norm at most before each optimiser step
    (nl.nn.utils.clip_grad_norm_, after the data-parallel reduction), and
    the norm before clipping is logged as "grad_norm"."""

    def __init__(self, model, optimizer, task, train_loader, val_loader=None, steps=1000,
                 out_dir="runs/train", scheduler=None, eval_every=500, log_every=10,
                 device="cpu", seed=0, progress=True, distributed=None, clip_grad_norm=None):
        op = "Trainer"
        check_task(op, task)
        check_loader(op, "train_loader", train_loader)
        if val_loader is not None and not hasattr(val_loader, "__iter__"):
            raise TypeError(f"{op}: val_loader ({type(val_loader).__name__}) is not iterable")
        self.model, self.optimizer, self.task = model, optimizer, task
        self.train_loader, self.val_loader, self.scheduler = train_loader, val_loader, scheduler
        self.steps = _positive_int(op, "steps", steps)
        self.eval_every = _positive_int(op, "eval_every", eval_every)
        self.log_every = _positive_int(op, "log_every", log_every)
        self.clip_grad_norm = None if clip_grad_norm is None else \
            _positive_number(op, "clip_grad_norm", clip_grad_norm)
        self.device = _device.canonical(device)
        self.out_dir = os.fspath(out_dir)
        self._parallel = make_parallel(distributed)
        self._parallel.check(op, train_loader)
        self.seed, self.progress = seed, progress and self._parallel.is_root
        self.step = 0
        self.history = {"train": [], "eval": []}
        self.best = None  # {"step": s, metric_name: value} of the best evaluation
        self._window = _empty_window()

    # ----------------------------------------------------------- paths --
    @property
    def last_path(self):
        return os.path.join(self.out_dir, LAST)

    @property
    def best_path(self):
        return os.path.join(self.out_dir, BEST)

    @property
    def metrics_path(self):
        return os.path.join(self.out_dir, METRICS)

    @property
    def curves_path(self):
        return os.path.join(self.out_dir, CURVES)

    # ------------------------------------------------------------- fit --
    def fit(self, resume=False, overwrite=False):
        """Train up to `steps`; with resume=True continue the run saved in
        out_dir/last.h5. A fresh run refuses an out_dir holding files
        (RunExistsError) unless overwrite=True, which first deletes the
        earlier run's checkpoints and reports (other files stay). On Ctrl-C,
        last.h5 is written with the state after the last completed step and
        the KeyboardInterrupt is re-raised. Returns the history dict."""
        parallel = self._parallel
        refusal = None
        if parallel.is_root:  # alone: the others would see the files it creates
            try:
                check_run_directory(self.out_dir, resume, overwrite)
                os.makedirs(self.out_dir, exist_ok=True)
            except (OSError, ValueError) as error:
                refusal = error
        if parallel.size > 1:
            said = parallel.share(refusal and f"{type(refusal).__name__}: {refusal}",
                                  "the check of the run directory")
            if said and refusal is None:
                raise RuntimeError(f"Trainer.fit: rank 0 refused the run directory: {said}")
        if refusal is not None:
            raise refusal
        self.model.to(self.device)  # the optimiser holds the same Parameter objects
        parallel.start(self.model)
        if resume:
            self._resume()
        else:
            if overwrite and parallel.is_root:
                self._remove_earlier_run()
            self._start()
        if self.step >= self.steps:
            return self.history
        self._iterator = iter(self.train_loader)
        self._safe = self._snapshot()
        self._saved_buffers, self._in_step = None, False
        bar = tqdm(total=self.steps, initial=self.step, desc="train", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        try:
            with parallel.interrupts():
                self._loop(bar)
        except KeyboardInterrupt:
            if self._in_step:
                self._restore_buffers(self._saved_buffers)
            self._save_last(self._safe)
            self._write_reports()
            raise
        finally:
            bar.close()  # on any error too: an open bar reprints itself over the message
        return self.history

    def _loop(self, bar):
        parallel = self._parallel
        while self.step < self.steps:
            batch = self._next_batch()
            # forward in training mode updates buffers (BatchNorm running
            # statistics) before the step completes: keep them to roll back
            self._saved_buffers, self._in_step = self._buffers(), True
            self.model.train()
            self.optimizer.zero_grad()
            parallel.before_backward(self.step + 1, self.train_loader)
            loss, stats = self.task.loss(self.model, batch)
            loss_value = float(loss.item())
            loss.backward()
            parallel.after_backward()
            loss_value, stats, stop = parallel.summarize(loss_value, stats)
            if self.clip_grad_norm is not None:
                stats = dict(stats or {})
                stats["grad_norm"] = float(nl.nn.utils.clip_grad_norm_(
                    self.model.parameters(), self.clip_grad_norm))
            with _state.deferred_interrupt():
                lr = float(self.optimizer.param_groups[0]["lr"])
                self.optimizer.step()
                if self.scheduler is not None and not self._plateau:
                    self.scheduler.step()
                self.step += 1
                self._record(loss_value, lr, stats)
                self._safe, self._in_step = self._snapshot(), False
            bar.update(1)
            bar.set_postfix(self._postfix(loss_value), refresh=False)
            if stop:  # a rank was sent Ctrl-C: every rank stops after this step
                raise KeyboardInterrupt
            if self.step % self.eval_every == 0 or self.step == self.steps:
                self._evaluate_and_save(self._safe)
                bar.set_postfix(self._postfix(loss_value), refresh=False)

    @property
    def _plateau(self):
        return isinstance(self.scheduler, ReduceLROnPlateau)

    def _start(self):
        _state.seed_everything(self._parallel.rank_seed(self.seed))
        self.step, self.best = 0, None
        self.history = {"train": [], "eval": []}
        self._window = _empty_window()
        self.train_loader.set_epoch(0)

    def _remove_earlier_run(self):
        # all four, so that no file of the earlier run passes for this run's
        # (a best.h5 outlives a rerun without validation data)
        for path in (self.last_path, self.best_path, self.metrics_path, self.curves_path):
            if os.path.exists(path):
                os.remove(path)

    def _resume(self):
        path = self.last_path
        if not os.path.exists(path):
            raise FileNotFoundError(f"Trainer.fit(resume=True): no checkpoint to resume from: "
                                    f"{path} does not exist")
        # Everything the meta restores is checked inside load, before the model
        # or optimiser change: a failed resume leaves the Trainer as it was.
        meta = _io.load(path, self.model, self.optimizer,
                        check_meta=lambda meta: self._check_resume_meta(path, meta))
        if self.scheduler is not None:
            _state.restore_scheduler(self.scheduler, meta["scheduler"])
        self.step = meta["step"]
        self.best = meta["best"]
        self.history = meta["history"]
        self.history["train"] = [row for row in self.history["train"] if not row.get("partial")]
        self._window = meta["window"]
        self.train_loader.load_state_dict(meta["loader"])
        _state.restore_rng(self._parallel.resume_rng(meta, self.seed, self.step))

    def _check_resume_meta(self, path, meta):
        where = f"Trainer.fit(resume=True): {path}"
        if meta.get("trainer_format") != TRAINER_FORMAT:
            raise _io.CheckpointError(f"{where} was not written by nnlite's Trainer (no "
                                      f"trainer_format={TRAINER_FORMAT} in its meta)")
        if self.scheduler is not None and meta.get("scheduler") is None:
            raise _io.CheckpointError(
                f"{where} holds no lr scheduler state (the scheduler's state_dict was not "
                f"JSON-able or there was no scheduler), but a "
                f"{type(self.scheduler).__name__} was passed")
        step, history, window = meta.get("step"), meta.get("history"), meta.get("window")
        problems = []
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            problems.append(f"step {step!r} is not a step count")
        if not (isinstance(history, dict) and isinstance(history.get("train"), list)
                and isinstance(history.get("eval"), list)
                and all(isinstance(row, dict) for row in history["train"])):
            problems.append("history is not {'train': [rows], 'eval': [rows]}")
        if not (isinstance(window, dict) and set(window) == set(_empty_window())):
            problems.append(f"window is not a logging window: {window!r:.100}")
        if meta.get("best") is not None and not isinstance(meta["best"], dict):
            problems.append(f"best is {meta['best']!r:.100}")
        trials = [("scheduler", lambda: self.scheduler is None or _state.check_scheduler_state(
                      self.scheduler, meta["scheduler"])),
                  ("loader", lambda: copy.copy(self.train_loader).load_state_dict(
                      meta["loader"])),
                  ("rng", lambda: _state.check_rng(meta["rng"]))]
        for what, trial in trials:
            try:
                trial()
            except Exception as error:  # noqa: BLE001 - any failure means it cannot resume
                problems.append(f"{what} state cannot be restored: "
                                f"{type(error).__name__}: {error}")
        if problems:
            raise _io.CheckpointError(f"{where} cannot resume this run: " + "; ".join(problems))

    # ------------------------------------------------------------ step --
    def _next_batch(self):
        for _ in range(2):
            try:
                return next(self._iterator)
            except StopIteration:
                self.train_loader.set_epoch(self.train_loader.state_dict()["epoch"] + 1)
                self._iterator = iter(self.train_loader)
        raise ValueError(f"Trainer: train_loader yielded no batch for a whole epoch "
                         f"(len {len(self.train_loader)})")

    def _buffers(self):
        return [buffer.data.copy() for buffer in self.model.buffers()]

    def _restore_buffers(self, saved):
        for buffer, data in zip(self.model.buffers(), saved):
            buffer.data = data

    def _record(self, loss_value, lr, stats):
        window = self._window
        window["loss"] += loss_value
        window["count"] += 1
        window["lr"] = lr
        for key, value in (stats or {}).items():
            window["stats"][key] = window["stats"].get(key, 0.0) + float(value)
        complete = self.step % self.log_every == 0
        if complete or self.step == self.steps:
            count = window["count"]
            row = {"step": self.step, "loss": window["loss"] / count, "lr": window["lr"]}
            row.update({key: total / count for key, total in window["stats"].items()})
            if complete:
                self._window = _empty_window()
            else:
                # the run ends inside a logging window: show it, but keep the
                # window, so that a resumed run logs what an unbroken one would
                row["partial"] = True
            self.history["train"].append(row)

    def _snapshot(self):
        """What the next step depends on besides the model and optimiser."""
        return {"step": self.step,
                "loader": _state.decode_state(_state.encode_state(
                    self.train_loader.state_dict())),
                "rng": _state.capture_rng(),
                "window": _state.decode_state(_state.encode_state(self._window))}

    def _postfix(self, loss_value):
        postfix = {"loss": f"{loss_value:.4g}"}
        if self.history["eval"]:
            name = self.task.metric_name
            postfix[name] = f"{self.history['eval'][-1][name]:.4g}"
        return postfix

    # ------------------------------------------------------ evaluation --
    def evaluate(self):
        """task.evaluate on val_loader in eval mode without gradients; the
        random generators are left as they were, so evaluating never changes
        the training run."""
        rng = _state.capture_rng()
        self.model.eval()
        if hasattr(self.val_loader, "set_epoch"):
            self.val_loader.set_epoch(0)
        try:
            with nl.no_grad():
                metrics = self.task.evaluate(self.model, self.val_loader)
        finally:
            self.model.train()
            _state.restore_rng(rng)
        name = self.task.metric_name
        if not isinstance(metrics, dict) or name not in metrics:
            raise ValueError(f"Trainer: {type(self.task).__name__}.evaluate must return a "
                             f"dict holding the task's metric {name!r}, got {metrics!r:.200}")
        return {key: float(value) for key, value in metrics.items()}

    def _evaluate_and_save(self, safe):
        parallel = self._parallel
        # rank 0 evaluates; the others wait for its metrics (or None)
        metrics = self.evaluate() if parallel.is_root and self.val_loader is not None else None
        metrics = parallel.share(metrics, f"rank 0's evaluation at step {self.step}")
        improved = False
        if metrics is not None:
            self.history["eval"].append({"step": self.step, **metrics})
            if self.progress:  # under the task's own printout, and above the bar
                tqdm.write(evaluation_line(self.history["eval"][-1]))
            value = metrics[self.task.metric_name]
            if self._plateau:
                self.scheduler.step(value)
            improved = self._improves(value)
            if improved:
                self.best = {"step": self.step, self.task.metric_name: value}
        rng_ranks = parallel.gather_rng(safe["rng"])
        if improved and parallel.is_root:
            _io.save(self.best_path, self.model, self.optimizer, **self._meta(safe, rng_ranks))
        self._save_last(safe, rng_ranks)
        self._write_reports()

    def _improves(self, value):
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        best = self.best[self.task.metric_name]
        return value > best if self.task.higher_is_better else value < best

    # ----------------------------------------------------------- files --
    def _meta(self, safe, rng_ranks=None):
        meta = {"trainer_format": TRAINER_FORMAT, "step": safe["step"], "steps": self.steps,
                "loader": safe["loader"], "rng": safe["rng"], "window": safe["window"],
                "scheduler": _state.scheduler_state(self.scheduler), "best": self.best,
                "history": self.history, "metric_name": self.task.metric_name,
                "seed": self.seed}
        if rng_ranks is not None:  # one state per rank: "rng" is rank 0's
            meta.update(world_size=len(rng_ranks), rng_ranks=rng_ranks)
        return meta

    def _save_last(self, safe, rng_ranks=_GATHER):
        """Writes on rank 0 only; as one of several ranks, a collective."""
        if rng_ranks is _GATHER:
            rng_ranks = self._parallel.gather_rng(safe["rng"])
        if self._parallel.is_root:
            _io.save(self.last_path, self.model, self.optimizer, **self._meta(safe, rng_ranks))

    def _write_reports(self):
        if not self._parallel.is_root:
            return
        _state.write_json_atomic(self.metrics_path, {**self.history, "best": self.best,
                                                     "metric_name": self.task.metric_name})
        plots.plot_curves(self.curves_path, self.history, self.task.metric_name)


def _empty_window():
    return {"loss": 0.0, "count": 0, "lr": None, "stats": {}}
