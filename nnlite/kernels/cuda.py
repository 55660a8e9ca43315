"""GPU backend: csrc/cuda/<family>.cu compiled by NVRTC (through CuPy) at first
use, behind the same signatures as nnlite.kernels.host.

CuPy is imported only when a kernel is first called, never at import time.
"""
import re
import threading
import warnings
from pathlib import Path

import numpy as np

from nnlite.kernels import _checks

NVRTC_OPTIONS = ("-std=c++03",)
# Same numbers as NNL_MAX_THREADS_PER_BLOCK / NNL_MAX_SHARED_BYTES in
# csrc/nnlite/portable.cuh (the TK1 limits); a test keeps them in step.
MAX_THREADS_PER_BLOCK = 1024
MAX_SHARED_BYTES = 48 * 1024
MIN_THREADS_PER_BLOCK = 32  # one warp: fewer threads would leave lanes idle anyway

# The extern "C" entry points of each family. compile_check() resolves them all,
# so a renamed kernel fails in `nnlite info`, not in the middle of training.
ENTRY_POINTS = {
    "softmax": ("softmax_forward_f32", "softmax_forward_f64",
                "softmax_backward_f32", "softmax_backward_f64"),
    "rnn": tuple(f"{op}_{suffix}" for op in (
        "lstm_cell_forward", "lstm_cell_backward", "gru_reset_gate_forward", "gru_cell_forward",
        "gru_cell_backward", "gru_reset_gate_backward") for suffix in ("f32", "f64")),
    "ctc": ("ctc_alpha_f32", "ctc_alpha_f64", "ctc_beta_f32", "ctc_beta_f64",
            "ctc_grad_f32", "ctc_grad_f64"),
    "conv": ("im2col_f32", "im2col_f64", "col2im_f32", "col2im_f64"),
    "pool": tuple(f"{op}_{suffix}" for op in (
        "maxpool_forward", "maxpool_backward", "avgpool_forward", "avgpool_backward")
        for suffix in ("f32", "f64")),
}
ROWS_COLS = ("rows", "cols")

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"')
_lock = threading.Lock()
_functions = {}  # (family, device id) -> {entry point name: cupy.RawKernel}


def csrc_dir():
    """The kernel sources: <repo>/csrc, next to the nnlite package of a checkout
    or an editable install."""
    root = Path(__file__).resolve().parents[2] / "csrc"
    if not (root / "cuda").is_dir():
        raise FileNotFoundError(
            f"nnlite.kernels.cuda: kernel sources not found at {root}; the GPU backend "
            f"compiles csrc/cuda/*.cu at run time, so nnlite must be installed from a source "
            f"checkout with `pip install -e .`")
    return root


def load_source(relpath, root=None):
    """csrc/<relpath> with its quoted #includes inlined, recursively and once each.

    NVRTC gets one self-contained string, and because CuPy keys its on-disk
    kernel cache on that string, editing any header recompiles the kernel.
    #line directives keep compiler messages pointing at the real files.
    """
    out = []
    _inline(Path(root) if root is not None else csrc_dir(), relpath, None, set(), out)
    return "".join(out)


def _inline(root, relpath, includer, seen, out):
    if relpath in seen:
        return
    seen.add(relpath)
    path = root / relpath
    if not path.is_file():
        where = f" (included from {includer})" if includer else ""
        raise FileNotFoundError(f"nnlite.kernels.cuda: {relpath}{where} not found under {root}")
    out.append(f'#line 1 "{relpath}"\n')
    for lineno, line in enumerate(path.read_text().splitlines(keepends=True), start=1):
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line if line.endswith("\n") else line + "\n")
            continue
        _inline(root, match.group(1), relpath, seen, out)
        out.append(f'#line {lineno + 1} "{relpath}"\n')


def _cupy():
    from nnlite import cuda
    return cuda.ensure_initialized()


def _compile(cupy, family):
    source = load_source(f"cuda/{family}.cu")
    with warnings.catch_warnings():
        # CuPy warns that its bundled CCCL headers need C++11; we include none.
        warnings.filterwarnings("ignore", message=".*CCCL requires")
        try:
            module = cupy.RawModule(code=source, options=NVRTC_OPTIONS)
            # get_function triggers the (lazy) compilation, inside the filter.
            return {name: module.get_function(name) for name in ENTRY_POINTS[family]}
        except Exception as exc:
            raise RuntimeError(f"nnlite.kernels.cuda: compiling csrc/cuda/{family}.cu with "
                               f"NVRTC {' '.join(NVRTC_OPTIONS)} failed:\n{exc}") from exc


def _function(family, name):
    cupy = _cupy()
    key = (family, cupy.cuda.runtime.getDevice())
    functions = _functions.get(key)
    if functions is None:
        with _lock:
            functions = _functions.get(key)
            if functions is None:
                functions = _functions[key] = _compile(cupy, family)
    return functions[name]


def compile_check():
    """{family: None if csrc/cuda/<family>.cu compiles and links here, else the error}."""
    results = {}
    for family in ENTRY_POINTS:
        try:
            _function(family, ENTRY_POINTS[family][0])
            results[family] = None
        except Exception as exc:  # reported, not raised: this feeds `nnlite info`
            results[family] = f"{type(exc).__name__}: {exc}"
    return results


def row_launch_config(cols, itemsize):
    """(threads per block, dynamic shared bytes) for a one-block-per-row kernel:
    a power of two (block_reduce needs one) covering cols, within TK1 limits."""
    threads = MIN_THREADS_PER_BLOCK
    while threads < cols and threads < MAX_THREADS_PER_BLOCK:
        threads *= 2
    return threads, threads * itemsize


def _launch_rows(family, op, like, args):
    rows, cols = like.shape
    threads, shared = row_launch_config(cols, like.itemsize)
    kernel = _function(family, f"{op}_{_checks.dtype_suffix(like.dtype)}")
    kernel((rows,), (threads,), args, shared_mem=shared)


def softmax_forward(x, log=False):
    """Row-wise softmax (log=False) or log-softmax (log=True) of x (rows, cols)."""
    cupy = _cupy()
    (x,) = _checks.float_arrays("softmax_forward", cupy, ROWS_COLS, x=x)
    y = cupy.empty_like(x)
    if x.size:
        _launch_rows("softmax", "softmax_forward", x,
                     (x, y, np.int32(x.shape[1]), np.int32(bool(log))))
    return y


def softmax_backward(y, gy, log=False):
    """Gradient w.r.t. the softmax input, from the forward output y and its gradient gy."""
    cupy = _cupy()
    y, gy = _checks.float_arrays("softmax_backward", cupy, ROWS_COLS, y=y, gy=gy)
    gx = cupy.empty_like(y)
    if y.size:
        _launch_rows("softmax", "softmax_backward", y,
                     (y, gy, gx, np.int32(y.shape[1]), np.int32(bool(log))))
    return gx


# The recurrent step kernels live in their own module (same signatures on host).
from nnlite.kernels.cuda_rnn import (gru_cell_backward, gru_cell_forward,  # noqa: E402,F401
                                     gru_reset_gate_backward, gru_reset_gate_forward,
                                     lstm_cell_backward, lstm_cell_forward)
# The CTC kernels live in their own module (same signatures on host).
from nnlite.kernels.cuda_ctc import ctc_alpha, ctc_backward  # noqa: E402,F401
# The convolution and pooling kernels live in their own module (same signatures on host).
from nnlite.kernels.cuda_conv import (avgpool_backward, avgpool_forward,  # noqa: E402,F401
                                      col2im, im2col, maxpool_backward, maxpool_forward)
