"""nnlite: a small define-by-run deep-learning library for text recognition
on small GPUs. PyTorch's spelling, NCHW, float32 compute; CPU kernels through
``nnlite._C`` and GPU kernels through CuPy/NVRTC from the same C source.

    import nnlite as nl
    import nnlite.functional as F
    x = nl.tensor([[1.0, 2.0]], requires_grad=True)
    F.log_softmax(x, dim=1).sum().backward()
"""
import numpy as np

from nnlite._version import __version__
from nnlite.errors import (AnomalyError, DeviceMismatchError, GradcheckError, InvalidNameError,
                           OutOfMemoryError)
from nnlite.tensor import (Function, Tensor, as_tensor, enable_grad, is_anomaly_enabled,
                           is_grad_enabled, no_grad, set_detect_anomaly, tensor)
from nnlite import functional
from nnlite.functional import cat, concatenate, stack, where
from nnlite.creation import arange, full, ones, ones_like, rand, randn, zeros, zeros_like
from nnlite.gradcheck import gradcheck
from nnlite.random import manual_seed
from nnlite import cuda, decode, metrics, nn, optim
from nnlite import io
from nnlite.model_summary import summary
from nnlite import threads as _threads
from nnlite.threads import get_num_threads, set_num_threads

_threads.apply_default()

float32 = np.float32
float64 = np.float64
int64 = np.int64
int32 = np.int32
bool_ = np.bool_

__all__ = [
    "AnomalyError", "DeviceMismatchError", "Function", "GradcheckError", "InvalidNameError",
    "OutOfMemoryError",
    "Tensor", "__version__", "arange", "as_tensor", "cat", "concatenate", "cuda", "decode",
    "enable_grad", "float32", "float64", "full", "functional", "gradcheck", "int32", "int64",
    "is_anomaly_enabled", "is_grad_enabled", "manual_seed", "metrics", "nn", "no_grad", "ones",
    "ones_like", "optim", "rand", "randn", "set_detect_anomaly", "stack", "tensor", "where",
    "zeros", "zeros_like",
    "io", "summary", "get_num_threads", "set_num_threads",
]
