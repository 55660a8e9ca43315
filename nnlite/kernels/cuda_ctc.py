"""GPU backend of the CTC kernels (csrc/cuda/ctc.cu), with the signatures of
nnlite.kernels.host_ctc: one block per sequence for the alpha/beta recursions,
a grid-stride loop over (t, n, c) for the gathered gradient."""
import numpy as np

from nnlite.kernels import _checks


def _cuda():
    # Imported here: nnlite.kernels.cuda re-exports this module at its end.
    from nnlite.kernels import cuda
    return cuda


def _cupy():
    return _cuda()._cupy()


def _function(family, name):
    return _cuda()._function(family, name)


CTC_GRAD_THREADS = 256  # NNL_GRID_THREADS of csrc/nnlite/portable.cuh
CTC_GRAD_MAX_BLOCKS = 65535  # NNL_MAX_GRID_BLOCKS: the grid-stride loop covers the rest


def ctc_launch_threads(ext_len):
    """Threads of a one-block-per-sequence CTC recursion: the extended label
    rounded up to a warp, capped at the TK1 block limit (threads then stride)."""
    warps = -(-max(ext_len, 1) // _cuda().MIN_THREADS_PER_BLOCK)
    return min(warps * _cuda().MIN_THREADS_PER_BLOCK, _cuda().MAX_THREADS_PER_BLOCK)


def _ctc_dims(log_probs, targets):
    max_time, batch, classes = log_probs.shape
    return (np.int32(batch), np.int32(classes), np.int32(max_time), np.int32(targets.shape[1]))


def ctc_alpha(log_probs, targets, input_lengths, target_lengths, blank=0):
    """CTC forward; same contract as nnlite.kernels.host.ctc_alpha."""
    cupy = _cupy()
    log_probs, targets, input_lengths, target_lengths = _checks.ctc_arrays(
        "ctc_alpha", cupy, log_probs, targets, input_lengths, target_lengths)
    max_time, batch, _ = log_probs.shape
    ext_stride = 2 * targets.shape[1] + 1
    alpha = cupy.empty((batch, max_time, ext_stride), dtype=log_probs.dtype)
    nll = cupy.empty(batch, dtype=log_probs.dtype)
    if batch:
        kernel = _function("ctc", f"ctc_alpha_{_checks.dtype_suffix(log_probs.dtype)}")
        kernel((batch,), (ctc_launch_threads(ext_stride),),
               (log_probs, targets, input_lengths, target_lengths, alpha, nll,
                *_ctc_dims(log_probs, targets), np.int32(blank)))
    return nll, alpha


def ctc_backward(log_probs, targets, input_lengths, target_lengths, alpha, nll, grad_scale,
                 blank=0):
    """CTC gradient; same contract as nnlite.kernels.host.ctc_backward. beta is
    computed here into a workspace the size of alpha, then a grid-stride loop
    over (t, n, c) gathers the gradient."""
    cupy = _cupy()
    log_probs, targets, input_lengths, target_lengths = _checks.ctc_arrays(
        "ctc_backward", cupy, log_probs, targets, input_lengths, target_lengths)
    alpha, = _checks.float_arrays("ctc_backward", cupy, ("N", "T", "S"), alpha=alpha)
    nll, grad_scale = _checks.float_arrays("ctc_backward", cupy, ("N",), nll=nll,
                                           grad_scale=grad_scale)
    # The kernels index alpha, nll and grad_scale with the dims of log_probs and
    # targets: refuse a mismatch as the host build does (same messages).
    max_time, batch, _ = log_probs.shape
    if tuple(alpha.shape) != (batch, max_time, 2 * targets.shape[1] + 1):
        raise ValueError(f"ctc_backward: alpha has shape {tuple(alpha.shape)}; expected "
                         f"(N, T, 2 L_max + 1)")
    if tuple(nll.shape) != (batch,):
        raise ValueError(f"ctc_backward: nll has shape {tuple(nll.shape)}; expected the shape "
                         f"of input_lengths, {tuple(input_lengths.shape)}")
    dtype = log_probs.dtype
    alpha = alpha.astype(dtype, copy=False)
    nll = nll.astype(dtype, copy=False)
    grad_scale = grad_scale.astype(dtype, copy=False)
    grad = cupy.empty_like(log_probs)
    if not log_probs.size:
        return grad
    suffix = _checks.dtype_suffix(dtype)
    dims = _ctc_dims(log_probs, targets)
    batch = log_probs.shape[1]
    beta = cupy.empty_like(alpha)
    _function("ctc", f"ctc_beta_{suffix}")(
        (batch,), (ctc_launch_threads(alpha.shape[2]),),
        (log_probs, targets, input_lengths, target_lengths, beta, *dims, np.int32(blank)))
    blocks = min(-(-log_probs.size // CTC_GRAD_THREADS), CTC_GRAD_MAX_BLOCKS)
    _function("ctc", f"ctc_grad_{suffix}")(
        (blocks,), (CTC_GRAD_THREADS,),
        (log_probs, targets, input_lengths, target_lengths, alpha, beta, nll, grad_scale, grad,
         *dims, np.int32(blank)))
    return grad
