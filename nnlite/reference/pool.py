"""Reference max and average pooling (forward and backward) as direct loops
over the windows. Sizes come from nnlite.kernels.shapes (the one shape rule);
window bounds and divisors are recomputed here from the definitions:

* window (oh, ow) covers rows oh*sh - ph ... oh*sh - ph + kh - 1 (same for columns);
* max pooling looks at the positions inside the input; the first maximum in
  row-major window order wins (np.argmax), a NaN wins over numbers;
* average pooling divides by the number of window positions inside the padded
  input (count_include_pad=True) or inside the input (False).
"""
import numpy as np

from nnlite.kernels.shapes import output_size


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _geometry(x_shape, kernel_size, stride, padding, ceil_mode):
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    out = tuple(output_size(x_shape[2 + d], kernel[d], stride[d], padding[d], padding[d],
                            ceil_mode=ceil_mode) for d in range(2))
    return kernel, stride, padding, out


def _windows(x_shape, kernel, stride, padding, out):
    """Yield (oh, ow, rows, cols): the window's positions, unclipped."""
    for oh in range(out[0]):
        for ow in range(out[1]):
            h0, w0 = oh * stride[0] - padding[0], ow * stride[1] - padding[1]
            yield oh, ow, range(h0, h0 + kernel[0]), range(w0, w0 + kernel[1])


def _inside(positions, size):
    return [p for p in positions if 0 <= p < size]


def maxpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    n, c, height, width = x.shape
    kernel, stride, padding, out = _geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    y = np.zeros((n, c) + out, dtype=x.dtype)
    argmax = np.zeros((n, c) + out, dtype=np.int32)
    for oh, ow, rows, cols in _windows(x.shape, kernel, stride, padding, out):
        rows, cols = _inside(rows, height), _inside(cols, width)
        flat = [h * width + w for h in rows for w in cols]
        values = x.reshape(n, c, height * width)[:, :, flat]
        first = np.argmax(values, axis=2)  # first maximum; first NaN if any
        argmax[:, :, oh, ow] = np.asarray(flat)[first]
        y[:, :, oh, ow] = np.take_along_axis(values, first[:, :, None], axis=2)[:, :, 0]
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kernel_size, stride=None, padding=0,
                     ceil_mode=False):
    """Scatter-add of gy onto the argmax positions (the kernel gathers instead)."""
    n, c, height, width = x_shape
    gx = np.zeros((n, c, height * width), dtype=gy.dtype)
    for index in np.ndindex(gy.shape):
        gx[index[0], index[1], argmax[index]] += gy[index]
    return gx.reshape(x_shape)


def _divisor(rows, cols, height, width, padding, count_include_pad):
    if count_include_pad:
        rows = [r for r in rows if -padding[0] <= r < height + padding[0]]
        cols = [w for w in cols if -padding[1] <= w < width + padding[1]]
    else:
        rows, cols = _inside(rows, height), _inside(cols, width)
    return len(rows) * len(cols)


def avgpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True):
    n, c, height, width = x.shape
    kernel, stride, padding, out = _geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    y = np.zeros((n, c) + out, dtype=x.dtype)
    for oh, ow, rows, cols in _windows(x.shape, kernel, stride, padding, out):
        divisor = _divisor(rows, cols, height, width, padding, count_include_pad)
        inside = x[:, :, _inside(rows, height)][:, :, :, _inside(cols, width)]
        y[:, :, oh, ow] = inside.sum(axis=(2, 3)) / divisor
    return y


def avgpool_backward(gy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
    n, c, height, width = x_shape
    kernel, stride, padding, out = _geometry(x_shape, kernel_size, stride, padding, ceil_mode)
    gx = np.zeros(x_shape, dtype=gy.dtype)
    for oh, ow, rows, cols in _windows(x_shape, kernel, stride, padding, out):
        divisor = _divisor(rows, cols, height, width, padding, count_include_pad)
        for h in _inside(rows, height):
            for w in _inside(cols, width):
                gx[:, :, h, w] += gy[:, :, oh, ow] / divisor
    return gx
