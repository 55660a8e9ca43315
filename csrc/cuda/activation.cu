// CUDA launcher of csrc/nnlite/activation.cuh: a grid-stride loop over the
// elements (launch.Grid(count)). Launched by nnlite/kernels/activation.py
// (through nnlite/kernels/launch.py); csrc/host/activation.cpp takes the same
// arguments.
#include "nnlite/activation.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void relu_forward_grid(const scalar_t* x, scalar_t* y, unsigned char* mask,
                                             long long count) {
  NNL_GRID_STRIDE_LOOP(index, count) relu_forward_element(x, y, mask, index);
}

template <typename scalar_t>
__device__ NNL_INLINE void relu_backward_grid(const scalar_t* gy, const unsigned char* mask,
                                              scalar_t* gx, long long count) {
  NNL_GRID_STRIDE_LOOP(index, count) relu_backward_element(gy, mask, gx, index);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
relu_forward_f32(const float* x, float* y, unsigned char* mask, long long count) {
  relu_forward_grid(x, y, mask, count);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
relu_forward_f64(const double* x, double* y, unsigned char* mask, long long count) {
  relu_forward_grid(x, y, mask, count);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
relu_backward_f32(const float* gy, const unsigned char* mask, float* gx, long long count) {
  relu_backward_grid(gy, mask, gx, count);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
relu_backward_f64(const double* gy, const unsigned char* mask, double* gx, long long count) {
  relu_backward_grid(gy, mask, gx, count);
}
