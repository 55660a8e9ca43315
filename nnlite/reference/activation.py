"""Reference element-wise activations: the NumPy formulation nnlite used before
the activation kernels, which they must reproduce bit for bit (including the
sign of zero and NaN propagation).

Only ufuncs and array methods are used, so CuPy arrays work too (the GPU
baseline in bench/).
"""


def relu_forward(x):
    """(y, mask): y = x * (x > 0), mask = (x > 0) as uint8. Multiplying by the
    mask, rather than selecting, is what fixes the special values: a negative
    x gives -0.0, a NaN gives NaN, -inf gives NaN (-inf * 0)."""
    positive = x > 0
    return x * positive, positive.astype("uint8")


def relu_backward(gy, mask):
    """gx = gy * mask: gy where the input was positive, gy * 0 elsewhere (-0.0
    for a negative gy, NaN for a NaN or infinite one)."""
    return gy * mask.astype(bool)
