"""Connectionist temporal classification loss, PyTorch's ``F.ctc_loss``.

The kernels (csrc/nnlite/ctc.cuh) run the log-space alpha/beta recursions and
return the TRUE gradient with respect to log_probs, so ``log_softmax`` before
the loss is an ordinary op in the graph and a gradcheck on log_probs passes
directly (PyTorch folds the softmax into its gradient instead).

Lengths and labels are small and checked on the host before any kernel runs:
a bad label inside a kernel would be an out-of-bounds read, and a target that
cannot fit its input deserves a message, not a silent inf.
"""
import warnings

import numpy as np

from nnlite.device import is_device_array, move, to_numpy, xp_of
from nnlite.functional.loss import check_reduction
from nnlite.kernels import ctc as ctc_kernels
from nnlite.tensor import Function, raw

_MAX_SAMPLES_NAMED = 5


def _host_ints(op, name, value):
    """Lengths and labels as host int64 (they are small; CTC checks them on the host)."""
    array = np.asarray(value) if isinstance(value, (list, tuple)) else to_numpy(raw(value))
    if array.dtype.kind not in "iu" and array.size:
        raise TypeError(f"{op}: {name} must hold integers; got dtype {array.dtype}")
    return array.astype(np.int64)


def _padded_targets(op, targets, target_lengths, batch):
    """Padded (N, L_max) int64 targets (zeros past each length) and the mask of
    real labels, from PyTorch's two layouts."""
    max_length = int(target_lengths.max()) if batch else 0
    in_target = np.arange(max_length)[None, :] < target_lengths[:, None]
    if targets.ndim == 2:
        if targets.shape[0] != batch:
            raise ValueError(f"{op}: targets has {targets.shape[0]} rows but log_probs has batch "
                             f"size {batch} (log_probs is (T, N, C), targets (N, S))")
        too_long = np.nonzero(target_lengths > targets.shape[1])[0]
        if too_long.size:
            n = int(too_long[0])
            raise ValueError(f"{op}: target_lengths[{n}] = {int(target_lengths[n])} exceeds the "
                             f"padded target width S = {targets.shape[1]} (targets shape "
                             f"{tuple(targets.shape)})")
        padded = np.where(in_target, targets[:, :max_length], 0)
    elif targets.ndim == 1:
        total = int(target_lengths.sum())
        if total > targets.shape[0]:
            raise ValueError(f"{op}: target_lengths sum to {total} but the concatenated 1-D "
                             f"targets hold only {targets.shape[0]} labels")
        starts = np.cumsum(target_lengths) - target_lengths
        index = np.minimum(starts[:, None] + np.arange(max_length)[None, :],
                           max(targets.shape[0] - 1, 0))
        padded = np.where(in_target, targets[index] if targets.size else 0, 0)
    else:
        raise ValueError(f"{op}: targets must be padded (N, S) or concatenated 1-D; got shape "
                         f"{tuple(targets.shape)}")
    return padded, in_target


def _check_labels(op, padded, in_target, classes, blank):
    bad = in_target & ((padded < 0) | (padded >= classes) | (padded == blank))
    if bad.any():
        n, i = (int(v) for v in np.argwhere(bad)[0])
        label = int(padded[n, i])
        why = (f"equal to blank={blank}" if label == blank
               else f"outside [0, {classes}) for log_probs with C = {classes} classes")
        raise ValueError(f"{op}: targets of sample {n} hold label {label} at position {i}, "
                         f"{why}")


def _frames_required(padded, in_target, target_lengths):
    repeats = ((padded[:, 1:] == padded[:, :-1]) & in_target[:, 1:]).sum(axis=1)
    return target_lengths + repeats, repeats


def _warn_infeasible(padded, in_target, input_lengths, target_lengths, zero_infinity):
    required, repeats = _frames_required(padded, in_target, target_lengths)
    infeasible = np.nonzero(required > input_lengths)[0]
    if not infeasible.size:
        return
    described = "; ".join(
        f"sample {n} needs {required[n]} time steps ({target_lengths[n]} labels + "
        f"{repeats[n]} blanks between repeated labels) but has input_length {input_lengths[n]}"
        for n in infeasible[:_MAX_SAMPLES_NAMED])
    more = (f"; and {infeasible.size - _MAX_SAMPLES_NAMED} more"
            if infeasible.size > _MAX_SAMPLES_NAMED else "")
    outcome = ("their loss and gradient are set to 0 (zero_infinity=True)" if zero_infinity
               else "their loss is inf and their gradient 0; pass zero_infinity=True to "
                    "ignore such samples")
    warnings.warn(
        f"ctc_loss: {infeasible.size} of {len(input_lengths)} samples have targets too long "
        f"for their inputs, so {outcome}: {described}{more}. CTC emits at most one label per "
        f"time step and needs a blank between two equal neighbours; give the model more time "
        f"steps (less downsampling along the sequence, wider inputs) or shorten those targets.",
        RuntimeWarning, stacklevel=3)


class CTCLoss(Function):
    """Forward: alpha and -log p per sample; backward: beta and the gathered
    gradient, scaled per sample by the reduction."""

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank=0,
                reduction="mean", zero_infinity=False):
        xp = xp_of(log_probs)
        nll, alpha = ctc_kernels.ctc_alpha(log_probs, targets, input_lengths, target_lengths, blank)
        losses = xp.where(xp.isinf(nll), 0, nll).astype(nll.dtype) if zero_infinity else nll
        divisor = xp.maximum(target_lengths, 1).astype(nll.dtype)
        if reduction == "none":
            out = losses
        elif reduction == "sum":
            out = losses.sum()
        else:
            out = (losses / divisor).mean() if losses.size else xp.asarray(np.nan, nll.dtype)
        ctx.save_for_backward(log_probs, targets, input_lengths, target_lengths, alpha, nll,
                              divisor)
        ctx.options = (blank, reduction)
        return out

    @staticmethod
    def backward(ctx, gy):
        log_probs, targets, input_lengths, target_lengths, alpha, nll, divisor = \
            ctx.saved_tensors
        blank, reduction = ctx.options
        xp = xp_of(log_probs)
        batch = nll.shape[0]
        if reduction == "none":
            scale = gy
        elif reduction == "sum":
            scale = xp.broadcast_to(gy, (batch,))
        else:
            scale = gy / (divisor * batch)
        scale = xp.ascontiguousarray(scale, dtype=log_probs.dtype)
        grad = ctc_kernels.ctc_backward(
            log_probs, targets, input_lengths, target_lengths, alpha, nll, scale, blank)
        return grad, None, None, None


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """The CTC loss of ``log_probs`` (T, N, C) against ``targets``, as
    ``torch.nn.functional.ctc_loss``.

    targets: padded (N, S) or concatenated 1-D integer labels; input_lengths,
    target_lengths: N lengths (tensors, arrays, lists or tuples). ``reduction``:
    "mean" divides each loss by its target length (at least 1) and averages over
    the batch; "sum"; "none" gives the (N,) losses. ``blank`` may be any class.
    Targets too long for their input (labels + adjacent repeats > input length)
    give an inf loss with a warning naming them, or 0 under ``zero_infinity``;
    their gradient is 0 either way, never NaN.
    """
    op = "ctc_loss"
    check_reduction(op, reduction)
    lp = raw(log_probs)
    if not hasattr(lp, "ndim") or lp.ndim != 3:
        shape = tuple(getattr(lp, "shape", ()))
        raise ValueError(f"{op}: log_probs must be 3-D (T, N, C); got shape {shape}")
    if lp.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: log_probs must be float32 or float64; got {lp.dtype}")
    max_time, batch, classes = lp.shape
    if not 0 <= blank < classes:
        raise ValueError(f"{op}: blank={blank} is outside [0, {classes}) for log_probs with "
                         f"C = {classes} classes")
    targets_h = _host_ints(op, "targets", targets)
    input_lengths_h = _host_ints(op, "input_lengths", input_lengths).reshape(-1)
    target_lengths_h = _host_ints(op, "target_lengths", target_lengths).reshape(-1)
    for name, lengths in (("input_lengths", input_lengths_h),
                          ("target_lengths", target_lengths_h)):
        if lengths.shape[0] != batch:
            raise ValueError(f"{op}: {name} has {lengths.shape[0]} entries but log_probs has "
                             f"batch size {batch} (log_probs shape {tuple(lp.shape)})")
        if (lengths < 0).any():
            n = int(np.nonzero(lengths < 0)[0][0])
            raise ValueError(f"{op}: {name}[{n}] = {int(lengths[n])} is negative")
    if (input_lengths_h > max_time).any():
        n = int(np.nonzero(input_lengths_h > max_time)[0][0])
        raise ValueError(f"{op}: input_lengths[{n}] = {int(input_lengths_h[n])} exceeds the "
                         f"{max_time} time steps of log_probs (shape {tuple(lp.shape)})")
    padded, in_target = _padded_targets(op, targets_h, target_lengths_h, batch)
    _check_labels(op, padded, in_target, classes, blank)
    _warn_infeasible(padded, in_target, input_lengths_h, target_lengths_h, zero_infinity)

    device = "cuda" if is_device_array(lp) else "cpu"
    as_device = (lambda a: move(a, device))
    return CTCLoss.apply(log_probs, as_device(padded.astype(np.int32)),
                         as_device(input_lengths_h.astype(np.int32)),
                         as_device(target_lengths_h.astype(np.int32)), blank=int(blank),
                         reduction=reduction, zero_infinity=bool(zero_infinity))
