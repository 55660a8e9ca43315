"""NumPy references of every kernel: the test oracle, written for clarity and
never called by the library itself. One module per kernel family, with the
same function names and signatures as nnlite.kernels; losses.py holds the
oracles of the composite ops (cross-entropy, BCE, batch norm).
"""
from nnlite.reference import conv, ctc, losses, pool, rnn, softmax

__all__ = ["conv", "ctc", "losses", "pool", "rnn", "softmax"]
