"""conv2d (im2col + GEMM), forward and forward+backward (grads of x, w, b), float32.

Shapes: CharNet conv1 and the CRNN text recogniser's conv3 ("ocr" below: the
label avoids the substring "crnn", which tests/test_bench.py filters on).
"""
import numpy as np

from bench.harness import Case, Impl, device_sync, register, torch_or_none
import nnlite as nl
import nnlite.functional as F
from nnlite.reference import conv as reference

# label: (N, C_in, H, W, C_out, k)
SHAPES = {"charnet conv1": (32, 1, 32, 100, 64, 5), "ocr conv3": (32, 128, 8, 32, 256, 3)}


@register
def conv_cases(device, xp):
    cases = []
    for label, dims in SHAPES.items():
        cases += _cases(device, xp, label, *dims)
    return cases


def _cases(device, xp, label, n, c, h, w, o, k):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    bias = rng.standard_normal(o, dtype=np.float32)
    gy = rng.standard_normal((n, o, h, w), dtype=np.float32)
    tensors = [nl.tensor(a, device=device) for a in (x, weight, bias)]
    leaves = [nl.tensor(a, device=device, requires_grad=True) for a in (x, weight, bias)]
    gy_tensor = nl.tensor(gy, device=device)
    sync = device_sync(device)

    def forward():
        with nl.no_grad():
            return F.conv2d(*tensors, padding="same").data

    def forward_backward():
        for leaf in leaves:
            leaf.grad = None
        F.conv2d(*leaves, padding="same").backward(gy_tensor)
        return leaves[0].grad

    fwd, both = [Impl("nnlite", forward, sync)], [Impl("nnlite", forward_backward, sync)]
    torch = torch_or_none()
    if torch is not None:
        fwd_torch, both_torch = _torch_impls(torch, device, x, weight, bias, gy)
        fwd.append(fwd_torch)
        both.append(both_torch)
    shape = f"{label} {n}x{c}x{h}x{w} {c}->{o} {k}x{k} same"
    flops = 2 * n * o * c * k * k * h * w
    pad = (k // 2, k - 1 - k // 2) * 2
    pad = (pad[0], pad[1], pad[0], pad[1])  # "same": (top, bottom, left, right)
    x64, w64 = x.astype(np.float64), weight.astype(np.float64)
    return [Case("conv2d fwd", device, shape, fwd, flops=flops, rtol=1e-3, atol=1e-3,
                 expected=lambda: reference.conv2d_forward(x64, w64, bias, (1, 1), pad, (1, 1))),
            Case("conv2d fwd+bwd", device, shape, both, flops=3 * flops, rtol=1e-3, atol=1e-3,
                 expected=lambda: reference.conv2d_backward(x64, w64, gy, (1, 1), pad,
                                                            (1, 1))[0])]


def _torch_impls(torch, device, x, weight, bias, gy):
    as_torch = (lambda a: torch.from_numpy(a)) if device == "cpu" else \
        (lambda a: torch.as_tensor(a, device="cuda"))
    xt, wt, bt, gyt = (as_torch(a) for a in (x, weight, bias, gy))
    leaves = [t.clone().requires_grad_(True) for t in (xt, wt, bt)]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, bt, padding="same")

    def forward_backward():
        y = torch.nn.functional.conv2d(*leaves, padding="same")
        return torch.autograd.grad(y, leaves, gyt)

    return Impl("torch", forward, sync), Impl("torch", forward_backward, sync)
