"""ReLU, forward and forward+backward, float32, at the seed networks' largest
activations: the digit-sequence model's conv1 output and the CRNN's."""
import warnings

import numpy as np

from bench.harness import Case, Impl, device_sync, register, torch_or_none
from nnlite.kernels import activation as activation_kernels
from nnlite.reference import activation as reference

SHAPES = {"digits conv1": (50, 8, 128, 256), "crnn conv1": (32, 64, 32, 128)}


@register
def activation_cases(device, xp):
    cases = []
    for label, shape in SHAPES.items():
        cases += _cases(device, xp, f"{label} {'x'.join(map(str, shape))} float32", shape)
    return cases


def _cases(device, xp, label, shape):
    # One function call per shape: the lambdas below close over its locals.
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal(shape, dtype=np.float32)
    gy_host = rng.standard_normal(shape, dtype=np.float32)
    x, gy = xp.asarray(x_host), xp.asarray(gy_host)
    sync = device_sync(device)
    ref = "numpy-ref" if device == "cpu" else "cupy-ref"
    fwd = [Impl("nnlite", lambda: activation_kernels.relu_forward(x), sync),
           Impl(ref, lambda: reference.relu_forward(x), sync)]
    both = [Impl("nnlite", lambda: activation_kernels.relu_backward(
                gy, activation_kernels.relu_forward(x)[1]), sync),
            Impl(ref, lambda: reference.relu_backward(gy, reference.relu_forward(x)[1]), sync)]
    torch = torch_or_none()
    if torch is not None:
        fwd_torch, both_torch = _torch_impls(torch, device, x, gy)
        fwd.append(fwd_torch)
        both.append(both_torch)

    def expected_forward():
        return reference.relu_forward(x_host)[0]

    def expected_backward():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return reference.relu_backward(gy_host, reference.relu_forward(x_host)[1])

    elements = x_host.size
    # Ideal traffic: forward reads x, writes y and a one-byte mask; backward
    # reads gy and the mask, writes gx.
    return [Case("relu fwd", device, label, fwd, nbytes=9 * elements,
                 expected=expected_forward, rtol=0, atol=0),
            Case("relu fwd+bwd", device, label, both, nbytes=18 * elements,
                 expected=expected_backward, rtol=0, atol=0)]


def _torch_impls(torch, device, x, gy):
    as_torch = torch.from_numpy if device == "cpu" else torch.as_tensor
    xt, gyt = as_torch(x), as_torch(gy)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            return torch.relu(xt)

    def forward_backward():
        # What autograd runs for relu: the forward, then threshold_backward on its result.
        with torch.no_grad():
            return torch.ops.aten.threshold_backward(gyt, torch.relu(xt), 0)

    return Impl("torch", forward, sync), Impl("torch", forward_backward, sync)
