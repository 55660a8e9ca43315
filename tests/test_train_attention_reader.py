"""attention_reader's training recipe, prediction and attention masks (the
reproduction itself is a command: docs/results/vision.md)."""
import numpy as np
import pytest
from PIL import Image

import nnlite as nl
from nnlite import cli, models
from nnlite.data import SyntheticLetters
from nnlite.models import attention_reader as ar
from nnlite.training import Trainer

SMALL = dict(test_set_size=32, channels=4, hidden_size=32)


def test_recipe_follows_the_seed():
    recipe = ar.training_recipe(**SMALL)
    assert type(recipe.optimizer).__name__ == "Adam"
    assert recipe.optimizer.param_groups[0]["lr"] == 1e-3
    assert (recipe.steps, recipe.eval_every) == (10_000, 100)
    images, words = next(iter(recipe.train_loader))
    assert images.shape == (32, 1, 40, 40) and len(words) == 32
    val_words = [w for _, w in recipe.val_loader.dataset.items]
    assert len(val_words) == 32
    # the test set is fixed and drawn from another seed than the training batches
    train_words = [SyntheticLetters(32, seed=0)[i][1] for i in range(32)]
    assert val_words != train_words
    assert val_words == [w for _, w in ar.training_recipe(**SMALL).val_loader.dataset.items]


def test_lr_option_sets_adams_starting_rate():
    recipe = ar.training_recipe(lr=2e-3, **SMALL)
    assert recipe.optimizer.param_groups[0]["lr"] == 2e-3
    # the seed's rule cuts from the given rate
    for loss in (1.0, 1.1, 1.2, 1.3):
        recipe.task.last_eval_loss = loss
        recipe.scheduler.step(0.0)
    assert recipe.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="Adam: lr"):
        ar.training_recipe(lr=-1.0, **SMALL)


def test_cosine_and_step_schedules_run_every_iteration_without_watching_the_loss():
    recipe = ar.training_recipe(lr=2e-3, schedule="cosine", **SMALL)
    group = recipe.optimizer.param_groups[0]
    assert group["lr"] == 2e-3
    for _ in range(recipe.steps // 2):  # the Trainer steps it once per iteration
        recipe.scheduler.step()
    assert group["lr"] == pytest.approx(1e-3, rel=1e-9)  # half way down the cosine
    for _ in range(recipe.steps // 2):
        recipe.scheduler.step()
    assert group["lr"] == pytest.approx(0.0, abs=1e-12)
    step = ar.training_recipe(lr=2e-3, schedule="step", milestones=[2, 4], **SMALL)
    lrs = []
    for _ in range(5):
        step.scheduler.step()
        lrs.append(step.optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([2e-3, 2e-4, 2e-4, 2e-5, 2e-5], rel=1e-9)
    with pytest.raises(ValueError, match="milestones go with schedule='step'"):
        ar.training_recipe(schedule="step", **SMALL)
    for bad in (7000, [], [7000, "9000"], [0]):
        with pytest.raises(ValueError, match="milestones must be a list of positive"):
            ar.training_recipe(schedule="step", milestones=bad, **SMALL)
    assert ar.training_recipe(schedule="constant", **SMALL).scheduler is None
    with pytest.raises(ValueError, match="schedule must be one of"):
        ar.training_recipe(schedule="plateau", **SMALL)


def test_cli_options_reach_the_network():
    # --option keys the recipe does not name go on to the network (its
    # **overrides); regression: the CLI refused them and offered "overrides"
    from nnlite import cli_train
    options = cli_train._recipe_options(ar, ["conv_init=he", "lr=0.002"])
    assert options == {"conv_init": "he", "lr": 0.002}
    recipe = ar.training_recipe(**options, **SMALL)
    assert (recipe.model.c1.bias.numpy() == 0).all() and recipe.model.c1.init == "he"
    with pytest.raises(cli_train.CommandError, match="expected KEY=VALUE"):
        cli_train._recipe_options(ar, ["conv_init"])


def test_cli_unknown_option_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["train", "attention_reader", "--option", "colour=red", "--steps", "1",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "colour" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # a refused run leaves no empty folder


def test_font_option_draws_both_sets_in_that_font():
    default = ar.training_recipe(**SMALL)
    other = ar.training_recipe(font="cmss10", **SMALL)
    for a, b in ((default.val_loader.dataset.items[0], other.val_loader.dataset.items[0]),
                 (next(iter(default.train_loader)), next(iter(other.train_loader)))):
        assert list(a[1]) == list(b[1])  # the same words ...
        assert not np.array_equal(np.asarray(a[0]), np.asarray(b[0]))  # ... in another font
    with pytest.raises(FileNotFoundError, match="NoSuchFont"):
        ar.training_recipe(font="NoSuchFont", **SMALL)


def test_twenty_steps_lower_the_loss(tmp_path):
    recipe = ar.training_recipe(batch=16, **SMALL)
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, recipe.train_loader,
                      recipe.val_loader, steps=20, out_dir=tmp_path, scheduler=recipe.scheduler,
                      eval_every=20, log_every=1, progress=False)
    losses = [row["loss"] for row in trainer.fit()["train"]]
    assert len(losses) == 20
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses
    final = trainer.history["eval"][-1]
    assert 0.0 <= final["word_accuracy"] <= 1.0 and final["loss"] > 0


def test_lr_schedule_watches_the_test_loss_not_the_accuracy():
    recipe = ar.training_recipe(**SMALL)
    scheduler, task = recipe.scheduler, recipe.task
    # the loss rises after the first evaluation while the accuracy improves
    for loss, accuracy in ((1.0, 0.1), (1.1, 0.2), (1.2, 0.3)):
        task.last_eval_loss = loss
        scheduler.step(accuracy)
    assert recipe.optimizer.param_groups[0]["lr"] == 1e-3  # two fails: no cut yet
    task.last_eval_loss = 1.3
    scheduler.step(0.5)  # the third fail in a row
    assert recipe.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert "read_loss" not in scheduler.state_dict()  # the checkpoint stays JSON-able


def test_lr_schedule_is_the_seeds_fail_count():
    # deep_reader's main.py: a test loss above the best is a fail (equal is
    # not); the third fail in a row cuts lr x0.1, every further fail in that
    # row cuts again; a loss at or below the best resets the count.
    recipe = ar.training_recipe(**SMALL)
    scheduler, task = recipe.scheduler, recipe.task
    lrs = []
    for loss in (5.0, 4.0, 4.5, 4.6, 4.0, 4.1, 4.2, 4.3, 4.4, 3.9, 4.0, 4.1, 4.2):
        task.last_eval_loss = loss
        scheduler.step(0.0)
        lrs.append(recipe.optimizer.param_groups[0]["lr"])
    # fails:  -    -    1    2    0    1    2    3    4    0    1    2    3
    expected = [1e-3] * 7 + [1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-6]
    assert lrs == pytest.approx(expected, rel=1e-9)
    saved = scheduler.state_dict()
    assert saved["fails"] == 3 and saved["num_bad_epochs"] == 3 and saved["best"] == 3.9


def test_predict_masks_and_lexicon():
    nl.manual_seed(0)
    model = ar.attention_reader(channels=4, hidden_size=32)
    images = np.stack([SyntheticLetters(3, seed=5)[i][0] for i in range(3)])
    masks = ar.attention_masks(model, images)
    assert masks.shape == (3, 5, 40, 40)
    assert np.all(masks[:, 0] == 1.0) and np.all((masks[:, 1:] > 0) & (masks[:, 1:] < 1))
    words = ar.predict_texts(model, images)
    assert len(words) == 3 and all(set(w) <= set(ar.LETTERS) for w in words)
    lexicon = ["CAT", "DOG", "Q"]
    picked = ar.predict_texts(model, images, lexicon=lexicon)
    assert set(picked) <= set(lexicon)
    # the lexicon word is the one with the highest log-probability
    logits = model(nl.tensor(images))[0].numpy().astype(np.float64)
    scores, words = ar._lexicon_scores(logits, lexicon, 5)
    assert scores.shape == (3, 3) and np.all(scores < 0)
    assert picked == [lexicon[i] for i in scores.argmax(axis=1)]


def test_load_image_resizes_and_reads_npy(tmp_path):
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tmp_path / "a.png")
    image = ar.load_image(tmp_path / "a.png")
    assert image.shape == (1, 40, 40) and image.dtype == np.float32
    np.testing.assert_allclose(image, 1.0, atol=1e-6)
    np.save(tmp_path / "b.npy", np.zeros((1, 40, 40)))
    assert ar.load_image(str(tmp_path / "b.npy")).shape == (1, 40, 40)
    with pytest.raises(ValueError, match="synthetic letters only"):
        ar.training_recipe(data=str(tmp_path))


def test_cli_visualize_writes_png_and_gif(tmp_path, capsys):
    nl.manual_seed(1)
    model = models.get("attention_reader")[0]()
    nl.io.save(tmp_path / "model.h5", model)
    image, _ = SyntheticLetters(1, seed=2)[0]
    Image.fromarray((np.clip(image[0], 0, 1) * 255).astype(np.uint8)).save(tmp_path / "w.png")
    assert cli.main(["visualize", "attention_reader", str(tmp_path / "model.h5"),
                     str(tmp_path / "w.png"), "--out", str(tmp_path / "viz")]) == 0
    assert "w_attention.png" in capsys.readouterr().out
    with Image.open(tmp_path / "viz" / "w_attention.gif") as gif:
        assert gif.n_frames == 5
    with Image.open(tmp_path / "viz" / "w_attention.png") as png:
        assert png.size[0] > png.size[1] > 0
