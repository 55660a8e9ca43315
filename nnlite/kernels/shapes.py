"""The one shape rule of convolution and pooling, shared by the kernels, the
functional ops, the modules, the NumPy references and the tests.

Along one spatial axis a window of `kernel` taps spaced `dilation` apart
covers ``extent = dilation * (kernel - 1) + 1`` positions and starts every
`stride` positions over the input padded by `pad_before` / `pad_after`:

    floor mode:  out = (size + pad_before + pad_after - extent) // stride + 1
    ceil mode:   out = ceil((size + pad_before + pad_after - extent) / stride) + 1,
                 minus one if the last window would start at or beyond
                 size + pad_before, i.e. entirely in the trailing padding.

The ceil-mode correction is PyTorch's; Caffe's formula lacks it and can emit
an empty window (e.g. size 3, kernel 2, stride 2, padding 1: Caffe 3, here 2).
"""


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

    Raises ValueError naming `op` when the window does not fit the padded input.
    """
    _non_negative_int(op, "input size", size)
    _positive_int(op, "kernel size", kernel)
    _positive_int(op, "stride", stride)
    _positive_int(op, "dilation", dilation)
    _non_negative_int(op, "padding", pad_before)
    _non_negative_int(op, "padding", pad_after)
    extent = dilation * (kernel - 1) + 1
    padded = size + pad_before + pad_after
    if extent > padded:
        raise ValueError(f"{op}: kernel of size {kernel} (dilation {dilation}, extent "
                         f"{extent}) is larger than the padded input of size {padded} "
                         f"({size} + padding {pad_before} + {pad_after})")
    span = padded - extent
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def same_padding(kernel, dilation=1):
    """(before, after) padding that keeps a stride-1 output the input's size.

    The total dilation * (kernel - 1) is split with the odd one after (bottom /
    right), as TensorFlow and PyTorch do for even kernels.
    """
    total = dilation * (kernel - 1)
    before = total // 2
    return before, total - before
