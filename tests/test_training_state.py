"""nnlite.training.state: generator capture/restore, scheduler state through
JSON, the deferred Ctrl-C section and atomic JSON writes."""
import json
import os
import random
import signal

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn, optim
from nnlite.training import state


def draws():
    return (nl.randn(4).numpy().tolist(), np.random.rand(3).tolist(), random.random())


def test_rng_capture_and_restore_through_json():
    state.seed_everything(3)
    draws()
    saved = json.loads(json.dumps(state.capture_rng()))
    expected = draws()
    state.seed_everything(4)
    assert draws() != expected
    state.restore_rng(saved)
    assert draws() == expected


def test_set_rng_state_keeps_the_generator_object():
    generator = nl.random.generator()
    saved = nl.random.get_rng_state()
    first = generator.standard_normal(3)
    nl.random.set_rng_state(saved)
    np.testing.assert_array_equal(nl.random.generator().standard_normal(3), first)
    assert nl.random.generator() is generator
    with pytest.raises(ValueError, match="set_rng_state: expected a dict from get_rng_state"):
        nl.random.set_rng_state({"nope": 1})


@pytest.mark.parametrize("make", [
    lambda opt: optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    # milestones on both sides of the restore point (after step 3), one repeated
    lambda opt: optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.5),
    lambda opt: optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t)),
])
def test_scheduler_state_survives_json(make):
    def fresh():
        optimizer = optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
        return optimizer, make(optimizer)
    optimizer, scheduler = fresh()
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    encoded = json.loads(json.dumps(state.scheduler_state(scheduler)))
    other_optimizer, other = fresh()
    state.restore_scheduler(other, encoded)
    assert {k: v for k, v in other.state_dict().items() if k != "lr_lambdas"} == \
        {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    other_optimizer.param_groups[0]["lr"] = optimizer.param_groups[0]["lr"]
    for _ in range(3):
        scheduler.step()
        other.step()
        assert other.get_last_lr() == scheduler.get_last_lr()


def test_unsaveable_scheduler_state_is_none():
    class Odd:
        def state_dict(self):
            return {"function": object()}
    assert state.scheduler_state(Odd()) is None
    assert state.scheduler_state(None) is None


def test_deferred_interrupt_finishes_the_block_first():
    finished = []
    # Whatever handler was there is put back (a shell's background job starts
    # with SIGINT ignored, so it need not be Python's default one).
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with state.deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is before


def test_write_json_atomic(tmp_path):
    path = tmp_path / "m.json"
    state.write_json_atomic(path, {"a": [1, 2.5]})
    state.write_json_atomic(path, {"b": float("inf")})
    assert json.loads(path.read_text()) == {"b": float("inf")}
    assert os.listdir(tmp_path) == ["m.json"]
