"""Layers, containers and losses with PyTorch's names (``nl.nn.Linear`` ...).

``state_dict`` keys and weight layouts follow PyTorch, so weights move
between the libraries as plain arrays.
"""
from nnlite.nn import init, utils
from nnlite.nn.activation import LogSoftmax, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from nnlite.nn.compressed import LowRankLinear, QuantizedLinear
from nnlite.nn.container import ModuleDict, ModuleList, Sequential
from nnlite.nn.conv import Conv2d
from nnlite.nn.ctc import CTCLoss
from nnlite.nn.dropout import Dropout
from nnlite.nn.linear import Flatten, Identity, Linear
from nnlite.nn.meta import materialize, meta
from nnlite.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from nnlite.nn.module import Module
from nnlite.nn.nalu import NAC, NALU
from nnlite.nn.normalization import BatchNorm1d, BatchNorm2d
from nnlite.nn.parameter import Parameter
from nnlite.nn.pooling import AvgPool2d, MaxPool2d, ZeroPad2d
from nnlite.nn.rnn import GRU, LSTM, GRUCell, LSTMCell
from nnlite.nn.state import IncompatibleKeys, StateDictError

__all__ = [
    "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "CTCLoss", "Conv2d",
    "CrossEntropyLoss", "Dropout", "Flatten", "GRU", "GRUCell", "Identity", "IncompatibleKeys",
    "LSTM", "LSTMCell", "Linear", "LogSoftmax", "LowRankLinear", "QuantizedLinear", "MSELoss", "MaxPool2d", "Module", "ModuleDict",
    "ModuleList", "NLLLoss", "Parameter", "ReLU", "ReLU6", "Sequential", "Sigmoid", "Softmax",
    "StateDictError", "Tanh", "ZeroPad2d", "init", "materialize", "meta", "utils",
    "NAC", "NALU",
]
