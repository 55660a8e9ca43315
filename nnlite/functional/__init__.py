"""Differentiable ops (``import nnlite.functional as F``), PyTorch's spelling.

Each op is a ``Function`` subclass over raw arrays, grouped by module; this
package re-exports the user-facing functions and binds the Tensor methods and
operators (``+``, ``@``, ``.sum()`` ...) to them.
"""
from nnlite.functional.activation import (dropout, log_softmax, relu, relu6, sigmoid,
                                          softmax, tanh)
from nnlite.functional.arithmetic import (abs, add, clamp, clip, div, exp, log, matmul, mul,
                                          neg, pow, sqrt, sub)
from nnlite.functional.linear import linear
from nnlite.functional.loss import (binary_cross_entropy_with_logits, cross_entropy,
                                    mse_loss, nll_loss)
from nnlite.functional.normalization import batch_norm
from nnlite.functional.reduction import max, mean, min, sum
from nnlite.functional.shape import (cat, concatenate, expand, flatten, getitem, permute,
                                     reshape, squeeze, stack, transpose, unsqueeze, view,
                                     where)
from nnlite.functional import tensor_methods as _tensor_methods

_tensor_methods.install()

__all__ = [
    "abs", "add", "batch_norm", "binary_cross_entropy_with_logits", "cat", "clamp", "clip",
    "concatenate", "cross_entropy", "div", "dropout", "exp", "expand", "flatten", "getitem",
    "linear", "log", "log_softmax", "matmul", "max", "mean", "min", "mse_loss", "mul", "neg",
    "nll_loss", "permute", "pow", "relu", "relu6", "reshape", "sigmoid", "softmax", "sqrt",
    "squeeze", "stack", "sub", "sum", "tanh", "transpose", "unsqueeze", "view", "where",
]

from nnlite.functional.conv import conv2d, get_conv_workspace, set_conv_workspace  # noqa: E402
from nnlite.functional.padding import pad  # noqa: E402
from nnlite.functional.pooling import avg_pool2d, max_pool2d  # noqa: E402

__all__ += ["avg_pool2d", "conv2d", "get_conv_workspace", "max_pool2d", "pad",
            "set_conv_workspace"]
