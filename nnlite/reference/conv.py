"""Reference im2col / col2im and 2-D convolution, written as direct loops over
the definition. Sizes come from nnlite.kernels.shapes (the one shape rule);
everything else is recomputed here independently of the kernels.

padding is (top, bottom, left, right); kernel_size, stride, dilation are pairs.
Columns use Caffe's layout (C*kh*kw, N*out_h*out_w): images side by side.
"""
import numpy as np

from nnlite.kernels.shapes import output_size


def _out_hw(x_shape, kernel_size, stride, padding, dilation):
    top, bottom, left, right = padding
    return (output_size(x_shape[2], kernel_size[0], stride[0], top, bottom, dilation[0]),
            output_size(x_shape[3], kernel_size[1], stride[1], left, right, dilation[1]))


def _read_positions(kernel_size, stride, padding, dilation, out_hw):
    """Yield (i, j, oh, ow, h, w): tap (i, j) of window (oh, ow) reads pixel (h, w)."""
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            for oh in range(out_hw[0]):
                for ow in range(out_hw[1]):
                    yield (i, j, oh, ow, oh * stride[0] - padding[0] + i * dilation[0],
                           ow * stride[1] - padding[2] + j * dilation[1])


def im2col(x, kernel_size, stride, padding, dilation):
    n, c, height, width = x.shape
    kh, kw = kernel_size
    out_h, out_w = _out_hw(x.shape, kernel_size, stride, padding, dilation)
    cols = np.zeros((n, c, kh, kw, out_h, out_w), dtype=x.dtype)
    for i, j, oh, ow, h, w in _read_positions(kernel_size, stride, padding, dilation,
                                              (out_h, out_w)):
        if 0 <= h < height and 0 <= w < width:
            cols[:, :, i, j, oh, ow] = x[:, :, h, w]
    # (n, rows, pixels) -> (rows, n * pixels)
    return cols.reshape(n, c * kh * kw, out_h * out_w).transpose(1, 0, 2).reshape(
        c * kh * kw, n * out_h * out_w)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """Scatter-add adjoint of im2col (the kernel gathers instead)."""
    n, c, height, width = x_shape
    kh, kw = kernel_size
    out_h, out_w = _out_hw(x_shape, kernel_size, stride, padding, dilation)
    cols = cols.reshape(c, kh, kw, n, out_h, out_w).transpose(3, 0, 1, 2, 4, 5)
    x = np.zeros(x_shape, dtype=cols.dtype)
    for i, j, oh, ow, h, w in _read_positions(kernel_size, stride, padding, dilation,
                                              (out_h, out_w)):
        if 0 <= h < height and 0 <= w < width:
            x[:, :, h, w] += cols[:, :, i, j, oh, ow]
    return x


def conv2d_forward(x, weight, bias, stride, padding, dilation):
    """y[n, o, oh, ow] = b[o] + sum_{c,i,j} w[o, c, i, j] x_padded[n, c, oh*sh + i*dh,
    ow*sw + j*dw], one tap (i, j) at a time."""
    top, bottom, left, right = padding
    out_h, out_w = _out_hw(x.shape, weight.shape[2:], stride, padding, dilation)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    y = np.zeros((x.shape[0], weight.shape[0], out_h, out_w), dtype=np.result_type(x, weight))
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            h0, w0 = i * dilation[0], j * dilation[1]
            window = padded[:, :, h0:h0 + (out_h - 1) * stride[0] + 1:stride[0],
                            w0:w0 + (out_w - 1) * stride[1] + 1:stride[1]]
            y += np.einsum("nchw,oc->nohw", window, weight[:, :, i, j])
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv2d_backward(x, weight, gy, stride, padding, dilation):
    """(gx, gw, gb) of conv2d_forward given gy = dL/dy, by the same tap loops."""
    top, bottom, left, right = padding
    out_h, out_w = gy.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    g_padded = np.zeros_like(padded, dtype=np.result_type(x, gy))
    gw = np.zeros(weight.shape, dtype=np.result_type(x, gy))
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            h0, w0 = i * dilation[0], j * dilation[1]
            rows = slice(h0, h0 + (out_h - 1) * stride[0] + 1, stride[0])
            cols = slice(w0, w0 + (out_w - 1) * stride[1] + 1, stride[1])
            gw[:, :, i, j] = np.einsum("nohw,nchw->oc", gy, padded[:, :, rows, cols])
            g_padded[:, :, rows, cols] += np.einsum("nohw,oc->nchw", gy, weight[:, :, i, j])
    gx = g_padded[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return gx, gw, gy.sum(axis=(0, 2, 3))
