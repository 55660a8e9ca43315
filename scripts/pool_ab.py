"""Max pooling, forward and backward, of two builds of nnlite._C at the seed
networks' pool shapes: one thread, process time, median of 9 calls.

    cp nnlite/_C*.so /tmp/old_C.so        # before rebuilding
    python scripts/pool_ab.py /tmp/old_C.so nnlite/_C*.so

Each build runs in its own process (one after the other, twice): two builds
loaded into one process would share their template symbols, so the second
would time the first's code.
"""
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np

# label: (x shape, kernel, stride, ceil_mode)
SHAPES = {"digits pool1": ((50, 8, 128, 256), (2, 2), (2, 2), False),
          "compact CRNN pool1": ((32, 16, 32, 128), (2, 2), (2, 2), False),
          "CRNN pool (2,1)": ((32, 256, 8, 32), (2, 1), (2, 1), False),
          "CharNet pool3 ceil": ((32, 512, 8, 25), (2, 2), (2, 2), True)}


def pooled(size, kernel, stride, ceil):
    return (-(-(size - kernel) // stride) if ceil else (size - kernel) // stride) + 1


def time_build(path, label):
    spec = importlib.util.spec_from_file_location("nnlite._C", path)
    C = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(C)
    rng = np.random.default_rng(0)
    for name, (shape, kernel, stride, ceil) in SHAPES.items():
        x = rng.standard_normal(shape, dtype=np.float32)
        out_h, out_w = (pooled(shape[2 + d], kernel[d], stride[d], ceil) for d in range(2))
        planes = shape[0] * shape[1]
        y = np.empty((planes, out_h, out_w), np.float32)
        argmax = np.empty(y.shape, np.int32)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        gx = np.empty(x.shape, np.float32)
        args = (planes, shape[2], shape[3], *kernel, *stride, 0, 0, out_h, out_w)
        times = []
        for _ in range(9):
            start = time.process_time()
            C.maxpool_forward_f32(x, y, argmax, *args)
            middle = time.process_time()
            C.maxpool_backward_f32(gy, argmax, gx, *args)
            times.append((middle - start, time.process_time() - middle))
        forward, backward = np.median(np.array(times), axis=0) * 1e3
        print(f"{label:4s} {name:20s} forward {forward:7.2f} ms   backward {backward:7.2f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        time_build(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for _ in range(2):
        for path, label in ((sys.argv[1], "old"), (sys.argv[2], "new")):
            subprocess.run([sys.executable, __file__, "--one", path, label], env=env, check=True)
