"""Learning-rate schedulers: lr sequences worked out by hand from PyTorch's rules."""
import pytest

import nnlite as nl
from nnlite import nn, optim
from nnlite.optim import lr_scheduler


def sgd(lr=1.0, groups=1):
    params = [nn.Parameter(nl.ones(2)) for _ in range(groups)]
    return optim.SGD([{"params": [p]} for p in params], lr=lr)


def lrs_over_epochs(scheduler, epochs):
    sequence = []
    for _ in range(epochs):
        scheduler.optimizer.step()
        scheduler.step()
        sequence.append(scheduler.get_last_lr()[0])
    return sequence


def test_step_lr_sequence():
    scheduler = lr_scheduler.StepLR(sgd(), step_size=2, gamma=0.5)
    assert scheduler.get_last_lr() == [1.0]
    assert lrs_over_epochs(scheduler, 6) == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert scheduler.optimizer.param_groups[0]["lr"] == 0.125


def test_multistep_exponential_and_lambda_sequences():
    multi = lr_scheduler.MultiStepLR(sgd(), milestones=[2, 4], gamma=0.1)
    assert lrs_over_epochs(multi, 5) == pytest.approx([1.0, 0.1, 0.1, 0.01, 0.01])
    exponential = lr_scheduler.ExponentialLR(sgd(), gamma=0.5)
    assert lrs_over_epochs(exponential, 3) == [0.5, 0.25, 0.125]
    decay = 0.5  # Keras's time-based decay, lr / (1 + decay * t)
    keras = lr_scheduler.LambdaLR(sgd(lr=0.1), lambda t: 1 / (1 + decay * t))
    assert lrs_over_epochs(keras, 3) == pytest.approx([0.1 / 1.5, 0.1 / 2, 0.1 / 2.5])


def test_scheduler_scales_each_group_from_its_own_lr():
    optimizer = sgd(groups=2)
    optimizer.param_groups[1]["lr"] = 0.1
    scheduler = lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    lrs_over_epochs(scheduler, 2)
    assert scheduler.get_last_lr() == pytest.approx([0.25, 0.025])
    assert [g["initial_lr"] for g in optimizer.param_groups] == [1.0, 0.1]


def test_step_lr_state_dict_resumes():
    first = lr_scheduler.StepLR(sgd(), step_size=3, gamma=0.1)
    lrs_over_epochs(first, 4)
    saved = first.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 4
    optimizer = sgd(lr=first.get_last_lr()[0])
    second = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    second.load_state_dict(saved)
    assert lrs_over_epochs(second, 3) == lrs_over_epochs(first, 3)


PLATEAU_METRICS = [10, 9, 9, 9, 9, 9, 8, 8, 8]


@pytest.mark.parametrize("cooldown, expected", [
    # patience=1: the second epoch without improvement cuts lr in half.
    (0, [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]),
    # cooldown=1: the epoch after a cut is not counted as bad.
    (1, [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]),
])
def test_reduce_on_plateau_min_rel(cooldown, expected):
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=1,
                                               cooldown=cooldown)
    got = []
    for metric in PLATEAU_METRICS:
        scheduler.step(metric)
        got.append(scheduler.get_last_lr()[0])
    assert got == expected


def test_reduce_on_plateau_max_abs_and_min_lr():
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd(), mode="max", factor=0.5, patience=0,
                                               threshold=0.5, threshold_mode="abs")
    got = []
    for metric in [1.0, 1.4, 1.6, 1.7, 1.8]:  # gains under 0.5 do not count
        scheduler.step(nl.tensor(metric))
        got.append(scheduler.get_last_lr()[0])
    assert got == [1.0, 0.5, 0.5, 0.25, 0.125]

    floor = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.1, patience=0, min_lr=0.05)
    for metric in [1.0, 1.0, 1.0, 1.0]:
        floor.step(metric)
    assert floor.get_last_lr() == [0.05]


def test_reduce_on_plateau_rel_threshold_needs_a_real_improvement():
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=0, threshold=0.1)
    scheduler.step(1.0)
    scheduler.step(0.95)  # better, but not by 10%: a bad epoch
    assert scheduler.get_last_lr() == [0.5] and scheduler.best == 1.0
    scheduler.step(0.85)
    assert scheduler.get_last_lr() == [0.5] and scheduler.best == 0.85


def test_reduce_on_plateau_state_dict_resumes():
    first = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=1)
    for metric in PLATEAU_METRICS[:5]:
        first.step(metric)
    second = lr_scheduler.ReduceLROnPlateau(sgd(lr=first.get_last_lr()[0]), factor=0.5,
                                            patience=1)
    second.load_state_dict(first.state_dict())
    for metric in PLATEAU_METRICS[5:]:
        first.step(metric)
        second.step(metric)
        assert second.get_last_lr() == first.get_last_lr()


def test_scheduler_errors():
    with pytest.raises(ValueError, match="factor must be < 1.0, got 2"):
        lr_scheduler.ReduceLROnPlateau(sgd(), factor=2)
    with pytest.raises(ValueError, match="mode 'lowest'"):
        lr_scheduler.ReduceLROnPlateau(sgd(), mode="lowest")
    with pytest.raises(ValueError, match="step_size must be a positive int, got 0"):
        lr_scheduler.StepLR(sgd(), step_size=0)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(sgd(), step_size=1, last_epoch=3)
    with pytest.raises(TypeError, match="expected an nnlite Optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)


def test_cosine_annealing_follows_the_half_cosine_and_comes_back_up():
    import math
    scheduler = lr_scheduler.CosineAnnealingLR(sgd(lr=1.0), T_max=4, eta_min=0.2)
    got = lrs_over_epochs(scheduler, 8)
    # eta_min + (1 - eta_min) * (1 + cos(pi t / 4)) / 2 for t = 1..8, worked by hand:
    # the trough at t = 4 and back to 1.0 at t = 8
    half = 0.4 * (1 + math.sqrt(0.5))
    expected = [0.2 + half, 0.6, 0.2 + 0.8 - half, 0.2, 0.2 + 0.8 - half, 0.6, 0.2 + half, 1.0]
    assert got == pytest.approx(expected, abs=1e-12)
    assert scheduler.optimizer.param_groups[0]["lr"] == pytest.approx(1.0)


def test_cosine_annealing_matches_its_closed_form_and_resumes():
    scheduler = lr_scheduler.CosineAnnealingLR(sgd(lr=0.5), T_max=10, eta_min=0.01)
    chained = lrs_over_epochs(scheduler, 7)
    state = scheduler.state_dict()
    closed = lr_scheduler.CosineAnnealingLR(sgd(lr=0.5), T_max=10, eta_min=0.01)
    closed.step(7)  # the explicit epoch uses the closed form
    assert closed.get_last_lr()[0] == pytest.approx(chained[-1], rel=1e-12)
    resumed = lr_scheduler.CosineAnnealingLR(sgd(lr=0.5), T_max=10, eta_min=0.01)
    resumed.load_state_dict(state)
    resumed.optimizer.param_groups[0]["lr"] = chained[-1]
    assert lrs_over_epochs(resumed, 3) == pytest.approx(lrs_over_epochs(scheduler, 3), rel=1e-12)


def test_cosine_annealing_refuses_a_bad_period():
    with pytest.raises(ValueError, match="T_max must be a positive int, got 0"):
        lr_scheduler.CosineAnnealingLR(sgd(), T_max=0)
    with pytest.raises(ValueError, match=r"T_max must be a positive int, got 2\.5"):
        lr_scheduler.CosineAnnealingLR(sgd(), T_max=2.5)


def test_cosine_annealing_matches_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(
        torch.optim.SGD([param], lr=0.3), T_max=5, eta_min=0.001)
    ours = lr_scheduler.CosineAnnealingLR(sgd(lr=0.3), T_max=5, eta_min=0.001)
    for _ in range(13):
        reference.optimizer.step()
        reference.step()
    assert lrs_over_epochs(ours, 13)[-1] == pytest.approx(reference.get_last_lr()[0], rel=1e-12)
