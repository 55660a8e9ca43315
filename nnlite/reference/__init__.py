"""NumPy references of every kernel: the test oracle, written for clarity and
never called by the library itself. One module per kernel family, with the
same function names and signatures as nnlite.kernels.
"""
from nnlite.reference import softmax

__all__ = ["softmax"]
