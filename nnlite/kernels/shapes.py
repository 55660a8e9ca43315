"""The one shape rule of convolution and pooling, and the geometry built from it
once per call and handed down to the kernels.

Along one spatial axis a window of `kernel` taps spaced `dilation` apart
covers ``extent = dilation * (kernel - 1) + 1`` positions and starts every
`stride` positions over the input padded by `pad_before` / `pad_after`:

    floor mode:  out = (size + pad_before + pad_after - extent) // stride + 1
    ceil mode:   out = ceil((size + pad_before + pad_after - extent) / stride) + 1,
                 minus one if the last window would start at or beyond
                 size + pad_before, i.e. entirely in the trailing padding.

The ceil-mode correction is PyTorch's; Caffe's formula lacks it and can emit
an empty window (e.g. size 3, kernel 2, stride 2, padding 1: Caffe 3, here 2).
In ceil mode a window may reach past the padded input (it is clipped), so a
kernel larger than the padded input is legal as long as one window starts
inside it, as in PyTorch; floor mode needs the whole window inside.

`ConvGeometry` and `PoolGeometry` are that rule applied to one input size:
nnlite.functional builds one per call, the kernel modules check their arrays
against it and pass its integers to the entry points, which check them again
(nnlite._C is importable and trusts no caller).
"""
from collections import namedtuple


def _positive_int(op, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return value


def _non_negative_int(op, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{op}: {name} must be a non-negative int, got {value!r}")
    return value


def output_size(size, kernel, stride=1, pad_before=0, pad_after=0, dilation=1,
                ceil_mode=False, op="output_size"):
    """Number of window positions along one axis (see the module docstring).

    Raises ValueError naming `op` when no window fits.
    """
    _non_negative_int(op, "input size", size)
    _positive_int(op, "kernel size", kernel)
    _positive_int(op, "stride", stride)
    _positive_int(op, "dilation", dilation)
    _non_negative_int(op, "padding", pad_before)
    _non_negative_int(op, "padding", pad_after)
    extent = dilation * (kernel - 1) + 1
    padded = size + pad_before + pad_after
    span = padded - extent
    if not ceil_mode:
        out = span // stride + 1
    else:
        out = -(-span // stride) + 1
        if out > 0 and (out - 1) * stride >= size + pad_before:
            out -= 1
    if out <= 0:
        raise ValueError(f"{op}: kernel of size {kernel} (dilation {dilation}, extent "
                         f"{extent}) is larger than the padded input of size {padded} "
                         f"({size} + padding {pad_before} + {pad_after})"
                         f"{'' if ceil_mode else ' and ceil_mode is off'}")
    return out


def same_padding(kernel, dilation=1):
    """(before, after) padding that keeps a stride-1 output the input's size.

    The total dilation * (kernel - 1) is split with the odd one after (bottom /
    right), as TensorFlow and PyTorch do for even kernels.
    """
    total = dilation * (kernel - 1)
    before = total // 2
    return before, total - before


def int_pair(op, name, value):
    """An int or a pair of ints -> a tuple of two Python ints (values unchecked)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(isinstance(v, bool) or not hasattr(v, "__index__") for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v.__index__()) for v in pair)


def _spatial(op, input_hw):
    try:
        height, width = (int(s) for s in input_hw)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: the input's spatial size must be (H, W), got "
                         f"{input_hw!r}") from None
    return height, width


class ConvGeometry(namedtuple("ConvGeometry",
                              "height width kernel stride padding dilation out_h out_w")):
    """Where the windows of a convolution (and its im2col) sit over an input of
    spatial size (height, width). kernel, stride and dilation are (h, w) pairs;
    padding is (top, bottom, left, right)."""

    @classmethod
    def of(cls, input_hw, kernel_size, stride=1, padding=0, dilation=1, op="conv2d"):
        """The validated geometry; padding is an int, (ph, pw) or (top, bottom, left, right)."""
        height, width = _spatial(op, input_hw)
        kernel = int_pair(op, "kernel_size", kernel_size)
        stride = int_pair(op, "stride", stride)
        dilation = int_pair(op, "dilation", dilation)
        try:
            padding = tuple(int(v.__index__()) for v in padding)
        except TypeError:  # an int
            padding = int_pair(op, "padding", padding)
        except AttributeError:
            padding = ()
        if len(padding) == 2:
            padding = (padding[0], padding[0], padding[1], padding[1])
        if len(padding) != 4:
            raise ValueError(f"{op}: padding must be an int, (ph, pw) or (top, bottom, left, "
                             f"right), got {padding!r}")
        top, bottom, left, right = padding
        out_h = output_size(height, kernel[0], stride[0], top, bottom, dilation[0], op=op)
        out_w = output_size(width, kernel[1], stride[1], left, right, dilation[1], op=op)
        return cls(height, width, kernel, stride, padding, dilation, out_h, out_w)

    @property
    def columns_rows_per_channel(self):
        """Rows of the column matrix per input channel: kh * kw."""
        return self.kernel[0] * self.kernel[1]

    def entry_args(self):
        """The geometry integers of the im2col / col2im entry points, in their order."""
        return (self.height, self.width, self.kernel[0], self.kernel[1], self.stride[0],
                self.stride[1], self.padding[0], self.padding[2], self.dilation[0],
                self.dilation[1], self.out_h, self.out_w)


class PoolGeometry(namedtuple("PoolGeometry",
                              "height width kernel stride padding ceil_mode out_h out_w")):
    """Where the windows of a pooling sit over an input of spatial size
    (height, width). kernel, stride and padding are (h, w) pairs; padding is
    applied on both sides."""

    @classmethod
    def of(cls, input_hw, kernel_size, stride=None, padding=0, ceil_mode=False,
           op="pool2d"):
        """The validated geometry; stride None (or []) means the kernel size, as PyTorch."""
        height, width = _spatial(op, input_hw)
        kernel = int_pair(op, "kernel_size", kernel_size)
        if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
            stride = kernel
        else:
            stride = int_pair(op, "stride", stride)
        padding = int_pair(op, "padding", padding)
        ceil_mode = bool(ceil_mode)
        out_h = output_size(height, kernel[0], stride[0], padding[0], padding[0],
                            ceil_mode=ceil_mode, op=op)
        out_w = output_size(width, kernel[1], stride[1], padding[1], padding[1],
                            ceil_mode=ceil_mode, op=op)
        return cls(height, width, kernel, stride, padding, ceil_mode, out_h, out_w)

    def entry_args(self):
        """The geometry integers of the pool entry points, in their order."""
        return (self.height, self.width, self.kernel[0], self.kernel[1], self.stride[0],
                self.stride[1], self.padding[0], self.padding[1], self.out_h, self.out_w)
