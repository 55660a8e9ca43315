// CUDA launcher of csrc/nnlite/softmax.cuh: one block per row, the block's
// threads share the row's columns, block_reduce joins the steps.
//
// Launched by nnlite/kernels/softmax.py (through nnlite/kernels/launch.py):
// grid = rows, block = a power of two in [32, 1024], dynamic shared memory =
// block * sizeof(scalar_t). csrc/host/softmax.cpp takes the same arguments.
#include "nnlite/softmax.cuh"
#include "cuda/block_reduce.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void softmax_forward_block(const scalar_t* x, scalar_t* y, int cols,
                                                 int log_softmax) {
  // 64-bit offset: rows * cols may exceed 2^31 even though each fits an int.
  const long long offset = (long long)blockIdx.x * cols;
  x += offset;
  y += offset;
  const int tid = threadIdx.x;
  const int nthreads = blockDim.x;
  scalar_t* scratch = nnl_shared_scratch<scalar_t>();

  const scalar_t row_max =
      block_reduce(softmax_partial_max(x, cols, tid, nthreads), scratch, nnl_max_op());
  const scalar_t sum_exp = block_reduce(
      softmax_partial_sum_exp(x, cols, row_max, tid, nthreads), scratch, nnl_sum_op());
  softmax_write(x, y, cols, row_max, sum_exp, log_softmax, tid, nthreads);
}

template <typename scalar_t>
__device__ NNL_INLINE void softmax_backward_block(const scalar_t* y, const scalar_t* gy,
                                                  scalar_t* gx, int cols, int log_softmax) {
  const long long offset = (long long)blockIdx.x * cols;
  y += offset;
  gy += offset;
  gx += offset;
  const int tid = threadIdx.x;
  const int nthreads = blockDim.x;
  scalar_t* scratch = nnl_shared_scratch<scalar_t>();

  const scalar_t dot = block_reduce(
      softmax_backward_partial_dot(y, gy, cols, log_softmax, tid, nthreads), scratch,
      nnl_sum_op());
  softmax_backward_write(y, gy, gx, cols, dot, log_softmax, tid, nthreads);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
softmax_forward_f32(const float* x, float* y, long long rows, int cols,
                    int log_softmax) {
  if (blockIdx.x < rows) softmax_forward_block(x, y, cols, log_softmax);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
softmax_forward_f64(const double* x, double* y, long long rows, int cols,
                    int log_softmax) {
  if (blockIdx.x < rows) softmax_forward_block(x, y, cols, log_softmax);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
softmax_backward_f32(const float* y, const float* gy, float* gx, long long rows,
                     int cols, int log_softmax) {
  if (blockIdx.x < rows) softmax_backward_block(y, gy, gx, cols, log_softmax);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
softmax_backward_f64(const double* y, const double* gy, double* gx, long long rows,
                     int cols, int log_softmax) {
  if (blockIdx.x < rows) softmax_backward_block(y, gy, gx, cols, log_softmax);
}
