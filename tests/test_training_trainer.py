"""nnlite.training.Trainer on a toy task: learning, checkpoints, reports,
exact resume (across an epoch boundary, with dropout and BatchNorm) and
Ctrl-C safety."""
import json
import os

import matplotlib.image
import numpy as np
import pytest

import nnlite as nl
from nnlite.training import ClassificationTask, Trainer

from training_toys import parameters, toy_loaders, toy_model, toy_trainer


def train_losses(trainer):
    return [row["loss"] for row in trainer.history["train"]]


def test_loss_falls_and_accuracy_rises(tmp_path):
    trainer = toy_trainer(tmp_path, steps=60, eval_every=20, log_every=10)
    history = trainer.fit()
    losses = [row["loss"] for row in history["train"]]
    assert [row["step"] for row in history["train"]] == [10, 20, 30, 40, 50, 60]
    assert losses[-1] < 0.5 * losses[0]
    assert history["eval"][-1]["accuracy"] > 0.8


def test_checkpoints_metrics_json_and_curves(tmp_path):
    trainer = toy_trainer(tmp_path, steps=10, eval_every=4, log_every=3)
    trainer.fit()
    assert sorted(os.listdir(tmp_path)) == ["best.h5", "curves.png", "last.h5",
                                            "metrics.json"]
    with open(tmp_path / "metrics.json") as f:
        report = json.load(f)
    assert [row["step"] for row in report["train"]] == [3, 6, 9, 10]
    assert report["train"][-1]["partial"] is True and "partial" not in report["train"][0]
    assert [row["step"] for row in report["eval"]] == [4, 8, 10]
    assert all({"loss", "lr", "accuracy"} <= set(row) for row in report["train"])
    # StepLR(step_size=4, gamma=0.7): steps 1-4 at 0.02, 5-8 at 0.014, 9-10 at 0.0098
    assert [row["lr"] for row in report["train"]] == pytest.approx([0.02, 0.014, 0.0098,
                                                                    0.0098])
    accuracies = [row["accuracy"] for row in report["eval"]]
    best_step = report["eval"][int(np.argmax(accuracies))]["step"]
    assert report["best"] == {"step": best_step, "accuracy": max(accuracies)}
    picture = matplotlib.image.imread(tmp_path / "curves.png")
    assert picture.ndim == 3 and picture.shape[:2] == (400, 1000)
    assert picture.std() > 0.05  # something was drawn

    # last.h5 holds the final weights; best.h5 reproduces the best metric
    fresh = toy_model()
    meta = nl.io.load(tmp_path / "last.h5", fresh)
    assert meta["step"] == 10
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), trainer.model.state_dict()[name].numpy())
    meta = nl.io.load(tmp_path / "best.h5", fresh)
    assert meta["step"] == best_step
    fresh.eval()
    with nl.no_grad():
        again = ClassificationTask().evaluate(fresh, toy_loaders()[1])
    assert again["accuracy"] == max(accuracies)


def test_higher_is_better_false_keeps_the_lowest(tmp_path):
    class LossMetric(ClassificationTask):
        metric_name, higher_is_better = "loss", False
    trainer = toy_trainer(tmp_path, steps=12, eval_every=3, task=LossMetric())
    trainer.fit()
    losses = [row["loss"] for row in trainer.history["eval"]]
    assert trainer.best["loss"] == min(losses)
    assert nl.io.load(tmp_path / "best.h5", toy_model())["step"] == \
        trainer.history["eval"][int(np.argmin(losses))]["step"]


class NoisyEvaluation(ClassificationTask):
    """Draws random numbers while evaluating: the split run evaluates at its
    end (step `stop`) where the whole run does not, so evaluation must leave
    the generators as it found them."""

    def evaluate(self, model, loader):
        nl.randn(3), np.random.rand(), __import__("random").random()
        return super().evaluate(model, loader)


@pytest.mark.parametrize("stop", [3, 6, 8])  # 8 batches per epoch: 8 ends epoch 0
def test_resume_is_bit_identical(tmp_path, stop):
    whole = toy_trainer(tmp_path / "whole", steps=10, task=NoisyEvaluation())
    whole.fit()
    first = toy_trainer(tmp_path / "split", steps=stop, task=NoisyEvaluation())
    first.fit()
    # different initial weights and a fresh loader: everything must come from last.h5
    resumed = toy_trainer(tmp_path / "split", steps=10, init_seed=99, task=NoisyEvaluation())
    nl.manual_seed(12345)  # and a disturbed generator
    resumed.fit(resume=True)
    assert resumed.step == 10
    assert train_losses(resumed) == train_losses(whole)
    for name, value in parameters(whole).items():
        np.testing.assert_array_equal(parameters(resumed)[name], value, err_msg=name)
    assert resumed.optimizer.param_groups[0]["lr"] == whole.optimizer.param_groups[0]["lr"]
    assert resumed.train_loader.state_dict() == whole.train_loader.state_dict()
    for index, entry in whole.optimizer.state_dict()["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(
                resumed.optimizer.state_dict()["state"][index][key], value)


class InterruptingTask(ClassificationTask):
    """Raises KeyboardInterrupt in the loss of step `at` (1-based), after the
    forward pass has drawn dropout masks and updated BatchNorm statistics."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def loss(self, model, batch):
        self.calls += 1
        result = super().loss(model, batch)
        if self.calls == self.at:
            raise KeyboardInterrupt
        return result


def test_resume_logs_what_an_unbroken_run_logs(tmp_path):
    whole = toy_trainer(tmp_path / "whole", steps=10, log_every=4)
    whole.fit()
    first = toy_trainer(tmp_path / "split", steps=6, log_every=4)
    first.fit()
    assert [(row["step"], row.get("partial")) for row in first.history["train"]] == \
        [(4, None), (6, True)]  # steps 5-6 shown as a partial window
    resumed = toy_trainer(tmp_path / "split", steps=10, log_every=4)
    resumed.fit(resume=True)
    assert resumed.history["train"] == whole.history["train"]
    assert [row["step"] for row in whole.history["train"]] == [4, 8, 10]


def test_ctrl_c_saves_and_resume_continues_bit_identically(tmp_path):
    whole = toy_trainer(tmp_path / "whole", steps=10)
    whole.fit()
    interrupted = toy_trainer(tmp_path / "split", steps=10, task=InterruptingTask(at=7))
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert interrupted.step == 6
    meta = nl.io.load(tmp_path / "split" / "last.h5", toy_model())
    assert meta["step"] == 6 and meta["loader"] == {"seed": 7, "epoch": 0, "batch": 6}
    assert (tmp_path / "split" / "metrics.json").exists()
    resumed = toy_trainer(tmp_path / "split", steps=10, init_seed=5)
    resumed.fit(resume=True)
    assert train_losses(resumed) == train_losses(whole)
    for name, value in parameters(whole).items():
        np.testing.assert_array_equal(parameters(resumed)[name], value, err_msg=name)


def test_resume_without_checkpoint_names_the_file(tmp_path):
    trainer = toy_trainer(tmp_path / "empty", steps=5)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from: .*empty.*last.h5"):
        trainer.fit(resume=True)


def test_resume_of_a_finished_run_does_nothing(tmp_path):
    toy_trainer(tmp_path, steps=4).fit()
    again = toy_trainer(tmp_path, steps=4, init_seed=3)
    again.fit(resume=True)
    assert again.step == 4 and len(again.history["train"]) == 4


def drop_step_size(meta):
    del meta["scheduler"]["step_size"]  # as if saved from another kind of scheduler


def drop_loader_batch(meta):
    del meta["loader"]["batch"]


def break_numpy_rng(meta):
    meta["rng"]["numpy"]["state"]["key"] = [1, 2, 3]


def set_step_text(meta):
    meta["step"] = "abc"


@pytest.mark.parametrize("change, message", [
    (drop_step_size, "the saved StepLR state has keys"),
    (drop_loader_batch, "loader state cannot be restored: KeyError"),
    (break_numpy_rng, "rng state cannot be restored"),
    (set_step_text, "step 'abc' is not a step count"),
], ids=["scheduler", "loader", "rng", "step"])
def test_failed_resume_changes_nothing(tmp_path, change, message):
    # The meta is checked inside nl.io.load, before the weights are copied in:
    # a resume that fails on the scheduler, loader or random state used to
    # leave the checkpoint's weights (and part of that state) in place.
    first = toy_trainer(tmp_path, steps=5)
    first.fit()
    meta = nl.io.load(tmp_path / "last.h5", toy_model())
    change(meta)
    nl.io.save(tmp_path / "last.h5", first.model, first.optimizer, **meta)

    resumed = toy_trainer(tmp_path, steps=10, init_seed=3)
    weights = parameters(resumed)
    scheduler, loader = resumed.scheduler.state_dict(), resumed.train_loader.state_dict()
    rng = nl.training.state.capture_rng()
    with pytest.raises(nl.io.CheckpointError, match=f"last.h5 cannot resume.*{message}"):
        resumed.fit(resume=True)
    for name, value in parameters(resumed).items():
        np.testing.assert_array_equal(value, weights[name], err_msg=name)
    assert resumed.optimizer.state == {}
    assert resumed.scheduler.state_dict() == scheduler
    assert resumed.train_loader.state_dict() == loader
    assert nl.training.state.capture_rng() == rng


def test_without_validation_only_last_is_kept(tmp_path):
    model = toy_model()
    train, _ = toy_loaders()
    trainer = Trainer(model, nl.optim.SGD(model.parameters(), lr=0.1), ClassificationTask(),
                      train, steps=5, out_dir=tmp_path, eval_every=2, progress=False)
    trainer.fit()
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "last.h5", "metrics.json"]
    assert trainer.best is None and trainer.history["eval"] == []


def test_bad_arguments_are_named(tmp_path):
    model = toy_model()
    train, val = toy_loaders()
    sgd = nl.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="Trainer: steps must be a positive int, got 0"):
        Trainer(model, sgd, ClassificationTask(), train, val, steps=0, out_dir=tmp_path)
    with pytest.raises(TypeError, match="does not follow the Task protocol.*missing loss, "
                                        "evaluate, metric_name, higher_is_better"):
        Trainer(model, sgd, object(), train, val, steps=3, out_dir=tmp_path)
    with pytest.raises(TypeError, match="train_loader \\(list\\) lacks state_dict"):
        Trainer(model, sgd, ClassificationTask(), [1, 2], val, steps=3, out_dir=tmp_path)

    class NoMetric(ClassificationTask):
        def evaluate(self, model, loader):
            return {"loss": 1.0}
    trainer = Trainer(model, sgd, NoMetric(), train, val, steps=2, out_dir=tmp_path,
                      progress=False)
    with pytest.raises(ValueError, match="must return a dict holding the task's metric "
                                         "'accuracy'"):
        trainer.fit()


def _contents(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_a_fresh_fit_refuses_a_folder_holding_files(tmp_path):
    toy_trainer(tmp_path, steps=4).fit()
    before = _contents(tmp_path)
    again = toy_trainer(tmp_path, steps=1, init_seed=3)
    with pytest.raises(FileExistsError, match=r"already holds best.h5, curves.png, last.h5, "
                                              r"metrics.json; fit\(resume=True\) continues"):
        again.fit()
    assert _contents(tmp_path) == before  # not one byte of the earlier run changed
    with pytest.raises(ValueError, match="resume=True continues .* overwrite=True replaces"):
        again.fit(resume=True, overwrite=True)


def test_overwrite_replaces_the_whole_run(tmp_path):
    toy_trainer(tmp_path, steps=4).fit()  # with validation: writes best.h5
    model = toy_model()
    train, _ = toy_loaders()
    unvalidated = Trainer(model, nl.optim.SGD(model.parameters(), lr=0.1), ClassificationTask(),
                          train, steps=2, out_dir=tmp_path, log_every=1, progress=False)
    unvalidated.fit(overwrite=True)
    # the earlier run's best.h5 would pass for this run's: it is gone
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "last.h5", "metrics.json"]
    with open(tmp_path / "metrics.json") as f:
        assert [row["step"] for row in json.load(f)["train"]] == [1, 2]


def test_every_evaluation_prints_its_step_and_metrics(tmp_path, capsys):
    trainer = toy_trainer(tmp_path, steps=10, eval_every=4, log_every=5, progress=True)
    history = trainer.fit()
    printed = [line for line in capsys.readouterr().out.splitlines()
               if line.startswith("validation at step")]
    assert [line.split(":")[0] for line in printed] == [
        "validation at step 4", "validation at step 8", "validation at step 10"]
    last = history["eval"][-1]
    assert printed[-1] == (f"validation at step 10: accuracy {last['accuracy']:.4g}, "
                           f"loss {last['loss']:.4g}")


def test_quiet_training_prints_no_evaluation_lines(tmp_path, capsys):
    toy_trainer(tmp_path, steps=4, eval_every=2, log_every=2, progress=False).fit()
    assert "validation at step" not in capsys.readouterr().out


def test_curves_plot_the_loss_on_a_log_scale_and_every_validation_metric():
    from nnlite.training.plots import curves_figure
    history = {"train": [{"step": 1, "loss": 57.0}, {"step": 2, "loss": 3.0},
                         {"step": 3, "loss": 0.4}],
               "eval": [{"step": 2, "word_accuracy": 0.1, "character_error_rate": 0.8,
                         "loss": 5.0},
                        {"step": 3, "word_accuracy": 0.6, "character_error_rate": 0.2,
                         "loss": 1.0}]}
    loss_axes, metric_axes = curves_figure(history, "word_accuracy").axes
    assert loss_axes.get_yscale() == "log"
    assert [line.get_label() for line in metric_axes.get_lines()] == [
        "word_accuracy", "character_error_rate"]
    assert list(metric_axes.get_lines()[1].get_ydata()) == [0.8, 0.2]
    # a loss that is not positive (a regression's can be 0) keeps a linear axis
    history["train"][2]["loss"] = 0.0
    assert curves_figure(history, "word_accuracy").axes[0].get_yscale() == "linear"


def test_clip_grad_norm_bounds_each_step_and_logs_the_norm(tmp_path):
    model = toy_model()
    train, val = toy_loaders()
    sgd = nl.optim.SGD(model.parameters(), lr=1.0)
    before = [p.numpy().copy() for p in model.parameters()]  # not BatchNorm's statistics
    trainer = Trainer(model, sgd, ClassificationTask(), train, val, steps=1, out_dir=tmp_path,
                      log_every=1, progress=False, clip_grad_norm=1e-3)
    trainer.fit()
    moved = np.sqrt(sum(float(((p.numpy() - b) ** 2).sum())
                        for p, b in zip(model.parameters(), before)))
    assert moved == pytest.approx(1e-3, rel=1e-3)  # SGD lr 1: the step is the clipped gradient
    assert trainer.history["train"][0]["grad_norm"] > 1e-2  # logged before clipping
    with pytest.raises(ValueError, match="Trainer: clip_grad_norm must be a positive finite "
                                         "number, got 0"):
        Trainer(model, sgd, ClassificationTask(), train, val, steps=1, out_dir=tmp_path,
                clip_grad_norm=0)


def test_without_clipping_no_grad_norm_is_logged(tmp_path):
    trainer = toy_trainer(tmp_path, steps=2)
    trainer.fit()
    assert "grad_norm" not in trainer.history["train"][0]
