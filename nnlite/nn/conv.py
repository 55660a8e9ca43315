"""Conv2d with PyTorch's arguments, parameter names and weight layout
(out_channels, in_channels, kh, kw)."""
import math

import numpy as np

from nnlite import backends
from nnlite import functional as F
from nnlite.functional import conv_winograd
from nnlite.functional.conv import conv_padding
from nnlite.kernels.shapes import int_pair
from nnlite.nn import init
from nnlite.nn.linear import empty_parameter
from nnlite.nn.module import Module

CONV_INITS = ("glorot", "xavier", "torch", "he")


class Conv2d(Module):
    """2-D convolution of (N, in_channels, H, W) inputs.

    padding: an int, (ph, pw), (top, bottom, left, right), "valid" or "same"
    (stride 1; an even kernel pads one more at the bottom/right).

    ``init="glorot"`` (the default; "xavier" is an alias) is Keras's
    Glorot-uniform weight and zero bias, which the seed networks were trained
    with; ``init="torch"`` is PyTorch's default (kaiming_uniform with a=sqrt(5),
    bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))); ``init="he"`` is He et al.'s
    (Keras's "he_uniform", PyTorch's kaiming_uniform_(nonlinearity="relu"):
    U(-sqrt(6/fan_in), sqrt(6/fan_in)) and zero bias), which keeps the
    second moment of a ReLU stack's activations from layer to layer.

    ``algorithm``: None (``nnlite.backends.conv_algorithm`` decides at each
    call, "auto" by default), or "auto", "im2col", "direct", "winograd" for
    this layer alone; "winograd" needs a 3x3 kernel, stride 1 and dilation 1
    (checked here); "direct" runs any layer but one whose dilation or stride
    is so large that its host loops' zero-extended planes pass their bound
    (checked at the call, where the input size is known).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, device=None, dtype=None, init="glorot",
                 algorithm=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {value!r}")
        if init not in CONV_INITS:
            raise ValueError(f"Conv2d: init={init!r} is not one of {CONV_INITS}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int_pair("Conv2d", "kernel_size", kernel_size)
        self.stride = int_pair("Conv2d", "stride", stride)
        self.dilation = int_pair("Conv2d", "dilation", dilation)
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) <= 0:
                raise ValueError(f"Conv2d: {name} must be positive, got {getattr(self, name)}")
        # Validated now (e.g. "same" with stride 2) so a bad layer fails where it is built.
        conv_padding(padding, self.kernel_size, self.stride, self.dilation, op="Conv2d")
        if isinstance(padding, str):
            self.padding = padding
        elif isinstance(padding, (tuple, list)) and len(padding) == 4:
            self.padding = tuple(int(p) for p in padding)
        else:
            self.padding = int_pair("Conv2d", "padding", padding)
        if algorithm is not None:
            backends.check_conv_algorithm(algorithm, "Conv2d: algorithm")
            if algorithm == "winograd" and not conv_winograd.supports(
                    self.kernel_size, self.stride, self.dilation):
                raise ValueError(
                    f"Conv2d({in_channels}, {out_channels}, kernel_size={self.kernel_size}, "
                    f"stride={self.stride}, dilation={self.dilation}): algorithm='winograd' "
                    f"computes 3x3 convolutions with stride 1 and dilation 1 only; use "
                    f"'im2col' or 'auto'")
        self.algorithm = algorithm
        self.init = init
        self.weight = empty_parameter((out_channels, in_channels) + self.kernel_size, device,
                                      dtype)
        if bias:
            self.bias = empty_parameter((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.init == "torch":
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            if self.bias is not None:
                fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)
        elif self.init == "he":
            init.kaiming_uniform_(self.weight, nonlinearity="relu")
            if self.bias is not None:
                init.zeros_(self.bias)
        else:
            init.xavier_uniform_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        algorithm=self.algorithm)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding not in ((0, 0), (0, 0, 0, 0)):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        if self.algorithm is not None:
            text += f", algorithm={self.algorithm!r}"
        return text
