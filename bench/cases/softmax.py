"""Softmax and log-softmax, forward and forward+backward, float32."""
import numpy as np

from bench.harness import Case, Impl, device_sync, register, torch_or_none
from nnlite.device import to_numpy
from nnlite.kernels import softmax as softmax_kernels
from nnlite.reference import softmax as reference

# CRNN: 31*32 = 992 (time step, batch) rows over 63 classes; "large": a wide classifier.
SHAPES = {"crnn": (31 * 32, 63), "large": (4096, 1000)}


@register
def softmax_cases(device, xp):
    cases = []
    for label, (rows, cols) in SHAPES.items():
        for log in (False, True):
            cases += _cases(device, xp, f"{label} {rows}x{cols} float32", rows, cols, log)
    return cases


def _cases(device, xp, shape, rows, cols, log):
    # One function call per (shape, log): the lambdas below close over its locals.
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((rows, cols), dtype=np.float32))
    gy = xp.asarray(rng.standard_normal((rows, cols), dtype=np.float32))
    sync = device_sync(device)
    ref = "numpy-ref" if device == "cpu" else "cupy-ref"
    fwd = [Impl("nnlite", lambda: softmax_kernels.softmax_forward(x, log), sync),
           Impl(ref, lambda: reference.softmax_forward(x, log), sync)]
    both = [Impl("nnlite", lambda: softmax_kernels.softmax_backward(
                softmax_kernels.softmax_forward(x, log), gy, log), sync),
            Impl(ref, lambda: reference.softmax_backward(
                reference.softmax_forward(x, log), gy, log), sync)]
    torch = torch_or_none()
    if torch is not None:
        fwd_torch, both_torch = _torch_impls(torch, device, x, gy, log)
        fwd.append(fwd_torch)
        both.append(both_torch)
    op = "log_softmax" if log else "softmax"
    array_bytes = rows * cols * 4
    # Ideal traffic: forward reads x and writes y; backward reads y, gy and writes gx.
    x64, gy64 = (to_numpy(a).astype(np.float64) for a in (x, gy))
    return [Case(f"{op} fwd", device, shape, fwd, nbytes=2 * array_bytes,
                 expected=lambda: reference.softmax_forward(x64, log), rtol=1e-5, atol=1e-6),
            Case(f"{op} fwd+bwd", device, shape, both, nbytes=5 * array_bytes,
                 expected=lambda: reference.softmax_backward(reference.softmax_forward(x64, log),
                                                             gy64, log), rtol=1e-5, atol=1e-5)]


def _torch_impls(torch, device, x, gy, log):
    as_torch = torch.from_numpy if device == "cpu" else torch.as_tensor
    xt, gyt = as_torch(x), as_torch(gy)
    xg = xt.clone().requires_grad_(True)
    fn = torch.log_softmax if log else torch.softmax
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            return fn(xt, dim=1)

    def forward_backward():
        return torch.autograd.grad(fn(xg, dim=1), xg, gyt)[0]

    return Impl("torch", forward, sync), Impl("torch", forward_backward, sync)
