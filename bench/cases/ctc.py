"""CTC loss, forward and forward+backward, float32, through F.ctc_loss (what a
user calls, host-side checks included) against torch.nn.functional.ctc_loss;
and prefix beam search at width 10 (report sequences/s = N / median)."""
import numpy as np

from bench.harness import Case, Impl, device_sync, register, torch_or_none
import nnlite as nl
import nnlite.functional as F
from nnlite.decode import ctc_beam_search
from nnlite.reference import ctc as reference

# (label, T, N, C, min label length, max label length)
SHAPES = [("crnn", 31, 32, 63, 4, 16), ("long", 200, 32, 96, 40, 80),
          ("warp-ctc", 150, 64, 28, 40, 40)]
BEAM_WIDTH = 10


@register
def ctc_cases(device, xp):
    cases = []
    for label, max_time, batch, classes, shortest, longest in SHAPES:
        cases += _cases(device, xp, label, max_time, batch, classes, shortest, longest)
    if device == "cpu":
        cases.append(_beam_case())
    return cases


def _batch(max_time, batch, classes, shortest, longest, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((max_time, batch, classes)).astype(np.float32)
    log_probs = x - np.log(np.exp(x).sum(axis=2, keepdims=True))
    target_lengths = rng.integers(shortest, longest + 1, size=batch)
    targets = rng.integers(1, classes, size=(batch, longest))  # blank = 0
    input_lengths = np.full(batch, max_time)
    return log_probs, targets, input_lengths, target_lengths


def _cases(device, xp, label, max_time, batch, classes, shortest, longest):
    log_probs, targets, input_lengths, target_lengths = _batch(max_time, batch, classes,
                                                               shortest, longest)
    shape = (f"{label} T={max_time} N={batch} C={classes} L={shortest}"
             + (f"-{longest}" if longest != shortest else "") + " float32")
    sync = device_sync(device)
    lp_data = xp.asarray(log_probs)
    lp_const = nl.tensor(lp_data)

    def forward():
        with nl.no_grad():
            return F.ctc_loss(lp_const, targets, input_lengths, target_lengths)

    def forward_backward():
        lp = nl.tensor(lp_data, requires_grad=True)
        F.ctc_loss(lp, targets, input_lengths, target_lengths).backward()
        return lp.grad

    fwd = [Impl("nnlite", forward, sync)]
    both = [Impl("nnlite", forward_backward, sync)]
    if device == "cpu" and label == "crnn":  # the Python-loop reference is slow beyond this
        both.append(Impl("numpy-ref", lambda: reference.ctc_loss_grad_vectorized(
            log_probs, targets, input_lengths, target_lengths), sync,
            output=lambda result: result[1] / (batch * target_lengths)[None, :, None]))
    torch = torch_or_none()
    if torch is not None:
        fwd_torch, both_torch = _torch_impls(torch, device, log_probs, targets, input_lengths,
                                             target_lengths)
        fwd.append(fwd_torch)
        both.append(both_torch)
    array_bytes = log_probs.size * 4
    # reduction="mean": each sample's loss over its target length, averaged over N.
    scale = 1.0 / (batch * target_lengths)

    def reference_loss_and_grad():
        nll, grad = reference.ctc_loss_grad_vectorized(log_probs, targets, input_lengths,
                                                       target_lengths)
        return (nll * scale).sum(), grad * scale[None, :, None]

    return [Case("ctc_loss fwd", device, shape, fwd, nbytes=array_bytes, rtol=1e-4, atol=1e-5,
                 expected=lambda: reference_loss_and_grad()[0]),
            Case("ctc_loss fwd+bwd", device, shape, both, nbytes=3 * array_bytes, rtol=1e-3,
                 atol=1e-6, expected=lambda: reference_loss_and_grad()[1])]


def _torch_impls(torch, device, log_probs, targets, input_lengths, target_lengths):
    on = "cuda" if device == "cuda" else "cpu"
    lp = torch.as_tensor(log_probs, device=on)
    tg = torch.as_tensor(targets, device=on)
    il = torch.as_tensor(input_lengths, device=on)
    tl = torch.as_tensor(target_lengths, device=on)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.ctc_loss(lp, tg, il, tl)

    def forward_backward():
        x = lp.detach().requires_grad_(True)
        torch.nn.functional.ctc_loss(x, tg, il, tl).backward()
        return x.grad

    def true_gradient(grad):
        """PyTorch's CTC gradient assumes log_probs came from a log_softmax and
        returns scale * (exp(log_probs) - occupancy); nnlite returns the true
        gradient, -scale * occupancy (DESIGN.md). Both over the frames t <
        input_length, so the difference is scale * exp(log_probs) there."""
        scale = 1.0 / (log_probs.shape[1] * np.asarray(target_lengths))
        live = np.arange(log_probs.shape[0])[:, None] < np.asarray(input_lengths)[None, :]
        return (grad.detach().cpu().numpy()
                - (scale[None, :, None] * np.exp(log_probs)) * live[:, :, None])

    return (Impl("torch", forward, sync),
            Impl("torch", forward_backward, sync, output=true_gradient))


def _beam_case():
    log_probs, _, _, _ = _batch(31, 32, 63, 4, 16, seed=1)
    # Peaked like a trained CRNN's outputs rather than near-uniform noise.
    sharp = log_probs * 4
    sharp = sharp - np.log(np.exp(sharp).sum(axis=2, keepdims=True))
    ctc_beam_search(sharp[:, :1], BEAM_WIDTH)  # numba compiles outside the timing
    return Case(f"ctc_beam_search w{BEAM_WIDTH}", "cpu",
                "crnn T=31 N=32 C=63 float32 (seq/s = 32000 / median_ms)",
                [Impl("nnlite", lambda: ctc_beam_search(sharp, BEAM_WIDTH))])
