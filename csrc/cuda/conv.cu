// CUDA launcher of csrc/nnlite/conv.cuh: one thread per column entry (im2col)
// or per input pixel (col2im), grid-stride loops over a chunk of n images.
//
// Launch (nnlite/kernels/cuda.py): block = 256 threads, grid = enough blocks
// for one element per thread, capped (the loop covers the rest).
#include "nnlite/conv.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void im2col_grid(const scalar_t* x, scalar_t* cols, int n,
                                       const conv_geometry& g) {
  const int taps = g.kernel_h * g.kernel_w;
  const long long rows = (long long)g.channels * taps;
  const int out_plane = g.out_h * g.out_w;
  const long long row_width = (long long)n * out_plane;  // cols is (rows, n * out_plane)
  const long long image_size = (long long)g.channels * g.height * g.width;
  const long long total = rows * row_width;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const int row = (int)(idx / row_width);
    const long long column = idx % row_width;
    const long long image = column / out_plane;
    const int p = (int)(column % out_plane);
    const int tap = row % taps;
    cols[idx] = im2col_entry(x + image * image_size, g, row / taps, tap / g.kernel_w,
                             tap % g.kernel_w, p / g.out_w, p % g.out_w);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void col2im_grid(const scalar_t* cols, scalar_t* x, int n,
                                       const conv_geometry& g) {
  const long long plane = (long long)g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  const long long row_stride = n * out_plane;
  const long long total = n * g.channels * plane;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const int hw = (int)(idx % plane);
    const long long image_channel = idx / plane;
    const int c = (int)(image_channel % g.channels);
    const long long image = image_channel / g.channels;
    x[idx] = col2im_pixel(cols + image * out_plane, row_stride, g, c, hw / g.width,
                          hw % g.width);
  }
}

#define NNL_CONV_GEOMETRY_PARAMS                                                          \
  int n, int channels, int height, int width, int kernel_h, int kernel_w, int stride_h,   \
      int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int out_h, \
      int out_w
#define NNL_CONV_GEOMETRY                                                                  \
  make_conv_geometry(channels, height, width, kernel_h, kernel_w, stride_h, stride_w,      \
                     pad_top, pad_left, dilation_h, dilation_w, out_h, out_w)

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
im2col_f32(const float* x, float* cols, NNL_CONV_GEOMETRY_PARAMS) {
  im2col_grid(x, cols, n, NNL_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
im2col_f64(const double* x, double* cols, NNL_CONV_GEOMETRY_PARAMS) {
  im2col_grid(x, cols, n, NNL_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
col2im_f32(const float* cols, float* x, NNL_CONV_GEOMETRY_PARAMS) {
  col2im_grid(cols, x, n, NNL_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
col2im_f64(const double* cols, double* x, NNL_CONV_GEOMETRY_PARAMS) {
  col2im_grid(cols, x, n, NNL_CONV_GEOMETRY);
}
