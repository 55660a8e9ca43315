"""Training recipes of svhn / svhn_no_pooling (synthetic stand-in data):
20-step smoke runs."""
import numpy as np
import pytest

from nnlite.data import SyntheticDigitSequences
from nnlite.models import svhn

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
