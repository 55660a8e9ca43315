"""nl.gradcheck itself: it must pass correct gradients and catch wrong ones."""
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
