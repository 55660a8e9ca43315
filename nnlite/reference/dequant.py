"""NumPy reference of the dequant family (csrc/nnlite/dequant.cuh), written
from the definitions: int8 times a per-row scale, and IEEE 754 binary16
decoded field by field (not through NumPy's float16)."""
import math

import numpy as np


def dequant_int8(q, scale):
    """w[r, c] = q[r, c] * scale[r], in float64."""
    q = np.asarray(q)
    w = np.empty(q.shape, dtype=np.float64)
    for r in range(q.shape[0]):
        for c in range(q.shape[1]):
            w[r, c] = float(q[r, c]) * float(scale[r])
    return w


def binary16_value(bits):
    """The number one binary16 bit pattern (an int in [0, 65535]) encodes."""
    sign = -1.0 if bits >> 15 else 1.0
    exponent = (bits >> 10) & 0x1F
    mantissa = bits & 0x3FF
    if exponent == 0x1F:
        return sign * math.inf if mantissa == 0 else math.copysign(math.nan, sign)
    if exponent == 0:
        return sign * mantissa * 2.0 ** -24
    return sign * (1.0 + mantissa / 1024.0) * 2.0 ** (exponent - 15)


def dequant_binary16(bits):
    """float64 values of a uint16 (bit patterns) or float16 array, same shape."""
    bits = np.asarray(bits)
    if bits.dtype == np.float16:
        bits = bits.view(np.uint16)
    flat = [binary16_value(int(b)) for b in bits.reshape(-1)]
    return np.array(flat, dtype=np.float64).reshape(bits.shape)
