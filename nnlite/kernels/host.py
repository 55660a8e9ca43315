"""CPU backend: the host build of csrc/ (nnlite._C) behind the facade's signatures."""
import importlib

import numpy as np

from nnlite.kernels import _checks

ROWS_COLS = ("rows", "cols")


def _lib():
    try:
        return importlib.import_module("nnlite._C")
    except ImportError as exc:
        raise ImportError(f"nnlite.kernels.host: the compiled host kernels nnlite._C are "
                          f"missing or failed to load ({exc}); rebuild them by reinstalling "
                          f"from the repository root with `pip install -e .`") from exc


def _entry(op, dtype):
    return getattr(_lib(), f"{op}_{_checks.dtype_suffix(dtype)}")


def softmax_forward(x, log=False):
    """Row-wise softmax (log=False) or log-softmax (log=True) of x (rows, cols)."""
    (x,) = _checks.float_arrays("softmax_forward", np, ROWS_COLS, x=x)
    y = np.empty_like(x)
    if x.size:
        _entry("softmax_forward", x.dtype)(x, y, int(bool(log)))
    return y


def softmax_backward(y, gy, log=False):
    """Gradient w.r.t. the softmax input, from the forward output y and its gradient gy."""
    y, gy = _checks.float_arrays("softmax_backward", np, ROWS_COLS, y=y, gy=gy)
    gx = np.empty_like(y)
    if y.size:
        _entry("softmax_backward", y.dtype)(y, gy, gx, int(bool(log)))
    return gx


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
