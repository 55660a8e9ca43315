"""One kernel facade, two implementations.

A Function never branches on the device: it calls ``for_array(x)`` and gets a
backend module, ``nnlite.kernels.host`` (NumPy arrays, the pybind11 build
``nnlite._C``) or ``nnlite.kernels.cuda`` (CuPy arrays, csrc/cuda compiled by
NVRTC). Both expose the same functions with the same signatures::

    softmax_forward(x, log=False) -> y        # x: (rows, cols) float32/float64
    softmax_backward(y, gy, log=False) -> gx  # y: the forward output
    im2col(x, kernel_size, stride, padding, dilation) -> cols
        # x (N, C, H, W) -> (C*kh*kw, N*out_h*out_w); padding (top, bottom, left, right)
    col2im(cols, x_shape, kernel_size, stride, padding, dilation) -> x   # the adjoint, gathered
    maxpool_forward(x, kernel_size, stride, padding, ceil_mode) -> (y, argmax int32)
    maxpool_backward(gy, argmax, x_shape, kernel_size, stride, padding, ceil_mode) -> gx
    avgpool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad) -> y
    avgpool_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode,
                     count_include_pad) -> gx
    # sizes of conv and pool windows: nnlite.kernels.shapes.output_size (one rule)

Argument checks common to both live in ``nnlite.kernels._checks``.
"""
import numpy

from nnlite.device import is_device_array


def for_array(x):
    """The backend module for an array: host for numpy.ndarray, cuda for cupy.ndarray."""
    if isinstance(x, numpy.ndarray):
        from nnlite.kernels import host
        return host
    if is_device_array(x):
        from nnlite.kernels import cuda
        return cuda
    kind = type(x)
    raise TypeError(f"kernels.for_array: expected a numpy.ndarray or cupy.ndarray; "
                    f"got {kind.__module__}.{kind.__qualname__}")
