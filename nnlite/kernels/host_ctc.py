"""CPU backend of the CTC kernels (csrc/host/ctc.cpp), with the signatures of
nnlite.kernels.cuda_ctc."""
import numpy as np

from nnlite.kernels import _checks


def _entry(op, dtype):
    # Imported here: nnlite.kernels.host re-exports this module at its end.
    from nnlite.kernels import host
    return host._entry(op, dtype)


def _dims(log_probs, targets, blank):
    """The scalar arguments of the entry points: batch, classes, max_time,
    max_length, blank (the order of csrc/cuda/ctc.cu)."""
    max_time, batch, classes = log_probs.shape
    return batch, classes, max_time, targets.shape[1], int(blank)


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
                                             alpha, nll, *_dims(log_probs, targets, blank))
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
    # ctc_grad indexes alpha and nll with the dims of log_probs and targets:
    # refuse a mismatch with the messages of the GPU backend.
    max_time, batch, _ = log_probs.shape
    if tuple(alpha.shape) != (batch, max_time, 2 * targets.shape[1] + 1):
        raise ValueError(f"ctc_backward: alpha has shape {tuple(alpha.shape)}; expected "
                         f"(N, T, 2 L_max + 1)")
    if tuple(nll.shape) != (batch,):
        raise ValueError(f"ctc_backward: nll has shape {tuple(nll.shape)}; expected the shape "
                         f"of input_lengths, {tuple(input_lengths.shape)}")
    dtype = log_probs.dtype
    alpha = alpha.astype(dtype, copy=False)
    beta = np.empty_like(alpha)
    grad = np.empty_like(log_probs)
    if log_probs.shape[1]:
        dims = _dims(log_probs, targets, blank)
        _entry("ctc_beta", dtype)(log_probs, targets, input_lengths, target_lengths, beta, *dims)
        _entry("ctc_grad", dtype)(
            log_probs, targets, input_lengths, target_lengths, alpha, beta,
            nll.astype(dtype, copy=False), grad_scale.astype(dtype, copy=False), grad, *dims)
    return grad
