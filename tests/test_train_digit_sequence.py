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
    path, text, box = capsys.readouterr().out.strip().split("\t")
    assert path.endswith("digits.png") and set(text) <= set("0123456789") and len(text) <= 5
    assert len([float(v) for v in box.split(",")]) == 4


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


def _known_reader(path):
    """A digit_sequence checkpoint whose outputs are known: zero head weights, so
    the digits are the heads' biases (3, 7, 2, then no digit) and the box is
    the box head's bias."""
    net = ds.digit_sequence(box_bias=[100.0, 60.0, 28.0, 84.0])
    net.box_layers[-1].weight.data[...] = 0
    for position, head in enumerate(net.digit_heads):
        head.weight.data[...] = 0
        head.bias.data[...] = 0
        head.bias.data[[3, 7, 2, ds.NO_DIGIT, ds.NO_DIGIT][position]] = 5.0
    nl.io.save(path, net)


def test_predict_prints_the_digits_and_the_box(tmp_path, capsys):
    _known_reader(tmp_path / "known.h5")
    image, _, _ = SyntheticDigitSequences(1, seed=4)[0]
    np.save(tmp_path / "digits.npy", image)
    assert cli.main(["predict", "digit_sequence", str(tmp_path / "known.h5"),
                     str(tmp_path / "digits.npy")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'digits.npy'}\t372\t100.0,60.0,28.0,84.0\n"


def test_visualize_draws_the_box_and_the_digits(tmp_path, capsys):
    from nnlite.training import plots
    _known_reader(tmp_path / "known.h5")
    image, _, _ = SyntheticDigitSequences(1, seed=4)[0]
    np.save(tmp_path / "digits.npy", image)
    assert cli.main(["visualize", "digit_sequence", str(tmp_path / "known.h5"),
                     str(tmp_path / "digits.npy"), "--out", str(tmp_path / "pictures")]) == 0
    png = tmp_path / "pictures" / "digits_box.png"
    assert capsys.readouterr().out == f"{tmp_path / 'digits.npy'}: {png}\n"
    assert Image.open(png).size[0] > Image.open(png).size[1]  # the 256x128 canvas's shape
    figure = plots.box_figure(image, [100.0, 60.0, 28.0, 84.0], "372")
    axes = figure.axes[0]
    (rectangle,) = axes.patches
    # edges at x 58 and 142, y 46 and 74 (a pixel i spans [i, i + 1)), in imshow's
    # frame where pixel i is centred at i
    assert rectangle.get_xy() == (57.5, 45.5)
    assert (rectangle.get_width(), rectangle.get_height()) == (84.0, 28.0)
    assert axes.get_title() == "read: 372"
    assert plots.box_figure(image, [1, 1, 1, 1], "").axes[0].get_title() == "read: (nothing)"
