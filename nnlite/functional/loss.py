"""Losses with PyTorch's signatures and reductions."""
import numpy as np

from nnlite.device import xp_of
from nnlite.functional.activation import log_softmax
from nnlite.functional.normalization import as_channel_column
from nnlite.tensor import Function, Tensor, raw

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(op, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction={reduction!r} is not one of {REDUCTIONS}")


def _classes_last(log_probs):
    """(N, C, d1, ...) -> (N*d1*..., C); (C,) -> (1, C)."""
    xp = xp_of(log_probs)
    if log_probs.ndim == 1:
        return log_probs[None, :]
    return xp.moveaxis(log_probs, 1, -1).reshape(-1, log_probs.shape[1])


class NLLLoss(Function):
    """Negative log-likelihood of integer class targets, classes on dim 1.

    'mean' divides by the summed weights of the counted targets, as PyTorch
    does, so class weights change the balance without changing the scale."""

    @staticmethod
    def forward(ctx, log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
        check_reduction("nll_loss", reduction)
        xp = xp_of(log_probs)
        target = xp.asarray(target)
        expected = (log_probs.shape[:1] + log_probs.shape[2:]) if log_probs.ndim > 1 else ()
        if target.dtype.kind not in "iu":
            raise TypeError(f"nll_loss: target must hold integer class indices, got dtype "
                            f"{target.dtype}")
        if tuple(target.shape) != tuple(expected):
            raise ValueError(f"nll_loss: input of shape {tuple(log_probs.shape)} needs a target "
                             f"of shape {tuple(expected)}, got {tuple(target.shape)}")
        classes = log_probs.shape[1] if log_probs.ndim > 1 else log_probs.shape[0]
        flat_target = target.reshape(-1).astype(np.int64)
        valid = flat_target != ignore_index
        if bool(((flat_target < 0) | (flat_target >= classes))[valid].any()):
            bad = flat_target[valid & ((flat_target < 0) | (flat_target >= classes))]
            raise ValueError(f"nll_loss: target holds class {int(bad[0])}, outside [0, "
                             f"{classes}) (ignore_index is {ignore_index})")
        if weight is not None and tuple(weight.shape) != (classes,):
            raise ValueError(f"nll_loss: weight has shape {tuple(weight.shape)}, expected "
                             f"({classes},), one per class")
        rows = _classes_last(log_probs)
        safe_target = xp.where(valid, flat_target, 0)
        picked = rows[xp.arange(rows.shape[0]), safe_target]
        w = valid.astype(rows.dtype)
        if weight is not None:
            w = w * weight[safe_target]
        losses = -w * picked
        ctx.meta = (log_probs.shape, target.shape, reduction)
        if reduction == "none":
            out, scale = losses.reshape(target.shape), None
        elif reduction == "sum":
            out, scale = losses.sum(), 1.0
        else:
            scale = w.sum()
            out = losses.sum() / scale
        ctx.save_for_backward(safe_target, w, scale)
        return out

    @staticmethod
    def backward(ctx, gy):
        safe_target, w, scale = ctx.saved_tensors
        shape, target_shape, reduction = ctx.meta
        xp = xp_of(gy)
        count = safe_target.shape[0]
        classes = shape[1] if len(shape) > 1 else shape[0]
        g_rows = xp.zeros((count, classes), dtype=w.dtype)
        per_row = -w * (gy.reshape(-1) if reduction == "none" else gy / scale)
        g_rows[xp.arange(count), safe_target] = per_row
        if len(shape) == 1:
            return g_rows[0], None, None
        moved = (shape[0],) + tuple(shape[2:]) + (classes,)
        return xp.moveaxis(g_rows.reshape(moved), -1, 1), None, None


class BCEWithLogits(Function):
    """Element-wise binary cross-entropy on logits, in the overflow-free form
    max(x, 0) - x t + log(1 + exp(-|x|)), with PyTorch's pos_weight."""

    @staticmethod
    def forward(ctx, x, t, pos_weight=None):
        if tuple(x.shape) != tuple(t.shape):
            raise ValueError(f"binary_cross_entropy_with_logits: target shape "
                             f"{tuple(t.shape)} differs from input shape {tuple(x.shape)}")
        xp = xp_of(x)
        softplus_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # -log sigmoid(x)
        ctx.save_for_backward(x, t, pos_weight, softplus_neg)
        if pos_weight is None:
            return (1 - t) * x + softplus_neg
        return (1 - t) * x + (1 + (pos_weight - 1) * t) * softplus_neg

    @staticmethod
    def backward(ctx, gy):
        x, t, pos_weight, softplus_neg = ctx.saved_tensors
        xp = xp_of(gy)
        sig = (xp.tanh(x * 0.5) + 1) * 0.5
        pw = 1 if pos_weight is None else pos_weight
        gx = gy * (sig * (pw * t + 1 - t) - pw * t) if ctx.needs_input_grad[0] else None
        # d/dt = pw * softplus(-x) - softplus(x), with softplus(x) = x + softplus(-x).
        gt = gy * (pw * softplus_neg - (x + softplus_neg)) if ctx.needs_input_grad[1] else None
        gpw = gy * t * softplus_neg if len(ctx.needs_input_grad) > 2 and \
            ctx.needs_input_grad[2] else None
        return gx, gt, gpw


def _reduce(loss, reduction, op):
    check_reduction(op, reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def nll_loss(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood; `log_probs` is (N, C), (N, C, d1, ...) or (C,)."""
    return NLLLoss.apply(log_probs, raw(target), weight=raw(weight),
                         ignore_index=ignore_index, reduction=reduction)


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy over dim 1 (classes), as ``torch.nn.functional.cross_entropy``.

    `target` holds class indices of shape (N, d1, ...), or class probabilities
    of the logits' shape (soft labels: `weight` scales classes, `ignore_index`
    does not apply)."""
    if logits.ndim == 0:
        raise ValueError("cross_entropy: logits must have a class dimension, got a scalar")
    class_dim = 1 if logits.ndim > 1 else 0
    log_probs = log_softmax(logits, dim=class_dim)
    raw_target = raw(target)
    if hasattr(raw_target, "dtype") and raw_target.dtype.kind == "f":
        if tuple(raw_target.shape) != logits.shape:
            expected = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
            raise ValueError(
                f"cross_entropy: target must hold integer class indices of shape {expected} "
                f"or class probabilities of the logits' shape {logits.shape}; got "
                f"{raw_target.dtype} of shape {tuple(raw_target.shape)}")
        picked = log_probs * target
        if weight is not None:
            picked = picked * Tensor(as_channel_column(raw(weight), logits.ndim)
                                     if logits.ndim > 1 else raw(weight))
        return _reduce(-picked.sum(dim=class_dim), reduction, "cross_entropy")
    return nll_loss(log_probs, raw_target, weight, ignore_index, reduction)


def binary_cross_entropy_with_logits(logits, target, weight=None, reduction="mean",
                                     pos_weight=None):
    loss = BCEWithLogits.apply(logits, target, raw(pos_weight))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def mse_loss(input, target, reduction="mean"):  # noqa: A002 - PyTorch's argument name
    if isinstance(target, Tensor) and target.shape != input.shape:
        raise ValueError(f"mse_loss: target shape {target.shape} differs from input shape "
                         f"{input.shape}")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")
