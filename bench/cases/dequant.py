"""Dequantisation of stored weights into a float32 workspace chunk, at the
chunks a compressed DictNet uses (16 MiB workspace, nnlite.nn.compressed):
int8 with a per-row scale and float16, against NumPy's casts."""
import numpy as np

from bench.harness import Case, Impl, device_sync, register
from nnlite.device import to_numpy
from nnlite.kernels import dequant as dequant_kernels

WORKSPACE_BYTES = 16 * 2**20
# (label, in_features): DictNet's fc1 (26624 inputs) and classifier (4096 inputs).
LAYERS = (("dictnet fc1", 26624), ("dictnet classifier", 4096))


@register
def dequant_cases(device, xp):
    cases = []
    for label, cols in LAYERS:
        rows = WORKSPACE_BYTES // (4 * cols)
        cases += _cases(device, xp, f"{label} chunk {rows}x{cols}", rows, cols)
    return cases


def _cases(device, xp, shape, rows, cols):
    rng = np.random.default_rng(0)
    q_host = rng.integers(-127, 128, size=(rows, cols)).astype(np.int8)
    scale_host = rng.uniform(1e-3, 1e-2, size=rows).astype(np.float32)
    half_host = (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16)
    q, scale, half = xp.asarray(q_host), xp.asarray(scale_host), xp.asarray(half_host)
    workspace = xp.empty((rows, cols), np.float32)
    sync = device_sync(device)
    ref = "numpy-ref" if device == "cpu" else "cupy-ref"
    int8 = [Impl("nnlite", lambda: dequant_kernels.dequant_int8(q, scale, w=workspace), sync),
            Impl(ref, lambda: xp.multiply(q, scale[:, None], out=workspace), sync)]
    binary16 = [Impl("nnlite", lambda: dequant_kernels.dequant_binary16(half, w=workspace),
                     sync),
                Impl(ref, lambda: xp.copyto(workspace, half) or workspace, sync)]
    # Ideal traffic: read the stored weights (and scales), write float32.
    elements = rows * cols
    return [Case("dequant int8", device, shape, int8, nbytes=elements * 5 + rows * 4,
                 expected=lambda: q_host.astype(np.float64) * scale_host[:, None].astype(
                     np.float64), rtol=1e-6, atol=0),
            Case("dequant float16", device, shape, binary16, nbytes=elements * 6,
                 expected=lambda: to_numpy(half).astype(np.float64), rtol=0, atol=0)]
