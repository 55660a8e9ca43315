"""scripts/digit_loss_gradients.py: each term's gradient alone, reset between
terms, averaged over batches."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.data import SyntheticDigitSequences
from nnlite.models import digit_sequence as ds

from script_loading import load_script


def _batches(count):
    data = SyntheticDigitSequences(2 * count, seed=5)
    items = [data[i] for i in range(2 * count)]
    return [tuple(np.stack([item[k] for item in items[2 * b:2 * b + 2]]) for k in range(3))
            for b in range(count)]


def _terms(outputs, labels, boxes):
    _, classification, localisation = ds.loss(outputs, labels, boxes)
    return {"ce": classification, "mse": localisation, "twice ce": 2 * classification}


def test_each_term_reaches_only_its_own_head_and_scales_with_its_weight():
    norms = load_script("digit_loss_gradients").term_gradient_norms
    nl.manual_seed(0)
    model = ds.digit_sequence(box_bias=[128, 64, 28, 140])
    (batch,) = _batches(1)
    got = norms(model, [batch], _terms)
    box_names = [n for n in got["ce"] if n.startswith("box_layers.")]
    digit_names = [n for n in got["ce"] if n.startswith(("digit_heads.", "gru."))]
    assert box_names and digit_names
    assert all(got["ce"][n] == 0 for n in box_names)      # CE never reaches the box head
    assert all(got["mse"][n] == 0 for n in digit_names)   # nor MSE the digit heads
    assert all(got["ce"][n] > 0 for n in digit_names) and got["mse"]["convs.0.weight"] > 0
    for name, value in got["ce"].items():  # reset between terms: no accumulation
        assert got["twice ce"][name] == pytest.approx(2 * value, rel=1e-5)
    # against the gradient taken directly
    outputs = model(nl.tensor(batch[0]))
    for parameter in model.parameters():
        parameter.grad = None
    ds.loss(outputs, batch[1], batch[2])[2].backward()
    assert got["mse"]["convs.2.weight"] == pytest.approx(
        float(np.linalg.norm(model.convs[2].weight.grad.numpy())), rel=1e-5)


def test_norms_are_averaged_over_batches():
    norms = load_script("digit_loss_gradients").term_gradient_norms
    nl.manual_seed(0)
    model = ds.digit_sequence()
    first, second = _batches(2)
    both = norms(model, [first, second], _terms)["mse"]["convs.1.weight"]
    one = norms(model, [first], _terms)["mse"]["convs.1.weight"]
    two = norms(model, [second], _terms)["mse"]["convs.1.weight"]
    assert both == pytest.approx((one + two) / 2, rel=1e-6) and one != two
    with pytest.raises(ValueError, match="no batches to measure"):
        norms(model, [], _terms)
