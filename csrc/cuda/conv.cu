// CUDA launcher of csrc/nnlite/conv.cuh: one thread per column entry (im2col)
// or per input pixel (col2im), grid-stride loops over a chunk of images.
// Launched by nnlite/kernels/conv.py (through nnlite/kernels/launch.py);
// csrc/host/conv.cpp takes the same arguments.
#include "nnlite/conv.cuh"

// index_t: unsigned int when conv_narrow says every index fits, else long long.
template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void im2col_grid(const scalar_t* x, scalar_t* cols, index_t images,
                                       const conv_geometry& g) {
  const index_t taps = (index_t)g.kernel_h * g.kernel_w;
  const index_t rows = (index_t)g.channels * taps;
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  const index_t row_width = images * out_plane;  // cols is (rows, images * out_plane)
  const index_t image_size = (index_t)g.channels * g.height * g.width;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, rows * row_width) {
    const index_t row = idx / row_width;
    const index_t column = idx - row * row_width;
    const index_t image = column / out_plane;
    const index_t p = column - image * out_plane;
    const index_t c = row / taps;
    const index_t tap = row - c * taps;
    const index_t i = tap / g.kernel_w;
    const index_t oh = p / g.out_w;
    cols[idx] = im2col_entry(x + image * image_size, g, (int)c, (int)i,
                             (int)(tap - i * g.kernel_w), (int)oh, (int)(p - oh * g.out_w));
  }
}

template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void col2im_grid(const scalar_t* cols, scalar_t* x, index_t images,
                                       const conv_geometry& g) {
  const index_t plane = (index_t)g.height * g.width;
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  const index_t row_stride = images * out_plane;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, images * g.channels * plane) {
    const index_t image_channel = idx / plane;
    const index_t hw = idx - image_channel * plane;
    const index_t image = image_channel / g.channels;
    const index_t c = image_channel - image * g.channels;
    const index_t h = hw / g.width;
    x[idx] = col2im_pixel(cols + image * out_plane, (long long)row_stride, g, (int)c, (int)h,
                          (int)(hw - h * g.width));
  }
}

// Whether every index of an im2col / col2im launch fits the narrow type: the
// column matrix, the input, and the columns' row stride times their rows.
__device__ NNL_INLINE bool conv_narrow(long long images, const conv_geometry& g) {
  const long long rows = (long long)g.channels * g.kernel_h * g.kernel_w;
  const long long row_width = images * g.out_h * g.out_w;
  const long long input = images * g.channels * g.height * g.width;
  return nnl_narrow_index(nnl_max(rows * row_width, input));
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
  const conv_geometry g = NNL_CONV_GEOMETRY;
  if (conv_narrow(images, g)) {
    im2col_grid(x, cols, (unsigned int)images, g);
  } else {
    im2col_grid(x, cols, images, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
im2col_f64(const double* x, double* cols, NNL_CONV_PARAMS) {
  const conv_geometry g = NNL_CONV_GEOMETRY;
  if (conv_narrow(images, g)) {
    im2col_grid(x, cols, (unsigned int)images, g);
  } else {
    im2col_grid(x, cols, images, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
col2im_f32(const float* cols, float* x, NNL_CONV_PARAMS) {
  const conv_geometry g = NNL_CONV_GEOMETRY;
  if (conv_narrow(images, g)) {
    col2im_grid(cols, x, (unsigned int)images, g);
  } else {
    col2im_grid(cols, x, images, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
col2im_f64(const double* cols, double* x, NNL_CONV_PARAMS) {
  const conv_geometry g = NNL_CONV_GEOMETRY;
  if (conv_narrow(images, g)) {
    col2im_grid(cols, x, (unsigned int)images, g);
  } else {
    col2im_grid(cols, x, images, g);
  }
}
