"""The CTC family (csrc/nnlite/ctc.cuh): the forward (alpha) and backward
(beta) recursions in log space and the gathered gradient with respect to the
log-probabilities.

Entry points, the same in both builds (csrc/cuda/ctc.cu, csrc/host/ctc.cpp),
all ending in ``batch, classes, max_time, max_length, blank``:
    ctc_alpha(log_probs, targets, input_lengths, target_lengths, alpha, nll, ...)
    ctc_beta(log_probs, targets, input_lengths, target_lengths, beta, ...)
    ctc_grad(log_probs, targets, input_lengths, target_lengths, alpha, beta, nll,
             grad_scale, grad, ...)
On the GPU a recursion is one block per sequence (threads over the extended
label), the gradient one thread per (t, n, c). Value checks (lengths, labels)
are worded for the user by nnlite.functional.ctc; the entry points check them
again.
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Blocks, Grid, array_module, launch


def _inputs(op, log_probs, targets, input_lengths, target_lengths):
    """log_probs (T, N, C) float, targets (N, L_max) int32 (padded), input_lengths
    and target_lengths (N,) int32, C-contiguous, and the trailing entry-point
    arguments."""
    xp = array_module(log_probs)
    (log_probs,) = checks.float_arrays(op, xp, ("T", "N", "C"), log_probs=log_probs)
    max_time, batch, classes = log_probs.shape
    with_n = f"with N = {batch} from log_probs {tuple(log_probs.shape)}"
    targets = checks.int32_array(op, xp, "targets", targets, (batch, None), f"(N, L_max) {with_n}")
    input_lengths = checks.int32_array(op, xp, "input_lengths", input_lengths, (batch,),
                                       f"(N,) {with_n}")
    target_lengths = checks.int32_array(op, xp, "target_lengths", target_lengths, (batch,),
                                        f"(N,) {with_n}")
    return xp, (log_probs, targets, input_lengths, target_lengths)


def _dims(log_probs, targets, blank):
    max_time, batch, classes = log_probs.shape
    return (batch, classes, max_time, targets.shape[1], int(blank))


def ctc_alpha(log_probs, targets, input_lengths, target_lengths, blank=0):
    """CTC forward. Returns (nll (N,), alpha (N, T, 2 L_max + 1)): -log p(target)
    per sample and the log-space forward variables (only frames t < input_length
    are written)."""
    xp, inputs = _inputs("ctc_alpha", log_probs, targets, input_lengths, target_lengths)
    log_probs, targets = inputs[0], inputs[1]
    max_time, batch, _ = log_probs.shape
    ext = 2 * targets.shape[1] + 1
    alpha = xp.empty((batch, max_time, ext), dtype=log_probs.dtype)
    nll = xp.empty(batch, dtype=log_probs.dtype)
    if batch:
        launch("ctc_alpha", log_probs.dtype, Blocks(batch, ext),
               inputs + (alpha, nll) + _dims(log_probs, targets, blank))
    return nll, alpha


def ctc_backward(log_probs, targets, input_lengths, target_lengths, alpha, nll, grad_scale,
                 blank=0):
    """grad_scale[n] * d(-log p_n)/d log_probs (T, N, C), from ctc_alpha's outputs:
    beta into a workspace the size of alpha, then the gathered gradient. Frames
    t >= input_length and samples with nll = inf get exactly 0."""
    op = "ctc_backward"
    xp, inputs = _inputs(op, log_probs, targets, input_lengths, target_lengths)
    log_probs, targets = inputs[0], inputs[1]
    max_time, batch, _ = log_probs.shape
    dtype = log_probs.dtype
    (alpha,) = checks.float_arrays(op, xp, ("N", "T", "S"), alpha=alpha)
    checks.require_shape(op, "alpha", alpha, (batch, max_time, 2 * targets.shape[1] + 1),
                         "(N, T, 2 L_max + 1), as ctc_alpha returns it")
    nll, grad_scale = checks.float_arrays(op, xp, ("N",), nll=nll, grad_scale=grad_scale)
    checks.require_shape(op, "nll", nll, (batch,), "(N,)")
    alpha, nll, grad_scale = (a.astype(dtype, copy=False) for a in (alpha, nll, grad_scale))
    # ctc_grad writes every element (0 past a sequence's input length).
    grad = (xp.empty_like if log_probs.size else xp.zeros_like)(log_probs)
    if log_probs.size:
        dims = _dims(log_probs, targets, blank)
        beta = xp.empty_like(alpha)
        launch("ctc_beta", dtype, Blocks(batch, alpha.shape[2]), inputs + (beta,) + dims)
        launch("ctc_grad", dtype, Grid(log_probs.size),
               inputs + (alpha, beta, nll, grad_scale, grad) + dims)
    return grad
