"""Training recipes of digit_sequence (fixed and variable length): 20-step
smoke runs, the CLI train + predict run."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import nnlite as nl
from nnlite import cli
from nnlite.data import SyntheticDigitSequences
from nnlite.models import digit_sequence as ds
from nnlite.training import Trainer


def run_steps(module, model, tmp_path, steps=20, batch=4):
    recipe = module.training_recipe(batch=batch, model=model, validation_size=8)
    recipe.model.eval()
    with nl.no_grad():
        before = recipe.task.evaluate(recipe.model, recipe.val_loader)
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, recipe.train_loader,
                      recipe.val_loader, steps=steps, out_dir=tmp_path, eval_every=steps,
                      log_every=1, progress=False)
    history = trainer.fit()
    return recipe, before, history


@pytest.mark.parametrize("model", ["digit_sequence", "digit_sequence_variable"])
def test_twenty_steps_lower_the_loss(model, tmp_path):
    recipe, before, history = run_steps(ds, model, tmp_path, batch=2)
    assert recipe.optimizer.param_groups[0]["lr"] == 1e-4
    after = history["eval"][-1]
    # the fixed validation set's loss falls (slowly at the seed's lr 1e-4; the box first)
    assert after["loss"] < before["loss"] and after["box_error"] < before["box_error"], \
        (before, after)
    assert set(after) == {"step", "sequence_accuracy", "character_accuracy", "box_error", "loss"}
    assert len(history["train"]) == 20
    labels = np.stack([item[1] for item in recipe.val_loader.dataset.items])
    padded = (labels == ds.NO_DIGIT).any()
    assert padded == (model == "digit_sequence_variable")


def test_recipe_checks_its_model_name():
    with pytest.raises(ValueError, match="unknown model 'svhn'"):  # svhn's own module
        ds.training_recipe(model="svhn", validation_size=2)
    with pytest.raises(FileNotFoundError):
        ds.training_recipe(data="/no/such/mnist", validation_size=2)


def test_recipe_takes_another_learning_rate():
    recipe = ds.training_recipe(lr=1e-3, validation_size=2)
    assert recipe.optimizer.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="lr must be a positive number, got 'fast'"):
        ds.training_recipe(lr="fast", validation_size=2)


def test_cli_train_writes_the_run_and_predict_reads_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ds, "CPU_VALIDATION_SIZE", 4)
    out = tmp_path / "run"
    assert cli.main(["train", "digit_sequence_variable", "--steps", "2", "--batch", "2",
                     "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["best.h5", "curves.png", "last.h5", "metrics.json"]
    report = json.loads((out / "metrics.json").read_text())
    assert report["metric_name"] == "sequence_accuracy"
    assert [row["step"] for row in report["eval"]] == [2]
    capsys.readouterr()
    image, _, _ = SyntheticDigitSequences(1, seed=4)[0]
    Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / "digits.png")
    assert ds.load_image(tmp_path / "digits.png").shape == (1, 128, 256)
    assert cli.main(["predict", "digit_sequence_variable", str(out / "last.h5"),
                     str(tmp_path / "digits.png")]) == 0
    path, text = capsys.readouterr().out.strip().split("\t")
    assert path.endswith("digits.png") and set(text) <= set("0123456789") and len(text) <= 5


@pytest.mark.parametrize("model, width", [("digit_sequence", 140.0),
                                          ("digit_sequence_variable", None)])
def test_box_bias_mean_starts_the_box_head_at_the_mean_training_box(model, width, monkeypatch):
    monkeypatch.setattr(ds, "MEAN_BOX_SAMPLES", 60)
    seed_recipe = ds.training_recipe(model=model, validation_size=8)
    recipe = ds.training_recipe(model=model, validation_size=8, box_bias="mean")
    bias = recipe.model.box_layers[-1].bias.numpy()
    train = recipe.train_loader.dataset
    expected = np.mean([train[i][2] for i in range(60)], axis=0)
    np.testing.assert_allclose(bias, expected, rtol=1e-6)
    # the canvas is 256 x 128, the strip 28 high and 28 per digit wide
    assert abs(bias[0] - 128) < 12 and abs(bias[1] - 64) < 10 and bias[2] == 28
    assert bias[3] == width if width else 28 <= bias[3] <= 140
    # only that bias differs from the seed's start (zero), not the draw of the weights
    for (name, a), (_, b) in zip(seed_recipe.model.state_dict().items(),
                                 recipe.model.state_dict().items()):
        if name != f"box_layers.{len(ds.BOX_LAYERS) - 2}.bias":
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert (seed_recipe.model.box_layers[-1].bias.numpy() == 0).all()
    # so the first evaluation's box error is the boxes' spread, not their squared size
    recipe.model.eval(), seed_recipe.model.eval()
    with nl.no_grad():
        errors = [r.task.evaluate(r.model, r.val_loader)["box_error"]
                  for r in (seed_recipe, recipe)]
    assert errors[1] < 0.25 * errors[0], errors
    with pytest.raises(ValueError, match="box_bias must be 'mean' or four numbers, got 'median'"):
        ds.training_recipe(validation_size=2, box_bias="median")
