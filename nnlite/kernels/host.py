"""CPU backend: the host build of csrc/ (nnlite._C) behind the facade's signatures."""
import importlib

import numpy as np

from nnlite.kernels import _checks

ROWS_COLS = ("rows", "cols")


def _lib():
    try:
        return importlib.import_module("nnlite._C")
    except ImportError as exc:
        raise ImportError(f"nnlite.kernels.host: the compiled host kernels nnlite._C are "
                          f"missing or failed to load ({exc}); rebuild them by reinstalling "
                          f"from the repository root with `pip install -e .`") from exc


def _entry(op, dtype):
    return getattr(_lib(), f"{op}_{_checks.dtype_suffix(dtype)}")


def softmax_forward(x, log=False):
    """Row-wise softmax (log=False) or log-softmax (log=True) of x (rows, cols)."""
    (x,) = _checks.float_arrays("softmax_forward", np, ROWS_COLS, x=x)
    y = np.empty_like(x)
    if x.size:
        _entry("softmax_forward", x.dtype)(x, y, int(bool(log)))
    return y


def softmax_backward(y, gy, log=False):
    """Gradient w.r.t. the softmax input, from the forward output y and its gradient gy."""
    y, gy = _checks.float_arrays("softmax_backward", np, ROWS_COLS, y=y, gy=gy)
    gx = np.empty_like(y)
    if y.size:
        _entry("softmax_backward", y.dtype)(y, gy, gx, int(bool(log)))
    return gx


# The recurrent step kernels live in their own module (same signatures on GPU).
from nnlite.kernels.host_rnn import (gru_cell_backward, gru_cell_forward,  # noqa: E402,F401
                                     gru_reset_gate_backward, gru_reset_gate_forward,
                                     lstm_cell_backward, lstm_cell_forward)
# The CTC kernels live in their own module (same signatures on GPU).
from nnlite.kernels.host_ctc import ctc_alpha, ctc_backward  # noqa: E402,F401
# The convolution and pooling kernels live in their own modules (same signatures on GPU).
from nnlite.kernels.host_conv import col2im, im2col  # noqa: E402,F401
from nnlite.kernels.host_pool import (avgpool_backward, avgpool_forward,  # noqa: E402,F401
                                      maxpool_backward, maxpool_forward)

from nnlite.kernels._openmp import load_host_library_with_passive_openmp  # noqa: E402

load_host_library_with_passive_openmp()
