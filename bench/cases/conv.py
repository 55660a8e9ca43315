"""conv2d, forward and forward+backward (grads of x, w, b), float32, by each
algorithm side by side: "nnlite" is what F.conv2d picks by itself
(nnlite.backends.conv_algorithm = "auto"), "nnlite:im2col", "nnlite:direct"
and "nnlite:winograd" force one (Winograd only on 3x3 layers).

Shapes: CharNet conv1 and every layer of the seed CRNN text recogniser at
N=32 and a 1x32x128 input, conv1..conv6 (3x3 same) and conv7 (2x2 valid)
("ocr" below); the CharNet/DictNet ("jaderberg"), digit-sequence and
attention-reader layers at their training batches (SEED_LAYERS; SVHN's are
not included yet).
"""
import numpy as np

import nnlite as nl
import nnlite.functional as F
from bench.harness import Case, Impl, device_sync, register, torch_or_none
from nnlite.functional import conv_winograd
from nnlite.functional.conv import conv_padding
from nnlite.kernels import conv as conv_kernels
from nnlite.kernels.shapes import ConvGeometry
from nnlite.reference import conv as reference

# label: (N, C_in, H, W, C_out, k, padding)
SHAPES = {
    "charnet conv1": (32, 1, 32, 100, 64, 5, "same"),
    "ocr conv1": (32, 1, 32, 128, 64, 3, "same"),
    "ocr conv2": (32, 64, 16, 64, 128, 3, "same"),
    "ocr conv3": (32, 128, 8, 32, 256, 3, "same"),
    "ocr conv4": (32, 256, 4, 32, 256, 3, "same"),
    "ocr conv5": (32, 256, 4, 32, 512, 3, "same"),
    "ocr conv6": (32, 512, 4, 32, 512, 3, "same"),
    "ocr conv7": (32, 512, 2, 32, 512, 2, "valid"),
}
# The other seed networks' layers, at their training batches; timed fewer
# rounds (Case.max_repeat), as the large kernels take up to seconds on a CPU.
SEED_LAYERS = {
    "jaderberg conv2": (32, 64, 16, 50, 128, 5, "same"),
    "jaderberg conv3": (32, 128, 8, 25, 256, 3, "same"),
    "jaderberg conv4": (32, 256, 8, 25, 512, 3, "same"),
    "jaderberg conv5": (32, 512, 4, 13, 512, 3, "same"),
    "digits conv1": (50, 1, 128, 256, 8, 10, "same"),
    "digits conv2": (50, 8, 64, 128, 14, 8, "same"),
    "digits conv3": (50, 14, 32, 64, 20, 6, "same"),
    "digits conv4": (50, 20, 16, 32, 24, 4, "same"),
    "digits conv5": (50, 24, 8, 16, 32, 2, "same"),
    "reader c1": (32, 1, 40, 40, 16, 3, "valid"),
    "reader c2": (32, 16, 38, 38, 16, 3, "valid"),
}
SEED_LAYER_REPEAT = 10


# im2col alone, on the CRNN layers where it moves the most bytes.
IM2COL_SHAPES = ("ocr conv2", "ocr conv3")


@register
def conv_cases(device, xp):
    cases = []
    for label, dims in SHAPES.items():
        cases += _cases(device, xp, label, *dims)
    for label, dims in SEED_LAYERS.items():
        cases += _cases(device, xp, label, *dims, max_repeat=SEED_LAYER_REPEAT)
    for label in IM2COL_SHAPES:
        cases += _im2col_cases(device, xp, label, *SHAPES[label])
    return cases


def _im2col_cases(device, xp, label, n, c, h, w, o, k, padding):
    """im2col of a whole batch, beside a copy of its column matrix: the GPU
    target is im2col at >= 60% of the copy's bandwidth (GB/s counts the bytes
    read and written)."""
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((n, c, h, w), dtype=np.float32)
    x = xp.asarray(x_host)
    pad = conv_padding(padding, (k, k), (1, 1), (1, 1))
    g = ConvGeometry.of((h, w), k, padding=pad)
    cols_host = conv_kernels.im2col(x_host, g)
    cols = xp.asarray(cols_host)
    sync = device_sync(device)
    impls = [Impl("nnlite", lambda: conv_kernels.im2col(x, g), sync)]
    if device == "cpu":
        impls.append(Impl("numpy-ref", lambda: reference.im2col(x_host, (k, k), (1, 1), pad,
                                                                (1, 1))))
    shape = f"{label} {n}x{c}x{h}x{w} {k}x{k} {padding} float32"
    return [Case("im2col", device, shape, impls, nbytes=x_host.nbytes + cols_host.nbytes,
                 expected=lambda: reference.im2col(x_host, (k, k), (1, 1), pad, (1, 1)),
                 rtol=0, atol=0),
            Case("copy of columns", device, shape, [Impl("copy", lambda: cols.copy(), sync)],
                 nbytes=2 * cols_host.nbytes)]


def _cases(device, xp, label, n, c, h, w, o, k, padding, max_repeat=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    bias = rng.standard_normal(o, dtype=np.float32)
    pad = conv_padding(padding, (k, k), (1, 1), (1, 1))  # (top, bottom, left, right)
    out_h, out_w = h + pad[0] + pad[1] - k + 1, w + pad[2] + pad[3] - k + 1
    gy = rng.standard_normal((n, o, out_h, out_w), dtype=np.float32)
    tensors = [nl.tensor(a, device=device) for a in (x, weight, bias)]
    leaves = [nl.tensor(a, device=device, requires_grad=True) for a in (x, weight, bias)]
    gy_tensor = nl.tensor(gy, device=device)
    sync = device_sync(device)

    def forward(algorithm):
        def run():
            with nl.no_grad():
                return F.conv2d(*tensors, padding=padding, algorithm=algorithm).data
        return run

    def forward_backward(algorithm):
        def run():
            for leaf in leaves:
                leaf.grad = None
            F.conv2d(*leaves, padding=padding, algorithm=algorithm).backward(gy_tensor)
            return leaves[0].grad
        return run

    algorithms = ["im2col", "direct"] + (
        ["winograd"] if conv_winograd.supports((k, k), (1, 1), (1, 1)) else [])
    fwd = [Impl("nnlite", forward(None), sync)] + [
        Impl(f"nnlite:{a}", forward(a), sync) for a in algorithms]
    both = [Impl("nnlite", forward_backward(None), sync)] + [
        Impl(f"nnlite:{a}", forward_backward(a), sync) for a in algorithms]
    torch = torch_or_none()
    if torch is not None:
        fwd_torch, both_torch = _torch_impls(torch, device, x, weight, bias, gy, padding)
        fwd.append(fwd_torch)
        both.append(both_torch)
    shape = f"{label} {n}x{c}x{h}x{w} {c}->{o} {k}x{k} {padding}"
    flops = 2 * n * o * c * k * k * out_h * out_w
    x64, w64 = x.astype(np.float64), weight.astype(np.float64)
    return [Case("conv2d fwd", device, shape, fwd, flops=flops, rtol=1e-3, atol=1e-3,
                 expected=lambda: reference.conv2d_forward(x64, w64, bias, (1, 1), pad, (1, 1)),
                 max_repeat=max_repeat, long=max_repeat is not None),
            Case("conv2d fwd+bwd", device, shape, both, flops=3 * flops, rtol=1e-3, atol=1e-3,
                 expected=lambda: reference.conv2d_backward(x64, w64, gy, (1, 1), pad,
                                                            (1, 1))[0],
                 max_repeat=max_repeat, long=max_repeat is not None)]


def _torch_impls(torch, device, x, weight, bias, gy, padding):
    as_torch = (lambda a: torch.from_numpy(a)) if device == "cpu" else \
        (lambda a: torch.as_tensor(a, device="cuda"))
    xt, wt, bt, gyt = (as_torch(a) for a in (x, weight, bias, gy))
    leaves = [t.clone().requires_grad_(True) for t in (xt, wt, bt)]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, bt, padding=padding)

    def forward_backward():
        y = torch.nn.functional.conv2d(*leaves, padding=padding)
        return torch.autograd.grad(y, leaves, gyt)

    return Impl("torch", forward, sync), Impl("torch", forward_backward, sync)
