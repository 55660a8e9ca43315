"""Load nnlite._C with OpenMP workers that sleep, not spin, between loops.

The host kernels are short OpenMP loops between BLAS calls (conv2d: im2col,
GEMM, col2im, GEMM). libgomp's default keeps idle workers spinning for a
while after each loop; on a machine with few cores those spinning workers
hold the cores that OpenBLAS's threads need next: conv2d forward+backward of
the CRNN conv3 shape took 110-320 ms instead of about 92 ms (2 shared cores).
A passive wait policy avoids that and costs nothing measurable in the pool
kernels.

libgomp reads OMP_WAIT_POLICY once, when it is loaded, so the variable is set
only around the first load of nnlite._C and then removed: libraries loaded
later (PyTorch's own OpenMP runtime) see the environment as the user left it.
A user's own OMP_WAIT_POLICY always wins, and if the process already has
libgomp loaded, this changes nothing.
"""
import importlib
import os


def load_host_library_with_passive_openmp():
    user_set = "OMP_WAIT_POLICY" in os.environ
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        importlib.import_module("nnlite._C")
    except ImportError:
        pass  # nnlite.kernels.host._lib reports it, with how to rebuild
    finally:
        if not user_set:
            del os.environ["OMP_WAIT_POLICY"]
