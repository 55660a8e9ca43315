"""CPU backend of the CTC kernels (csrc/host/ctc.cpp), with the signatures of
nnlite.kernels.cuda_ctc."""
import numpy as np

from nnlite.kernels import _checks


def _entry(op, dtype):
    # Imported here: nnlite.kernels.host re-exports this module at its end.
    from nnlite.kernels import host
    return host._entry(op, dtype)


def ctc_alpha(log_probs, targets, input_lengths, target_lengths, blank=0):
    """CTC forward. log_probs (T, N, C); targets (N, L_max) int32, padded;
    input_lengths, target_lengths (N,) int32. Returns (nll (N,), alpha (N, T,
    2 L_max + 1)): -log p(target) per sample and the log-space forward variables
    (only frames t < input_length are written)."""
    log_probs, targets, input_lengths, target_lengths = _checks.ctc_arrays(
        "ctc_alpha", np, log_probs, targets, input_lengths, target_lengths)
    max_time, batch, _ = log_probs.shape
    alpha = np.empty((batch, max_time, 2 * targets.shape[1] + 1), dtype=log_probs.dtype)
    nll = np.empty(batch, dtype=log_probs.dtype)
    if batch:
        _entry("ctc_alpha", log_probs.dtype)(log_probs, targets, input_lengths, target_lengths,
                                             alpha, nll, int(blank))
    return nll, alpha


def ctc_backward(log_probs, targets, input_lengths, target_lengths, alpha, nll, grad_scale,
                 blank=0):
    """grad_scale[n] * d(-log p_n)/d log_probs (T, N, C), from ctc_alpha's outputs.
    Frames t >= input_length and samples with nll = inf get exactly 0."""
    log_probs, targets, input_lengths, target_lengths = _checks.ctc_arrays(
        "ctc_backward", np, log_probs, targets, input_lengths, target_lengths)
    alpha, = _checks.float_arrays("ctc_backward", np, ("N", "T", "S"), alpha=alpha)
    nll, grad_scale = _checks.float_arrays("ctc_backward", np, ("N",), nll=nll,
                                           grad_scale=grad_scale)
    grad = np.zeros_like(log_probs)
    if log_probs.shape[1]:
        _entry("ctc_backward", log_probs.dtype)(
            log_probs, targets, input_lengths, target_lengths,
            alpha.astype(log_probs.dtype, copy=False), nll.astype(log_probs.dtype, copy=False),
            grad_scale.astype(log_probs.dtype, copy=False), grad, int(blank))
    return grad
