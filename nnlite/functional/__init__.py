"""Differentiable ops (``import nnlite.functional as F``), PyTorch's spelling.

Each op is a ``Function`` subclass over raw arrays, grouped by module; this
package re-exports the user-facing functions and binds the Tensor methods and
operators (``+``, ``@``, ``.sum()`` ...) to them.
"""
from nnlite.functional.activation import (dropout, log_softmax, relu, relu6, sigmoid,
                                          softmax, tanh)
from nnlite.functional.arithmetic import (abs, add, clamp, clip, div, exp, log, matmul, mul,
                                          neg, pow, sqrt, sub)
from nnlite.functional.conv import conv2d, get_conv_workspace, set_conv_workspace
from nnlite.functional.ctc import ctc_loss
from nnlite.functional.linear import linear
from nnlite.functional.loss import (binary_cross_entropy_with_logits, cross_entropy,
                                    mse_loss, nll_loss)
from nnlite.functional.normalization import batch_norm
from nnlite.functional.padding import pad
from nnlite.functional.pooling import avg_pool2d, max_pool2d
from nnlite.functional.quantized import (get_dequant_workspace, quantized_linear,
                                         set_dequant_workspace)
from nnlite.functional.reduction import max, mean, min, sum
from nnlite.functional.rnn import gru_cell, gru_layer, lstm_cell, lstm_layer
from nnlite.functional.shape import (cat, concatenate, expand, flatten, getitem, permute,
                                     reshape, squeeze, stack, transpose, unsqueeze, view,
                                     where)
from nnlite.functional import tensor_methods as _tensor_methods

_tensor_methods.install()

__all__ = [
    "abs", "add", "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits", "cat",
    "clamp", "clip", "concatenate", "conv2d", "cross_entropy", "ctc_loss", "div", "dropout",
    "exp", "expand", "flatten", "get_conv_workspace", "get_dequant_workspace", "getitem", "gru_cell", "gru_layer",
    "linear", "log", "log_softmax", "lstm_cell", "lstm_layer", "matmul", "max", "max_pool2d",
    "mean", "min", "mse_loss", "mul", "neg", "nll_loss", "pad", "permute", "pow",
    "quantized_linear", "relu", "relu6", "reshape", "set_conv_workspace",
    "set_dequant_workspace", "sigmoid", "softmax", "sqrt", "squeeze",
    "stack", "sub", "sum", "tanh", "transpose", "unsqueeze", "view", "where",
]
