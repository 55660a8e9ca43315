"""Training recipes of svhn / svhn_no_pooling (synthetic stand-in data):
20-step smoke runs."""
import numpy as np
import pytest

from nnlite.data import SyntheticDigitSequences
from nnlite.models import digit_sequence as ds, svhn

from test_train_digit_sequence import run_steps


@pytest.mark.parametrize("model", ["svhn", "svhn_no_pooling"])
def test_svhn_twenty_steps_lower_the_loss(model, tmp_path, monkeypatch):
    monkeypatch.setattr(svhn, "NORMALISATION_SAMPLE", 16)
    recipe, before, history = run_steps(svhn, model, tmp_path, batch=2)
    assert recipe.model.pooling == (model == "svhn")
    images, labels, boxes = next(iter(recipe.train_loader))
    assert images.shape == (2, 3, 128, 256) and labels.shape == (2, 6) and boxes.shape == (2, 4)
    assert np.all(labels[:, 5] == svhn.NO_DIGIT)
    assert np.abs(images).max() < 100  # the std floor keeps unseen ink finite
    assert history["eval"][-1]["loss"] < before["loss"], (before, history["eval"])


def test_normalisation_statistics_and_model_check(monkeypatch):
    monkeypatch.setattr(svhn, "NORMALISATION_SAMPLE", 4)
    train, val, (mean, std) = svhn.svhn_datasets("synth", 0, 2)
    assert mean.shape == std.shape == (3, 128, 256)
    assert std.min() == svhn.MIN_STD and std.max() > svhn.MIN_STD
    image, labels, _ = val.items[0]
    raw, _, _ = svhn._three_channels(*SyntheticDigitSequences(2, seed=1_000_003,
                                                              variable_length=True)[0])
    np.testing.assert_allclose(image, (raw - mean) / (std + 1e-8), rtol=1e-5, atol=1e-5)
    assert len(labels) == 6
    with pytest.raises(ValueError, match="unknown model 'digit_sequence'"):
        svhn.training_recipe(model="digit_sequence")


def test_box_bias_mean_starts_the_box_head_at_the_mean_training_box(monkeypatch):
    monkeypatch.setattr(svhn, "NORMALISATION_SAMPLE", 4)
    monkeypatch.setattr(ds, "MEAN_BOX_SAMPLES", 40)
    seed_recipe = svhn.training_recipe(validation_size=4)
    recipe = svhn.training_recipe(validation_size=4, box_bias="mean")
    train = recipe.train_loader.dataset
    expected = np.mean([train[i][2] for i in range(40)], axis=0)
    np.testing.assert_allclose(recipe.model.box_head.bias.numpy(), expected, rtol=1e-6)
    assert expected[2] == 28 and 28 <= expected[3] <= 140  # 1-5 digits, 28 px each
    # only that bias differs from the seed's start (zero), not the draw of the weights
    for (name, a), (_, b) in zip(seed_recipe.model.state_dict().items(),
                                 recipe.model.state_dict().items()):
        if name != "box_head.bias":
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert (seed_recipe.model.box_head.bias.numpy() == 0).all()
    with pytest.raises(ValueError, match="svhn.training_recipe: box_bias must be 'mean' or "
                                         "four numbers, got 'median'"):
        svhn.training_recipe(validation_size=2, box_bias="median")
