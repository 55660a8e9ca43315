"""The kernel layer: one module per kernel family, one checked function per kernel.

    softmax.py   softmax_forward, softmax_backward
    conv.py      im2col, col2im                      (over a shapes.ConvGeometry)
    pool.py      maxpool_forward/backward, avgpool_forward/backward (a shapes.PoolGeometry)
    rnn.py       lstm_cell_forward/backward, gru_* step kernels
    ctc.py       ctc_alpha, ctc_backward
    shapes.py    output_size, same_padding, ConvGeometry, PoolGeometry: the one shape rule
    checks.py    the array checks the family modules share
    launch.py    launch(name, dtype, work, args): nnlite._C on the CPU, nvrtc.py on the GPU

A Function never branches on the device: it calls the family function, which
checks its arrays once and launches the entry point of the same name on the
backend of the arrays' device. The math of each family is csrc/nnlite/<family>.cuh;
csrc/cuda/<family>.cu and csrc/host/<family>.cpp launch it with the same
arguments.
"""
from nnlite.kernels import conv, ctc, pool, rnn, shapes, softmax  # noqa: F401
from nnlite.kernels.launch import host_library

try:
    # Loaded now, before any other library can load libgomp, so that its
    # OpenMP workers sleep between loops (see launch.host_library).
    host_library()
except ImportError:
    pass  # reported, with how to rebuild, by the first kernel call
