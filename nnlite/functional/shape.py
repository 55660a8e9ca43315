"""Shape ops: reshape, transpose, permute, indexing, concatenation, where.

These move or select elements and never compute; their backward passes route
gradients back to where each element came from.
"""
import numpy as np

from nnlite.device import device_of, move, xp_of
from nnlite.tensor import Function, Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, gy):
        return gy.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ndim = x.ndim
        if sorted(d % ndim for d in dims) != list(range(ndim)) or len(dims) != ndim:
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the "
                             f"{ndim} dimensions of a tensor of shape {tuple(x.shape)}")
        ctx.dims = tuple(d % ndim for d in dims)
        return xp_of(x).transpose(x, ctx.dims)

    @staticmethod
    def backward(ctx, gy):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return xp_of(gy).transpose(gy, inverse)


class Expand(Function):
    """Broadcast to a larger shape without copying (PyTorch's expand)."""

    @staticmethod
    def forward(ctx, x, shape):
        try:
            return xp_of(x).broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {tuple(x.shape)} cannot be "
                             f"broadcast to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, gy):
        return gy  # the engine sums the broadcast axes back


def _is_advanced(index):
    """True when NumPy would use advanced (array) indexing, which can repeat
    elements and so needs a scatter-add in backward."""
    items = index if isinstance(index, tuple) else (index,)
    return any(not (item is None or item is Ellipsis or isinstance(item, (int, slice)))
               for item in items)


def unwrap_index(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, tuple):
        return tuple(unwrap_index(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


def _index_on_device_of(index, x):
    """Move NumPy index arrays (masks, positions) to the GPU when x lives
    there: users index GPU tensors with NumPy arrays they built on the host."""
    if isinstance(index, tuple):
        return tuple(_index_on_device_of(i, x) for i in index)
    if isinstance(index, (np.ndarray, list)) and device_of(x) != "cpu":
        return move(np.asarray(index), device_of(x))
    return index


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        index = _index_on_device_of(index, x)
        ctx.meta = (x.shape, x.dtype, index)
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape "
                             f"{tuple(x.shape)}: {error}") from None

    @staticmethod
    def backward(ctx, gy):
        shape, dtype, index = ctx.meta
        xp = xp_of(gy)
        gx = xp.zeros(shape, dtype=dtype)
        if not _is_advanced(index):
            gx[index] = gy  # basic slicing selects each element at most once
        elif xp.__name__ == "numpy":
            xp.add.at(gx, index, gy)
        else:  # CuPy: repeated indices must add up, not overwrite
            import cupyx
            cupyx.scatter_add(gx, index, gy)
        return gx


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        if not arrays:
            raise ValueError("cat: expected a non-empty sequence of tensors")
        ndim = arrays[0].ndim
        for a in arrays:
            if a.ndim != ndim or any(a.shape[i] != arrays[0].shape[i]
                                     for i in range(ndim) if i != dim % max(ndim, 1)):
                raise ValueError(
                    f"cat: tensors must match in every dimension except {dim}, got shapes "
                    f"{[tuple(b.shape) for b in arrays]}")
        ctx.dim = dim % ndim
        ctx.sizes = [a.shape[ctx.dim] for a in arrays]
        return xp_of(arrays[0]).concatenate(arrays, axis=ctx.dim)

    @staticmethod
    def backward(ctx, gy):
        grads, start = [], 0
        for size in ctx.sizes:
            index = [slice(None)] * gy.ndim
            index[ctx.dim] = slice(start, start + size)
            grads.append(gy[tuple(index)])
            start += size
        return tuple(grads)


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        if not arrays:
            raise ValueError("stack: expected a non-empty sequence of tensors")
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all tensors must have the same shape, got "
                             f"{[tuple(a.shape) for a in arrays]}")
        ctx.dim = dim % (arrays[0].ndim + 1)
        return xp_of(arrays[0]).stack(arrays, axis=ctx.dim)

    @staticmethod
    def backward(ctx, gy):
        xp = xp_of(gy)
        return tuple(xp.take(gy, i, axis=ctx.dim) for i in range(gy.shape[ctx.dim]))


class Where(Function):
    """where(condition, a, b): a where condition holds, else b (condition is
    not differentiable)."""

    @staticmethod
    def forward(ctx, condition, a, b):
        data = a if hasattr(a, "shape") else b
        xp = xp_of(data)
        if not hasattr(condition, "shape"):  # lists and Python bools
            condition = np.asarray(condition)
        condition = move(condition, device_of(data)).astype(bool, copy=False)
        ctx.save_for_backward(condition)
        return xp.where(condition, a, b)

    @staticmethod
    def backward(ctx, gy):
        condition, = ctx.saved_tensors
        zero = gy.dtype.type(0)
        xp = xp_of(gy)
        return (None,
                xp.where(condition, gy, zero) if ctx.needs_input_grad[1] else None,
                xp.where(condition, zero, gy) if ctx.needs_input_grad[2] else None)


def _shape_arg(shape):
    """Accept reshape(2, 3) and reshape((2, 3)) alike."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
        else tuple(shape)


def reshape(x, *shape):
    return Reshape.apply(x, shape=_shape_arg(shape))


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    ndim = x.ndim
    if ndim == 0:
        return reshape(x, 1)
    start, end = start_dim % ndim, end_dim % ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for "
                         f"a tensor of shape {x.shape}")
    merged = 1
    for n in x.shape[start:end + 1]:
        merged *= n
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def squeeze(x, dim=None):
    """Drop size-1 dims (all, or the given one; a dim of other size is kept,
    as in PyTorch)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        d = dim % x.ndim if x.ndim else 0
        shape = x.shape if x.ndim == 0 or x.shape[d] != 1 else x.shape[:d] + x.shape[d + 1:]
    return reshape(x, shape)


def unsqueeze(x, dim):
    ndim = x.ndim + 1
    if not -ndim <= dim < ndim:
        raise ValueError(f"unsqueeze: dim {dim} out of range for a result with {ndim} dims")
    d = dim % ndim
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def permute(x, *dims):
    return Permute.apply(x, dims=_shape_arg(dims))


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, dims)


def expand(x, *shape):
    shape = _shape_arg(shape)
    # -1 keeps the existing size, as in PyTorch.
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    return Expand.apply(x, shape=shape)


def getitem(x, index):
    return GetItem.apply(x, index=unwrap_index(index))


def cat(tensors, dim=0):
    return Concatenate.apply(*tensors, dim=dim)


concatenate = cat


def stack(tensors, dim=0):
    return Stack.apply(*tensors, dim=dim)


def where(condition, a, b):
    if not any(isinstance(v, Tensor) for v in (a, b)):
        raise TypeError("where: expected a Tensor for at least one of the two value arguments")
    return Where.apply(condition, a, b)
