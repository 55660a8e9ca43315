"""The CUDA emulator of tests/cuda_emulation.py on small kernels written for
the purpose: it honours barriers and shared memory, and it catches the bugs it
claims to catch (a missing barrier, a divergent barrier, a write into a const
argument, a wrongly typed argument), so the *_cuda_*_glue tests that rely on it
can fail."""
import numpy as np
import pytest

from cuda_emulation import emulated_kernel, entry_parameters

# A block-wide tree sum in dynamic shared memory (blockDim a power of two),
# with the barriers of a correct CUDA kernel; SKIP_BARRIER drops the one that
# orders the tree levels, DIVERGE lets thread 0 leave before the first one.
BLOCK_SUM = r"""
extern "C" __global__ void block_sum(const double* x, double* out, int n) {
  extern __shared__ double partial[];
  const int tid = threadIdx.x;
  double sum = 0;
  for (int i = blockIdx.x * blockDim.x + tid; i < n; i += blockDim.x * gridDim.x) sum += x[i];
  partial[tid] = sum;
  if (DIVERGE && tid == 0) return;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width /= 2) {
    if (tid < width) partial[tid] += partial[tid + width];
    if (!SKIP_BARRIER) __syncthreads();
  }
  if (tid == 0) out[blockIdx.x] = partial[0];
}
"""

# Static __shared__: one array per block, seen by all its threads.
REVERSE = r"""
extern "C" __global__ void reverse_in_blocks(const float* x, float* y) {
  __shared__ float staged[16];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  staged[threadIdx.x] = x[i];
  __syncthreads();
  y[i] = staged[blockDim.x - 1 - threadIdx.x];
}
"""


def block_sum(skip_barrier=0, diverge=0):
    code = BLOCK_SUM.replace("SKIP_BARRIER", str(skip_barrier)).replace("DIVERGE", str(diverge))
    return emulated_kernel(code, "block_sum")


def expected_block_sums(x, blocks, threads):
    owner = (np.arange(x.size) % (blocks * threads)) // threads
    return np.array([x[owner == b].sum() for b in range(blocks)])


def test_barriers_and_dynamic_shared_memory_give_the_cuda_result():
    x = np.arange(1.0, 51.0)  # integers: every order of the sums is exact
    out = np.full(3, np.nan)
    block_sum()(3, 8, (x, out, np.int32(x.size)))
    np.testing.assert_array_equal(out, expected_block_sums(x, 3, 8))


def test_static_shared_memory_is_shared_by_the_block():
    x = np.arange(32, dtype=np.float32)
    y = np.empty_like(x)
    emulated_kernel(REVERSE, "reverse_in_blocks")(2, 16, (x, y))
    np.testing.assert_array_equal(y, np.concatenate([x[15::-1], x[:15:-1]]))


def test_a_missing_barrier_is_caught():
    x = np.arange(1.0, 51.0)
    with pytest.raises(AssertionError, match="depends on the order of blocks and threads"):
        block_sum(skip_barrier=1)(3, 8, (x, np.zeros(3), np.int32(x.size)))


def test_a_divergent_barrier_is_caught():
    x = np.arange(1.0, 51.0)
    with pytest.raises(AssertionError, match="a __syncthreads diverged"):
        block_sum(diverge=1)(3, 8, (x, np.zeros(3), np.int32(x.size)))


def test_arguments_are_bound_by_declared_type():
    run = block_sum()
    x = np.arange(4.0)
    with pytest.raises(AssertionError, match="block_sum: n is int for a int parameter"):
        run(1, 4, (x, np.zeros(1), 4))
    with pytest.raises(AssertionError, match="block_sum: x is float32 for a const double"):
        run(1, 4, (x.astype(np.float32), np.zeros(1), np.int32(4)))
    with pytest.raises(AssertionError, match="block_sum: out is not C-contiguous"):
        run(1, 4, (x, np.zeros(4)[::2], np.int32(4)))
    with pytest.raises(AssertionError, match="block_sum: 2 arguments"):
        run(1, 4, (x, np.zeros(1)))


def test_a_write_into_a_const_argument_is_caught():
    code = ('extern "C" __global__ void scribble(const int* x, int* y) '
            '{ ((int*)x)[threadIdx.x] = 7; y[threadIdx.x] = 1; }')
    with pytest.raises(AssertionError, match="scribble: wrote into a const argument"):
        emulated_kernel(code, "scribble")(1, 4, (np.zeros(4, np.int32), np.zeros(4, np.int32)))


def test_entry_parameters_read_multi_line_declarations():
    code = ('extern "C" __global__ void __launch_bounds__(256)\nk(const float* a, long\n'
            '    long units, int\n    b) {}')
    assert entry_parameters(code, "k") == [("const float*", "a"), ("long long", "units"),
                                           ("int", "b")]
