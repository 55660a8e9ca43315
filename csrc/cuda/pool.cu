// CUDA launcher of csrc/nnlite/pool.cuh: one thread per output element
// (forward) or per input pixel (backward, a gather), grid-stride loops over
// all planes of the batch. Launched by nnlite/kernels/pool.py (through
// nnlite/kernels/launch.py); csrc/host/pool.cpp takes the same arguments.
#include "nnlite/pool.cuh"

#define NNL_POOL_PARAMS                                                                   \
  long long planes, int height, int width, int kernel_h, int kernel_w, int stride_h,      \
      int stride_w, int pad_h, int pad_w, int out_h, int out_w
#define NNL_POOL_GEOMETRY                                                                 \
  make_pool_geometry(height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, \
                     out_h, out_w)

template <typename scalar_t>
__device__ NNL_INLINE void maxpool_forward_grid(const scalar_t* x, scalar_t* y, int* argmax,
                                                long long planes, const pool_geometry& g) {
  const int out_plane = g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP(idx, planes * out_plane) {
    const long long plane = idx / out_plane;
    const int o = (int)(idx - plane * out_plane);
    maxpool_window(x + plane * g.height * g.width, g, o / g.out_w, o % g.out_w, y + idx,
                   argmax + idx);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void maxpool_backward_grid(const scalar_t* gy, const int* argmax,
                                                 scalar_t* gx, long long planes,
                                                 const pool_geometry& g) {
  const int in_plane = g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP(idx, planes * in_plane) {
    const long long plane = idx / in_plane;
    const int hw = (int)(idx - plane * in_plane);
    gx[idx] = maxpool_backward_pixel(gy + plane * out_plane, argmax + plane * out_plane, g,
                                     hw / g.width, hw % g.width);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void avgpool_forward_grid(const scalar_t* x, scalar_t* y,
                                                long long planes, const pool_geometry& g,
                                                int count_include_pad) {
  const int out_plane = g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP(idx, planes * out_plane) {
    const long long plane = idx / out_plane;
    const int o = (int)(idx - plane * out_plane);
    y[idx] = avgpool_window(x + plane * g.height * g.width, g, o / g.out_w, o % g.out_w,
                            count_include_pad);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void avgpool_backward_grid(const scalar_t* gy, scalar_t* gx,
                                                 long long planes, const pool_geometry& g,
                                                 int count_include_pad) {
  const int in_plane = g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP(idx, planes * in_plane) {
    const long long plane = idx / in_plane;
    const int hw = (int)(idx - plane * in_plane);
    gx[idx] = avgpool_backward_pixel(gy + plane * out_plane, g, hw / g.width, hw % g.width,
                                     count_include_pad);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
maxpool_forward_f32(const float* x, float* y, int* argmax, NNL_POOL_PARAMS) {
  maxpool_forward_grid(x, y, argmax, planes, NNL_POOL_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
maxpool_forward_f64(const double* x, double* y, int* argmax, NNL_POOL_PARAMS) {
  maxpool_forward_grid(x, y, argmax, planes, NNL_POOL_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
maxpool_backward_f32(const float* gy, const int* argmax, float* gx, NNL_POOL_PARAMS) {
  maxpool_backward_grid(gy, argmax, gx, planes, NNL_POOL_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
maxpool_backward_f64(const double* gy, const int* argmax, double* gx, NNL_POOL_PARAMS) {
  maxpool_backward_grid(gy, argmax, gx, planes, NNL_POOL_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
avgpool_forward_f32(const float* x, float* y, NNL_POOL_PARAMS, int count_include_pad) {
  avgpool_forward_grid(x, y, planes, NNL_POOL_GEOMETRY, count_include_pad);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
avgpool_forward_f64(const double* x, double* y, NNL_POOL_PARAMS, int count_include_pad) {
  avgpool_forward_grid(x, y, planes, NNL_POOL_GEOMETRY, count_include_pad);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
avgpool_backward_f32(const float* gy, float* gx, NNL_POOL_PARAMS, int count_include_pad) {
  avgpool_backward_grid(gy, gx, planes, NNL_POOL_GEOMETRY, count_include_pad);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
avgpool_backward_f64(const double* gy, double* gx, NNL_POOL_PARAMS, int count_include_pad) {
  avgpool_backward_grid(gy, gx, planes, NNL_POOL_GEOMETRY, count_include_pad);
}
