"""One kernel facade, two implementations.

A Function never branches on the device: it calls ``for_array(x)`` and gets a
backend module, ``nnlite.kernels.host`` (NumPy arrays, the pybind11 build
``nnlite._C``) or ``nnlite.kernels.cuda`` (CuPy arrays, csrc/cuda compiled by
NVRTC). Both expose the same functions with the same signatures::

    softmax_forward(x, log=False) -> y        # x: (rows, cols) float32/float64
    softmax_backward(y, gy, log=False) -> gx  # y: the forward output
    ctc_alpha(log_probs, targets, input_lengths, target_lengths, blank=0)
        -> (nll, alpha)                        # log_probs (T, N, C); targets (N, L) int32
    ctc_backward(log_probs, targets, input_lengths, target_lengths, alpha, nll,
                 grad_scale, blank=0) -> grad  # grad_scale[n] * d nll[n] / d log_probs

    # recurrent step kernels (csrc/nnlite/rnn.cuh): one time step over all N
    # rows, writing into caller-provided arrays; gx becomes the activations
    lstm_cell_forward(gx, gh, c_prev, h_prev, c, h, lengths, t, hard_sigmoid=False)
    lstm_cell_backward(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t, ...)
    gru_reset_gate_forward(gx, gh_rz, h_prev, rh, hard_sigmoid=False)   # reset_after=False
    gru_cell_forward(gx, gh, b_hn, h_prev, h, lengths, t, hard_sigmoid=False, reset_after=True)
    gru_cell_backward(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, t, ...)
    gru_reset_gate_backward(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, ...)
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
