"""Reductions over dimensions: sum, mean, max, min (PyTorch's dim/keepdim)."""
import builtins

from nnlite.device import xp_of
from nnlite.tensor import Function


def normalize_dims(op, dim, ndim):
    """`dim` (None, an int or a sequence, negatives allowed) -> sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = []
    for d in dims:
        if not isinstance(d, int) or not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise ValueError(f"{op}: dim {d!r} is out of range for a tensor with {ndim} "
                             f"dimensions; expected an int in [{-ndim}, {ndim - 1}]")
        axes.append(d % ndim if ndim else 0)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {dim!r} names a dimension twice")
    return tuple(sorted(axes))


def _expand_back(gy, axes, keepdim, shape):
    """Broadcast a reduced gradient back over the reduced axes."""
    xp = xp_of(gy)
    if not keepdim and shape:
        gy = xp.expand_dims(gy, axes)
    return xp.broadcast_to(gy, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        axes = normalize_dims("sum", dim, x.ndim)
        ctx.meta = (axes, keepdim, x.shape)
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, gy):
        axes, keepdim, shape = ctx.meta
        return _expand_back(gy, axes, keepdim, shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        axes = normalize_dims("mean", dim, x.ndim)
        count = 1
        for a in axes:
            count *= x.shape[a]
        ctx.meta = (axes, keepdim, x.shape, count)
        return x.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, gy):
        axes, keepdim, shape, count = ctx.meta
        return _expand_back(gy / count, axes, keepdim, shape)


class _Extreme(Function):
    """Max or min over dims. The gradient goes to the first extreme element
    of each reduced slice (in C order), the rule max pooling also follows."""

    name = "max"

    @classmethod
    def _pick(cls, xp, x, axis):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x, dim=None, keepdim=False):
        axes = normalize_dims(cls.name, dim, x.ndim)
        if x.size == 0:
            raise ValueError(f"{cls.name}: cannot reduce an empty tensor of shape "
                             f"{tuple(x.shape)}")
        xp = xp_of(x)
        kept = [a for a in range(x.ndim) if a not in axes]
        # Move reduced axes last and flatten them, so one argmax finds the first extreme.
        moved = xp.transpose(x, kept + list(axes)).reshape(
            tuple(x.shape[a] for a in kept) + (-1,))
        index = cls._pick(xp, moved, -1)
        y = xp.take_along_axis(moved, index[..., None], axis=-1)[..., 0]
        ctx.meta = (axes, kept, x.shape, moved.shape)
        ctx.save_for_backward(index)
        if keepdim:
            y = y.reshape(tuple(1 if a in axes else n for a, n in enumerate(x.shape)))
        return y

    @staticmethod
    def backward(ctx, gy):
        axes, kept, shape, moved_shape = ctx.meta
        index, = ctx.saved_tensors
        xp = xp_of(gy)
        rows = index.size
        g_moved = xp.zeros((rows, moved_shape[-1]), dtype=gy.dtype)
        g_moved[xp.arange(rows), index.reshape(rows)] = gy.reshape(rows)
        order = kept + list(axes)
        g = g_moved.reshape(tuple(shape[a] for a in order))
        return xp.transpose(g, [order.index(a) for a in range(len(shape))])


class Max(_Extreme):
    name = "max"

    @classmethod
    def _pick(cls, xp, x, axis):
        return xp.argmax(x, axis=axis)


class Min(_Extreme):
    name = "min"

    @classmethod
    def _pick(cls, xp, x, axis):
        return xp.argmin(x, axis=axis)


def sum(x, dim=None, keepdim=False):  # noqa: A001 - the PyTorch name
    return Sum.apply(x, dim=dim, keepdim=keepdim)


def mean(x, dim=None, keepdim=False):
    return Mean.apply(x, dim=dim, keepdim=keepdim)


def max(x, dim=None, keepdim=False):  # noqa: A001 - the PyTorch name
    """Largest value over `dim` (all dims by default). Returns values only;
    use ``argmax`` for indices. Ties: the gradient goes to the first maximum."""
    return Max.apply(x, dim=dim, keepdim=keepdim)


def min(x, dim=None, keepdim=False):  # noqa: A001 - the PyTorch name
    return Min.apply(x, dim=dim, keepdim=keepdim)
