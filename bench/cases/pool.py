"""Max pooling, forward and forward+backward, float32, at the seed networks' shapes."""
import numpy as np

from bench.harness import Case, Impl, device_sync, register, torch_or_none
from nnlite.kernels import pool as pool_kernels
from nnlite.kernels.shapes import PoolGeometry
from nnlite.reference import pool as reference

# label: (x shape, kernel, stride, ceil_mode)
SHAPES = {"charnet pool3": ((32, 512, 8, 25), (2, 2), (2, 2), True),
          "ocr pool (2,1)": ((32, 256, 8, 32), (2, 1), (2, 1), False)}


@register
def pool_cases(device, xp):
    cases = []
    for label, (shape, kernel, stride, ceil_mode) in SHAPES.items():
        cases += _cases(device, xp, label, shape, kernel, stride, ceil_mode)
    return cases


def _cases(device, xp, label, shape, kernel, stride, ceil_mode):
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal(shape, dtype=np.float32)
    x = xp.asarray(x_host)
    window = dict(kernel_size=kernel, stride=stride, padding=0, ceil_mode=ceil_mode)
    g = PoolGeometry.of(shape[2:], **window)
    y, _ = pool_kernels.maxpool_forward(x, g)
    gy_host = rng.standard_normal(y.shape, dtype=np.float32)
    gy = xp.asarray(gy_host)
    sync = device_sync(device)

    def forward_backward():
        y, argmax = pool_kernels.maxpool_forward(x, g)
        return pool_kernels.maxpool_backward(gy, argmax, g)

    def ref_forward_backward():
        y, argmax = reference.maxpool_forward(x_host, **window)
        return reference.maxpool_backward(gy_host, argmax, shape, **window)

    fwd = [Impl("nnlite", lambda: pool_kernels.maxpool_forward(x, g), sync)]
    both = [Impl("nnlite", forward_backward, sync)]
    if device == "cpu":  # the reference is NumPy loops; it has no GPU form
        fwd.append(Impl("numpy-ref", lambda: reference.maxpool_forward(x_host, **window)))
        both.append(Impl("numpy-ref", ref_forward_backward))
    torch = torch_or_none()
    if torch is not None:
        fwd_torch, both_torch = _torch_impls(torch, device, x, gy, window)
        fwd.append(fwd_torch)
        both.append(both_torch)
    x_bytes, y_bytes = x_host.nbytes, gy_host.nbytes
    # Ideal traffic: forward reads x, writes y and the int32 argmax; backward reads
    # gy and argmax and writes gx.
    name = f"{label} {'x'.join(map(str, shape))} k{kernel[0]}x{kernel[1]}" \
           f"{' ceil' if ceil_mode else ''}"
    # The copy of x is the bandwidth yardstick of the GPU target (max pool at
    # >= 60% of it); its GB/s column counts the bytes read and written.
    copy = [Impl("copy", lambda: x.copy(), sync)]
    return [Case("max_pool2d fwd", device, name, fwd, nbytes=x_bytes + 2 * y_bytes,
                 expected=lambda: reference.maxpool_forward(x_host, **window)[0], rtol=0, atol=0),
            Case("max_pool2d fwd+bwd", device, name, both, nbytes=2 * x_bytes + 4 * y_bytes,
                 expected=ref_forward_backward, rtol=0, atol=0),
            Case("copy of x", device, name, copy, nbytes=2 * x_bytes)]


def _torch_impls(torch, device, x, gy, window):
    as_torch = torch.from_numpy if device == "cpu" else torch.as_tensor
    xt, gyt = as_torch(x), as_torch(gy)
    xg = xt.clone().requires_grad_(True)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.max_pool2d(xt, **window)

    def forward_backward():
        return torch.autograd.grad(torch.nn.functional.max_pool2d(xg, **window), xg, gyt)[0]

    return Impl("torch", forward, sync), Impl("torch", forward_backward, sync)
