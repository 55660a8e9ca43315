"""nl.gradcheck itself: it must pass correct gradients and catch wrong ones."""
import re

import numpy as np
import pytest

import nnlite as nl


class SquareWithWrongBackward(nl.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        grad = 2 * x * gy
        grad.reshape(-1)[-1] *= 1.01  # one element off by 1 %
        return grad


class SquareWithRightBackward(SquareWithWrongBackward):
    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return 2 * x * gy


def test_gradcheck_accepts_a_correct_backward():
    x = nl.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    assert nl.gradcheck(SquareWithRightBackward.apply, (x,)) is True


def test_gradcheck_rejects_a_wrong_backward_and_names_input_element_and_values():
    x = nl.tensor(np.linspace(0.5, 1.5, 6).reshape(2, 3), requires_grad=True)
    with pytest.raises(nl.GradcheckError, match=r"input 0 \(shape \(2, 3\)\) element \(1, 2\): "
                                                r"analytic gradient .* vs numerical"):
        nl.gradcheck(SquareWithWrongBackward.apply, (x,))


def test_gradcheck_checks_every_input_and_skips_constants():
    a = nl.tensor(np.ones(3) * 2, requires_grad=True)
    b = nl.tensor(np.ones(3) * 3)
    assert nl.gradcheck(lambda u, v: u * v, (a, b))

    class WrongSecond(nl.Function):
        @staticmethod
        def forward(ctx, u, v):
            ctx.save_for_backward(u, v)
            return u * v

        @staticmethod
        def backward(ctx, gy):
            u, v = ctx.saved_tensors
            return gy * v, gy * v   # second should be gy * u

    b.requires_grad_()
    with pytest.raises(nl.GradcheckError, match="input 1"):
        nl.gradcheck(WrongSecond.apply, (a, b))


def test_gradcheck_requires_float64():
    x = nl.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        nl.gradcheck(lambda t: t * 2, (x,))


def test_gradcheck_requires_an_input_with_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        nl.gradcheck(lambda t: t * 2, (nl.tensor(np.ones(3)),))


def test_gradcheck_restores_inputs():
    data = np.linspace(-1, 1, 5)
    x = nl.tensor(data, requires_grad=True)
    nl.gradcheck(lambda t: t.exp(), (x,))
    np.testing.assert_array_equal(x.numpy(), data)


# ----------------------------------------------------- directional=True --
# One random unit direction over all inputs, two forwards (Chainer's
# check_backward); tests/test_gradcheck_seed_shapes.py runs it at the seed
# networks' real layer shapes.

class SquareWithScaledBackward(SquareWithWrongBackward):
    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return 2 * x * gy * 1.01  # every element off by 1 %


def counting(fn):
    def run(*args):
        run.calls += 1
        return fn(*args)
    run.calls = 0
    return run


def test_directional_accepts_correct_ops_with_two_forwards(device):
    import nnlite.functional as F
    rng = np.random.default_rng(0)

    def t(*shape, scale=1.0):
        return nl.tensor(rng.standard_normal(shape) * scale, device=device, requires_grad=True)
    targets = np.array([[1, 2, 2], [3, 1, 0]])
    lstm = nl.nn.LSTM(3, 4, bidirectional=True, dtype=np.float64).to(device)
    cases = {
        "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                   [t(2, 3, 7, 6), t(4, 3, 3, 3), t(4)]),
        "linear": (lambda x, w, b: F.relu(F.linear(x, w, b)), [t(5, 6), t(3, 6), t(3)]),
        "lstm": (lambda x, *p: lstm(x)[0], [t(5, 2, 3)] + list(lstm.parameters())),
        "ctc_loss": (lambda a: F.ctc_loss(F.log_softmax(a, dim=2), targets, [6, 5], [3, 2],
                                          blank=0, reduction="none"), [t(6, 2, 4)]),
    }
    for name, (fn, inputs) in cases.items():
        fn = counting(fn)
        assert nl.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6, directional=True), name
        assert fn.calls == 3, (name, fn.calls)  # the outputs' shapes, then x + eps d, x - eps d


def test_directional_rejects_a_backward_scaled_by_1_01_with_values_and_tolerances():
    x = nl.tensor(np.linspace(0.5, 1.5, 6).reshape(2, 3), requires_grad=True)
    with pytest.raises(nl.GradcheckError) as caught:
        nl.gradcheck(SquareWithScaledBackward.apply, (x,), directional=True)
    message = str(caught.value)
    assert "directional" in message and "atol=1e-05, rtol=0.001, eps=1e-06" in message
    analytic, numeric = (float(v) for v in
                         re.search(r"<grad, d> (\S+) vs numerical (\S+);", message).groups())
    assert analytic == pytest.approx(1.01 * numeric, rel=1e-6)
    assert "input 0 (shape (2, 3))" in message and "differs" in message


def test_directional_rejects_one_wrong_element_and_names_the_input():
    x = nl.tensor(np.linspace(0.5, 1.5, 6).reshape(2, 3), requires_grad=True)
    with pytest.raises(nl.GradcheckError, match="directional"):
        nl.gradcheck(SquareWithWrongBackward.apply, (x,), directional=True)

    class WrongSecond(nl.Function):
        @staticmethod
        def forward(ctx, u, v):
            ctx.save_for_backward(u, v)
            return u * v

        @staticmethod
        def backward(ctx, gy):
            u, v = ctx.saved_tensors
            return gy * v, gy * v  # the second should be gy * u
    a = nl.tensor(np.linspace(1, 2, 4), requires_grad=True)
    b = nl.tensor(np.linspace(-3, -1, 4), requires_grad=True)
    with pytest.raises(nl.GradcheckError,
                       match=r"input 0 \(shape \(4,\)\): \S+ vs \S+, agrees; "
                             r"input 1 \(shape \(4,\)\): \S+ vs \S+, differs"):
        nl.gradcheck(WrongSecond.apply, (a, b), directional=True)


def test_directional_seed_is_reproducible_and_accepts_a_generator():
    x = nl.tensor(np.linspace(0.5, 1.5, 6).reshape(2, 3), requires_grad=True)

    def message(seed):
        with pytest.raises(nl.GradcheckError) as caught:
            nl.gradcheck(SquareWithScaledBackward.apply, (x,), directional=True, seed=seed)
        return str(caught.value)
    assert message(3) == message(3) == message(np.random.default_rng(3))
    assert message(3) != message(4)


def test_directional_restores_inputs():
    data = np.linspace(-1, 1, 5)
    x = nl.tensor(data.copy(), requires_grad=True)
    nl.gradcheck(lambda t: t.exp(), (x,), directional=True)
    np.testing.assert_array_equal(x.numpy(), data)
    with pytest.raises(nl.GradcheckError):
        nl.gradcheck(SquareWithScaledBackward.apply, (x,), directional=True)
    np.testing.assert_array_equal(x.numpy(), data)
