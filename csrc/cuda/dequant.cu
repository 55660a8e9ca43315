// CUDA launcher of csrc/nnlite/dequant.cuh.
//
// dequant_int8: one block per weight row, its threads striding over the
// columns (no division per element); grid = rows, block = a power of two in
// [32, 1024] (launch.Blocks(rows, cols), no shared memory).
// dequant_binary16: a grid-stride loop over the elements (launch.Grid(count)).
// Launched by nnlite/kernels/dequant.py (through nnlite/kernels/launch.py);
// csrc/host/dequant.cpp takes the same arguments.
#include "nnlite/dequant.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void dequant_int8_block(const signed char* q, const scalar_t* scale,
                                              scalar_t* w, long long rows, int cols) {
  const long long row = blockIdx.x;
  if (row >= rows) return;
  // 64-bit offset: rows * cols may pass 2^31 while each fits an int.
  const long long offset = row * cols;
  dequant_int8_row(q + offset, scale[row], w + offset, cols, (int)threadIdx.x,
                   (int)blockDim.x);
}

template <typename scalar_t>
__device__ NNL_INLINE void dequant_binary16_grid(const unsigned short* bits, scalar_t* w,
                                                 long long count) {
  NNL_GRID_STRIDE_LOOP(index, count) w[index] = dequant_binary16_element<scalar_t>(bits, index);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
dequant_int8_f32(const signed char* q, const float* scale, float* w, long long rows,
                 int cols) {
  dequant_int8_block(q, scale, w, rows, cols);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
dequant_int8_f64(const signed char* q, const double* scale, double* w, long long rows,
                 int cols) {
  dequant_int8_block(q, scale, w, rows, cols);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
dequant_binary16_f32(const unsigned short* bits, float* w, long long count) {
  dequant_binary16_grid(bits, w, count);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
dequant_binary16_f64(const unsigned short* bits, double* w, long long count) {
  dequant_binary16_grid(bits, w, count);
}
