"""Reference row-wise softmax and log-softmax on 2-D (rows, cols) arrays.

Only ufuncs and array methods are used, so CuPy arrays work too (the GPU
baseline in bench/).
"""
import numpy as np


def softmax_forward(x, log=False):
    """softmax(x)_j = exp(x_j) / sum_k exp(x_k) along each row, or its log.
    Subtracting the row max first changes nothing mathematically and keeps
    exp from overflowing."""
    shifted = x - x.max(axis=1, keepdims=True)
    sum_exp = np.exp(shifted).sum(axis=1, keepdims=True)
    if log:
        return shifted - np.log(sum_exp)
    return np.exp(shifted) / sum_exp


def softmax_backward(y, gy, log=False):
    """Gradient w.r.t. x given y = softmax_forward(x, log) and gy = dL/dy.

    softmax:      dL/dx_j = y_j * (gy_j - sum_k gy_k y_k)
    log-softmax:  dL/dx_j = gy_j - softmax(x)_j * sum_k gy_k,  softmax(x) = exp(y)
    """
    if log:
        return gy - np.exp(y) * gy.sum(axis=1, keepdims=True)
    return y * (gy - (gy * y).sum(axis=1, keepdims=True))
