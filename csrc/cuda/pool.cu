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

// index_t: unsigned int when pool_narrow says every index fits, else long long.
template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void maxpool_forward_grid(const scalar_t* x, scalar_t* y, int* argmax,
                                                index_t planes, const pool_geometry& g) {
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  const index_t in_plane = (index_t)g.height * g.width;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, planes * out_plane) {
    const index_t plane = idx / out_plane;
    const index_t o = idx - plane * out_plane;
    const index_t oh = o / g.out_w;
    maxpool_window(x + plane * in_plane, g, (int)oh, (int)(o - oh * g.out_w), y + idx,
                   argmax + idx);
  }
}

template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void maxpool_backward_grid(const scalar_t* gy, const int* argmax,
                                                 scalar_t* gx, index_t planes,
                                                 const pool_geometry& g) {
  const index_t in_plane = (index_t)g.height * g.width;
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, planes * in_plane) {
    const index_t plane = idx / in_plane;
    const index_t hw = idx - plane * in_plane;
    const index_t h = hw / g.width;
    gx[idx] = maxpool_backward_pixel(gy + plane * out_plane, argmax + plane * out_plane, g,
                                     (int)h, (int)(hw - h * g.width));
  }
}

template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void avgpool_forward_grid(const scalar_t* x, scalar_t* y, index_t planes,
                                                const pool_geometry& g,
                                                int count_include_pad) {
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  const index_t in_plane = (index_t)g.height * g.width;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, planes * out_plane) {
    const index_t plane = idx / out_plane;
    const index_t o = idx - plane * out_plane;
    const index_t oh = o / g.out_w;
    y[idx] = avgpool_window(x + plane * in_plane, g, (int)oh, (int)(o - oh * g.out_w),
                            count_include_pad);
  }
}

template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void avgpool_backward_grid(const scalar_t* gy, scalar_t* gx,
                                                 index_t planes, const pool_geometry& g,
                                                 int count_include_pad) {
  const index_t in_plane = (index_t)g.height * g.width;
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, planes * in_plane) {
    const index_t plane = idx / in_plane;
    const index_t hw = idx - plane * in_plane;
    const index_t h = hw / g.width;
    gx[idx] = avgpool_backward_pixel(gy + plane * out_plane, g, (int)h,
                                     (int)(hw - h * g.width), count_include_pad);
  }
}

// Whether every index of a pooling launch fits the narrow type (the input and
// the output of all planes).
__device__ NNL_INLINE bool pool_narrow(long long planes, const pool_geometry& g) {
  return nnl_narrow_index(planes * nnl_max((long long)g.height * g.width,
                                           (long long)g.out_h * g.out_w));
}

// One entry point body: the grid function in the narrow or the wide index type.
// maxpool_backward and avgpool_forward run wide only: with both paths in one
// kernel they need 64 registers, one over the TK1's 63.
#define NNL_POOL_DISPATCH(call_narrow, call_wide) \
  const pool_geometry g = NNL_POOL_GEOMETRY;     \
  if (pool_narrow(planes, g)) {                  \
    call_narrow;                                 \
  } else {                                       \
    call_wide;                                   \
  }

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
maxpool_forward_f32(const float* x, float* y, int* argmax, NNL_POOL_PARAMS) {
  NNL_POOL_DISPATCH(maxpool_forward_grid(x, y, argmax, (unsigned int)planes, g),
                    maxpool_forward_grid(x, y, argmax, planes, g))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
maxpool_forward_f64(const double* x, double* y, int* argmax, NNL_POOL_PARAMS) {
  NNL_POOL_DISPATCH(maxpool_forward_grid(x, y, argmax, (unsigned int)planes, g),
                    maxpool_forward_grid(x, y, argmax, planes, g))
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
  NNL_POOL_DISPATCH(avgpool_backward_grid(gy, gx, (unsigned int)planes, g, count_include_pad),
                    avgpool_backward_grid(gy, gx, planes, g, count_include_pad))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
avgpool_backward_f64(const double* gy, double* gx, NNL_POOL_PARAMS, int count_include_pad) {
  NNL_POOL_DISPATCH(avgpool_backward_grid(gy, gx, (unsigned int)planes, g, count_include_pad),
                    avgpool_backward_grid(gy, gx, planes, g, count_include_pad))
}
