"""CRNN's training recipe (models/crnn_train.py): a short run lowers the CTC
loss, the task reports word accuracy, and `nnlite train/predict crnn` work
end to end. Networks are shrunk so each test takes seconds."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import nnlite as nl
from nnlite import cli, models
from nnlite.models import crnn, crnn_train
from nnlite.training import Trainer

TINY = dict(channels=(4, 8, 8, 8, 16, 16, 16), hidden_size=16)


def tiny_recipe(**options):
    options = {"data": "synth", "model_options": TINY, "val_size": 16, "show": 0, "batch": 8,
               **options}
    return crnn_train.training_recipe(**options)


def test_twenty_steps_lower_the_ctc_loss(tmp_path):
    recipe = tiny_recipe(max_length=3)
    assert recipe.task.metric_name == "word_accuracy" and recipe.task.higher_is_better
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, recipe.train_loader,
                      recipe.val_loader, steps=20, eval_every=20, log_every=5,
                      out_dir=tmp_path, progress=False)
    history = trainer.fit()
    losses = [row["loss"] for row in history["train"]]
    assert losses[-1] < 0.9 * losses[0] and losses == sorted(losses, reverse=True), losses
    final = history["eval"][-1]
    assert set(final) == {"step", "word_accuracy", "character_error_rate", "loss"}
    assert 0.0 <= final["word_accuracy"] <= 1.0 and final["loss"] > 0


def test_recipe_follows_the_seed_config_and_a_fixed_validation_set():
    recipe = tiny_recipe()
    config = crnn.default_config()
    assert isinstance(recipe.optimizer, nl.optim.Adam) and recipe.scheduler is None
    assert recipe.optimizer.param_groups[0]["lr"] == config["lr"]
    assert recipe.model.blank == 62 and recipe.model.num_classes == 63
    first = [text for _, texts in recipe.val_loader for text in texts]
    again = [text for _, texts in tiny_recipe().val_loader for text in texts]
    assert first == again and len(first) == 16
    train_texts = {text for _, texts in [next(iter(recipe.train_loader))] for text in texts}
    assert all(1 <= len(t) <= crnn_train.DEFAULT_MAX_LENGTH for t in first)
    images, _ = next(iter(recipe.val_loader))
    assert images.shape[1:] == (1, 32, 128) and images.dtype == np.float32
    assert train_texts  # the training stream is a different, seeded draw
    compact = crnn_train.training_recipe(val_size=4, show=0).model
    assert compact.channels == crnn_train.SIZES["compact"]["channels"]


def test_evaluate_prints_predictions_beside_the_truth():
    recipe = tiny_recipe()
    lines = []
    recipe.task.show, recipe.task.printer = 3, lines.append
    recipe.model.eval()
    with nl.no_grad():
        recipe.task.evaluate(recipe.model, recipe.val_loader)
    truths = [text for _, texts in recipe.val_loader for text in texts][:3]
    assert len(lines) == 1 and all(repr(t) in lines[0] for t in truths)


def test_bad_size_and_missing_dataset_are_clear():
    with pytest.raises(ValueError, match="size must be one of"):
        crnn_train.training_recipe(size="huge")
    with pytest.raises(FileNotFoundError, match="MJSynth"):
        crnn_train.training_recipe(data="/no/such/mjsynth")


def test_the_default_recipe_is_the_main_jobs_printed_run():
    recipe = crnn_train.training_recipe(val_size=4, show=0, workers=0, model_options=TINY)
    assert isinstance(recipe.train_loader.dataset, crnn_train.PrintedWords)
    assert (recipe.steps, recipe.eval_every) == (3000, 500)
    assert isinstance(recipe.scheduler, nl.optim.lr_scheduler.CosineAnnealingLR)
    assert recipe.scheduler.T_max == 3000
    curriculum = recipe.train_loader.dataset.curriculum
    assert (curriculum.clean_steps, curriculum.ramp_steps) == (500, 2500)
    # the synthetic run keeps its own schedule: constant Adam, 1,500 steps
    synth = tiny_recipe()
    assert (synth.steps, synth.eval_every, synth.scheduler) == (1500, 250, None)


def test_the_cosine_schedule_spans_the_run_and_ends_at_a_hundredth():
    assert tiny_recipe().scheduler is None  # constant Adam by default
    recipe = tiny_recipe(lr_schedule="cosine", steps=6)
    schedule = recipe.scheduler
    assert isinstance(schedule, nl.optim.lr_scheduler.CosineAnnealingLR)
    start = recipe.optimizer.param_groups[0]["lr"]
    for _ in range(6):
        schedule.step()
    assert recipe.optimizer.param_groups[0]["lr"] == pytest.approx(start / 100)
    with pytest.raises(ValueError, match="lr_schedule must be one of 'constant', 'cosine', "
                                         "got 'linear'"):
        tiny_recipe(lr_schedule="linear")


def test_nnlite_train_hands_its_steps_to_the_recipe(tmp_path, monkeypatch):
    seen = {}
    full_recipe = crnn_train.training_recipe

    def recipe(data="synth", batch=None, seed=0, device="cpu", steps=crnn_train.DEFAULT_STEPS,
               lr_schedule="constant"):
        seen["steps"] = steps
        return full_recipe(data=data, batch=4, seed=seed, device=device, steps=steps,
                           lr_schedule=lr_schedule, model_options=TINY, val_size=8, show=0)
    monkeypatch.setattr(crnn_train, "training_recipe", recipe)
    assert cli.main(["train", "crnn", "--steps", "3", "--eval-every", "3",
                     "--option", "lr_schedule=cosine", "--out", str(tmp_path / "run")]) == 0
    assert seen["steps"] == 3
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # step 3 ran at the lr of two scheduler steps into a cosine over 3 steps:
    # lr * (0.01 + 0.99 * (1 + cos(2 pi / 3)) / 2)
    lr = crnn.default_config()["lr"]
    assert report["train"][-1]["lr"] == pytest.approx(lr * (0.01 + 0.99 * 0.25))


def test_the_registry_finds_the_recipe_module():
    assert crnn.RECIPE_MODULE == "crnn_train" and models.recipe_module("crnn") is crnn_train


def test_cli_train_then_predict(tmp_path, monkeypatch, capsys):
    full_recipe = crnn_train.training_recipe
    monkeypatch.setattr(crnn_train, "training_recipe",
                        lambda data="synth", batch=None, seed=0, device="cpu":
                        full_recipe(data=data, batch=batch or 8, seed=seed,
                                    model_options=TINY, val_size=8, show=2))
    out = tmp_path / "run"
    assert cli.main(["train", "crnn", "--steps", "4", "--eval-every", "2",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "best word_accuracy" in printed.out
    # each evaluation's line once, as it happens (not again in the closing lines)
    assert [printed.out.count(f"validation at step {n}:") for n in (2, 4)] == [1, 1]
    assert "validation examples (truth -> prediction)" in printed.err + printed.out
    assert sorted(os.listdir(out)) == ["best.h5", "curves.png", "last.h5", "metrics.json"]
    report = json.loads((out / "metrics.json").read_text())
    assert [row["step"] for row in report["eval"]] == [2, 4]

    image = (np.full((32, 100), 255, np.uint8))
    image[10:20, 10:60] = 0
    path = tmp_path / "word.png"
    Image.fromarray(image).save(path)
    assert cli.main(["predict", "crnn", str(out / "last.h5"), str(path)]) == 0
    line = capsys.readouterr().out.rstrip("\n")
    assert line.startswith(f"{path}\t")
    assert set(line.split("\t", 1)[1]) <= set(crnn.CHARACTERS)
    assert crnn_train.load_image(path).shape == (1, 32, 128)


def test_a_users_transparent_image_is_read_as_a_training_image_is(tmp_path):
    """`nnlite predict crnn word.png` and MJSynth training both go through
    read_image: a word saved with a transparent background is dark on white
    for both, bit for bit."""
    from nnlite.data import MJSynth
    rgba = np.zeros((31, 60, 4), np.uint8)  # transparent black background
    rgba[8:20, 5:50, 3] = 255  # an opaque black word
    path = tmp_path / "1" / "7_word_3.png"
    path.parent.mkdir()
    Image.fromarray(rgba, "RGBA").save(path)
    (tmp_path / "annotation_train.txt").write_text("./1/7_word_3.png 3\n")
    users = crnn_train.load_image(path)
    training = MJSynth(tmp_path, height=32, width=128, mode="pad")[0][0]
    np.testing.assert_array_equal(users, training)
    assert users[0, 0, :].min() == 1.0 and users[0, 14, 10:40].max() == 0.0


@pytest.mark.cuda
def test_the_recipe_trains_on_the_gpu(tmp_path):
    # The first real-GPU run found the recipe's batches left on the CPU.
    recipe = tiny_recipe(max_length=3, device="cuda")
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, recipe.train_loader,
                      recipe.val_loader, steps=3, eval_every=3, out_dir=tmp_path,
                      device="cuda", progress=False)
    history = trainer.fit()
    assert len(history["train"]) >= 1 and np.isfinite(history["eval"][-1]["loss"])
    assert all(p.device == "cuda" for p in recipe.model.parameters())


def test_predict_without_a_checkpoint_uses_the_packaged_weights(tmp_path, monkeypatch, capsys):
    # A stand-in for models/weights/crnn_printed.h5: a small trained-shape CRNN.
    nl.manual_seed(3)
    model = crnn.crnn(**TINY)
    weights = tmp_path / "crnn_printed.h5"
    nl.io.save(str(weights), model)
    image = np.full((32, 100), 255, np.uint8)
    image[8:24, 10:70] = 0
    word = tmp_path / "word.png"
    Image.fromarray(image).save(word)

    monkeypatch.setattr(crnn, "PRETRAINED_FILE", str(tmp_path / "absent.h5"))
    assert crnn.pretrained_weights() is None
    with pytest.raises(FileNotFoundError, match="no packaged weights"):
        crnn.pretrained()
    capsys.readouterr()
    assert cli.main(["predict", "crnn", str(word)]) == 2
    assert "crnn ships no pretrained weights" in capsys.readouterr().err

    monkeypatch.setattr(crnn, "PRETRAINED_FILE", str(weights))
    loaded = crnn.pretrained()
    assert not loaded.training and loaded.channels == TINY["channels"]
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert cli.main(["predict", "crnn", str(word), str(word)]) == 0
    packaged = capsys.readouterr().out
    assert cli.main(["predict", "crnn", str(weights), str(word), str(word)]) == 0
    assert capsys.readouterr().out == packaged and packaged.count(f"{word}\t") == 2


def test_init_starts_a_run_from_a_checkpoints_weights(tmp_path, monkeypatch, capsys):
    full_recipe = crnn_train.training_recipe
    monkeypatch.setattr(crnn_train, "training_recipe",
                        lambda data="synth", batch=None, seed=0, device="cpu":
                        full_recipe(data="synth", batch=batch or 4, seed=seed,
                                    model_options=TINY, val_size=4, show=0))
    first = tmp_path / "first"
    assert cli.main(["train", "crnn", "--steps", "2", "--eval-every", "2",
                     "--out", str(first)]) == 0
    saved = crnn_train.build_sized(size="compact", **TINY)
    nl.io.load(first / "last.h5", saved)
    seen = {}

    def fit(self, resume=False, overwrite=False):
        seen["weights"] = {k: v.numpy().copy() for k, v in self.model.state_dict().items()}
        seen["step"] = self.step
        return {"train": [], "eval": []}
    monkeypatch.setattr(Trainer, "fit", fit)
    assert cli.main(["train", "crnn", "--init", str(first / "last.h5"), "--steps", "2",
                     "--out", str(tmp_path / "second")]) == 0
    assert seen["step"] == 0  # a fresh run: step, optimiser and data start over
    for name, value in saved.state_dict().items():
        np.testing.assert_array_equal(seen["weights"][name], value.numpy(), err_msg=name)
    capsys.readouterr()
    assert cli.main(["train", "crnn", "--init", str(first / "last.h5"), "--resume",
                     "--out", str(first)]) == 2
    assert "--init starts a run from a checkpoint's weights and --resume continues a run" \
        in capsys.readouterr().err
    # the packaged weights are a half-width CRNN: the tiny recipe's model cannot take them
    assert cli.main(["train", "crnn", "--init", "pretrained", "--out",
                     str(tmp_path / "third")]) == 2
    assert "the recipe's model must have the checkpoint's shapes" in capsys.readouterr().err
