"""Batch normalisation over dim 1 (channels) of (N, C, ...) inputs."""
from nnlite.device import xp_of
from nnlite.tensor import Function, raw


def channel_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def as_channel_column(v, ndim):
    """(C,) -> (1, C, 1, ...) so it broadcasts against (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class BatchNormTrain(Function):
    """Normalise with the batch's own statistics (biased variance)."""

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5, running=None):
        xp = xp_of(x)
        axes = channel_axes(x)
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        if running is not None:  # (running_mean, running_var, momentum), updated in place
            running_mean, running_var, momentum = running
            count = x.size // x.shape[1]
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = (1 - momentum) * running_var + momentum * var * (count / (count - 1))
        invstd = 1 / xp.sqrt(var + eps)
        xhat = (x - as_channel_column(mean, x.ndim)) * as_channel_column(invstd, x.ndim)
        ctx.save_for_backward(xhat, invstd, weight)
        y = xhat
        if weight is not None:
            y = y * as_channel_column(weight, x.ndim)
        if bias is not None:
            y = y + as_channel_column(bias, x.ndim)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, gy):
        xhat, invstd, weight = ctx.saved_tensors
        axes = channel_axes(gy)
        ndim = gy.ndim
        count = gy.size // gy.shape[1]
        gxhat = gy * as_channel_column(weight, ndim) if weight is not None else gy
        # d/dx of (x - mean) / std with mean and std depending on x as well.
        sum_g = gxhat.sum(axis=axes)
        sum_gx = (gxhat * xhat).sum(axis=axes)
        gx = (gxhat - as_channel_column(sum_g / count, ndim)
              - xhat * as_channel_column(sum_gx / count, ndim)) * as_channel_column(invstd, ndim)
        needs = ctx.needs_input_grad
        gw = (gy * xhat).sum(axis=axes) if len(needs) > 1 and needs[1] else None
        gb = gy.sum(axis=axes) if len(needs) > 2 and needs[2] else None
        return gx, gw, gb


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """PyTorch's batch_norm. In training, normalise with the batch statistics
    and update the running ones in place (`running = (1 - momentum) * running
    + momentum * batch`, unbiased variance); in evaluation use the running ones.
    Keras's momentum 0.99 is momentum=0.01 here."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(v.shape)}, expected "
                             f"({channels},) for input of shape {x.shape}")
    if weight is not None and weight.dtype != x.dtype:
        raise TypeError(f"batch_norm: input is {x.dtype} but weight is {weight.dtype}; "
                        f"convert one (model.double() or x.float())")
    if training:
        if (weight is None) != (bias is None):
            raise ValueError("batch_norm: give both weight and bias, or neither")
        if x.numel() == 0:
            # No channels, samples or positions: no statistics to normalise
            # with or to learn. PyTorch returns the empty output and leaves
            # the running statistics as they are; so does this.
            return _affine(x, weight, bias)
        if x.numel() // channels < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, "
                             f"got input of shape {x.shape}")
        affine = () if weight is None else (weight, bias)
        running = None
        if running_mean is not None and running_var is not None:
            running = (raw(running_mean), raw(running_var), momentum)
        return BatchNormTrain.apply(x, *affine, eps=eps, running=running)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    xp = xp_of(x.data)
    scale = 1 / xp.sqrt(raw(running_var) + eps)
    shift = -raw(running_mean) * scale
    y = x * as_channel_column(scale, x.ndim).astype(x.dtype) + \
        as_channel_column(shift, x.ndim).astype(x.dtype)
    return _affine(y, weight, bias)


def _affine(y, weight, bias):
    """y * weight + bias per channel, either of them optional (Tensors)."""
    if weight is not None:
        y = y * as_channel_column(weight, y.ndim)
    if bias is not None:
        y = y + as_channel_column(bias, y.ndim)
    return y

