// CUDA launcher of csrc/nnlite/conv.cuh: one thread per column entry (im2col)
// or per input pixel (col2im), grid-stride loops over a chunk of images.
// Launched by nnlite/kernels/conv.py (through nnlite/kernels/launch.py);
// csrc/host/conv.cpp takes the same arguments.
#include "nnlite/conv.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void im2col_grid(const scalar_t* x, scalar_t* cols, long long images,
                                       const conv_geometry& g) {
  const int taps = g.kernel_h * g.kernel_w;
  const long long rows = (long long)g.channels * taps;
  const int out_plane = g.out_h * g.out_w;
  const long long row_width = images * out_plane;  // cols is (rows, images * out_plane)
  const long long image_size = (long long)g.channels * g.height * g.width;
  NNL_GRID_STRIDE_LOOP(idx, rows * row_width) {
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
__device__ NNL_INLINE void col2im_grid(const scalar_t* cols, scalar_t* x, long long images,
                                       const conv_geometry& g) {
  const long long plane = (long long)g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  const long long row_stride = images * out_plane;
  NNL_GRID_STRIDE_LOOP(idx, images * g.channels * plane) {
    const int hw = (int)(idx % plane);
    const long long image_channel = idx / plane;
    const int c = (int)(image_channel % g.channels);
    const long long image = image_channel / g.channels;
    x[idx] = col2im_pixel(cols + image * out_plane, row_stride, g, c, hw / g.width,
                          hw % g.width);
  }
}

#define NNL_CONV_PARAMS                                                                   \
  long long images, int channels, int height, int width, int kernel_h, int kernel_w,      \
      int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h,              \
      int dilation_w, int out_h, int out_w
#define NNL_CONV_GEOMETRY                                                                  \
  make_conv_geometry(channels, height, width, kernel_h, kernel_w, stride_h, stride_w,      \
                     pad_top, pad_left, dilation_h, dilation_w, out_h, out_w)

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
im2col_f32(const float* x, float* cols, NNL_CONV_PARAMS) {
  im2col_grid(x, cols, images, NNL_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
im2col_f64(const double* x, double* cols, NNL_CONV_PARAMS) {
  im2col_grid(x, cols, images, NNL_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
col2im_f32(const float* cols, float* x, NNL_CONV_PARAMS) {
  col2im_grid(cols, x, images, NNL_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
col2im_f64(const double* cols, double* x, NNL_CONV_PARAMS) {
  col2im_grid(cols, x, images, NNL_CONV_GEOMETRY);
}
