"""NumPy references of every kernel: the test oracle, written for clarity and
never called by the library itself. One module per kernel family, with the
same function names and signatures as nnlite.kernels; losses.py holds the
oracles of the composite ops (cross-entropy, BCE, batch norm).
"""
from nnlite.reference import losses, softmax
from nnlite.reference import rnn

__all__ = ["losses", "softmax"]
__all__ += ["rnn"]
from nnlite.reference import ctc  # noqa: E402
__all__ += ["ctc"]
