"""MaxPool2d, AvgPool2d and ZeroPad2d with PyTorch's arguments and reprs."""
from nnlite import functional as F
from nnlite.nn.module import Module


class MaxPool2d(Module):
    """Max pooling; ceil_mode=True never starts a window in the trailing padding
    (PyTorch's rule). Ties go to the first maximum in row-major window order."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        if dilation != 1 or return_indices:  # fail where the layer is built
            raise ValueError(f"MaxPool2d: dilation={dilation!r} and return_indices="
                             f"{return_indices!r} are not supported; only 1 and False")

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                            ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling with PyTorch's divisor rule (count_include_pad)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        if divisor_override is not None:
            raise ValueError("AvgPool2d: divisor_override is not supported")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = None

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ZeroPad2d(Module):
    """Pads the last two dims with zeros; padding is an int or (left, right, top,
    bottom), as PyTorch. ZeroPad2d((0, 1, 0, 0)) is the seed's CustomZeroPadding2D."""

    def __init__(self, padding):
        super().__init__()
        if isinstance(padding, int) and not isinstance(padding, bool):
            padding = (padding,) * 4
        padding = tuple(padding)
        if len(padding) != 4 or any(isinstance(p, bool) or not isinstance(p, int)
                                    for p in padding):
            raise ValueError(f"ZeroPad2d: padding must be an int or (left, right, top, bottom) "
                             f"ints, got {padding!r}")
        if min(padding) < 0:
            raise ValueError(f"ZeroPad2d: negative padding {padding} is not supported")
        self.padding = padding

    def forward(self, x):
        return F.pad(x, self.padding, value=0.0)

    def extra_repr(self):
        return f"{self.padding}"
