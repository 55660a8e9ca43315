"""The one GEMM entry of nnlite's Functions: cuBLAS on the GPU; on the CPU,
threads.split_matmul: single-threaded BLAS calls shared among nnlite's own
threads, so that BLAS's threads never wait for each other at barriers on
cores shared with other processes (measured on the 2-core VM at load
average 5: a linear layer's weight gradient, 63x992 by 992x128, took 100 ms
through NumPy's 2-thread OpenBLAS and 0.15 ms at one thread)."""
import numpy as np

from nnlite.threads import split_matmul


def gemm(xp, a, b, out=None):
    """xp.matmul of 2-D a (m, k) and b (k, n), or of stacked (B, m, k) and
    (B, k, n), optionally into `out` (C-contiguous, the product's shape)."""
    return split_matmul(a, b, out=out) if xp is np else xp.matmul(a, b, out=out)
