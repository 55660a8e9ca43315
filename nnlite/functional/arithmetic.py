"""Element-wise arithmetic, powers and matrix products, with broadcasting.

Backward passes may return broadcast-shaped gradients: the engine sums them
back to each input's shape (``tensor.sum_to_shape``).
"""
import math
import numbers

from nnlite.device import xp_of
from nnlite.tensor import Function, Tensor


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, gy):
        return gy, gy


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, gy):
        return gy, -gy


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        return (gy * b if ctx.needs_input_grad[0] else None,
                gy * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        ga = gy / b if ctx.needs_input_grad[0] else None
        gb = -gy * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, gy):
        return -gy


class Pow(Function):
    """x ** p for a tensor or scalar base and exponent."""

    @staticmethod
    def forward(ctx, x, p):
        y = x ** p
        ctx.save_for_backward(x, p, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, p, y = ctx.saved_tensors
        gx = gp = None
        if ctx.needs_input_grad[0]:
            gx = gy * p * x ** (p - 1)
        if ctx.needs_input_grad[1]:
            xp = xp_of(gy)
            # d(x^p)/dp = x^p log x; defined as 0 where x == 0 (0^p is flat in p for p > 0).
            if isinstance(x, numbers.Real):  # 2 ** t: CuPy's where and log refuse host scalars
                gp = gy * y * math.log(abs(x) if x != 0 else 1.0)
            else:
                gp = gy * y * xp.log(xp.abs(xp.where(x == 0, 1, x)))
        return gx, gp


def _matmul_shapes_error(a, b):
    return ValueError(
        f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned: the last "
        f"dimension of the first ({a.shape[-1]}) must equal the "
        f"{'only' if b.ndim == 1 else 'second-to-last'} dimension of the second "
        f"({b.shape[0] if b.ndim == 1 else b.shape[-2]})")


class MatMul(Function):
    """Batched matrix product with NumPy's rules (1-D operands are promoted
    to a row or a column and the added dimension is removed again)."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                             f"{tuple(a.shape)} and {tuple(b.shape)}; use * for scalars")
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise _matmul_shapes_error(a, b)
        if a.dtype != b.dtype:
            raise TypeError(f"matmul: operands have dtypes {a.dtype} and {b.dtype}; expected "
                            f"one dtype (convert with .float() or .double())")
        ctx.save_for_backward(a, b)
        return xp_of(a).matmul(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        xp = xp_of(gy)
        if a.ndim == 1 and b.ndim == 1:  # a dot product
            return gy * b, gy * a
        # Promote 1-D operands the way forward did, then fold the extra axis back.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = xp.expand_dims(gy, -2) if a.ndim == 1 else gy
        g2 = xp.expand_dims(g2, -1) if b.ndim == 1 else g2
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = xp.matmul(g2, xp.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                ga = ga.reshape(-1, a.shape[0]).sum(axis=0)
        if ctx.needs_input_grad[1]:
            gb = xp.matmul(xp.swapaxes(a2, -1, -2), g2)
            if b.ndim == 1:
                gb = gb.reshape(-1, b.shape[0]).sum(axis=0)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return gy * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return xp_of(x).log(x)

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return gy / x


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return xp_of(x).abs(x)

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return gy * xp_of(x).sign(x)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = xp_of(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return gy / (2 * y)


class Clip(Function):
    """Clamp to [low, high] (either may be None); the gradient passes where
    the input lies inside the closed interval, as in PyTorch's clamp."""

    @staticmethod
    def forward(ctx, x, low=None, high=None):
        if low is None and high is None:
            raise ValueError("clip: at least one of min and max must be given")
        if low is not None and high is not None and low > high:
            raise ValueError(f"clip: min ({low}) is greater than max ({high})")
        xp = xp_of(x)
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        ctx.save_for_backward(inside)
        return xp.clip(x, low, high).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, gy):
        inside, = ctx.saved_tensors
        return gy * inside


def _binary(function, a, b, op):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    return function.apply(a, b)


def add(a, b):
    return _binary(Add, a, b, "add")


def sub(a, b):
    return _binary(Sub, a, b, "sub")


def mul(a, b):
    return _binary(Mul, a, b, "mul")


def div(a, b):
    return _binary(Div, a, b, "div")


def neg(x):
    return Neg.apply(x)


def pow(x, exponent):  # noqa: A001 - the PyTorch name
    return _binary(Pow, x, exponent, "pow")


def matmul(a, b):
    return _binary(MatMul, a, b, "matmul")


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def abs(x):  # noqa: A001 - the PyTorch name
    return Abs.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def clip(x, min=None, max=None):  # noqa: A002 - PyTorch's argument names
    return Clip.apply(x, low=min, high=max)


clamp = clip
