// im2col and col2im for 2-D convolution: the math only.
//
// A chunk of n images x (n, channels, height, width) maps to one column matrix
// cols (channels * kernel_h * kernel_w, n * out_h * out_w), Caffe's layout
// with the images side by side:
//
//   cols[(c * kernel_h + i) * kernel_w + j][(image * out_h + oh) * out_w + ow]
//       = x[image][c][h][w],  h = oh * stride_h - pad_top + i * dilation_h,
//                             w = ow * stride_w - pad_left + j * dilation_w,
//
// or 0 where that position lies in the padding. The convolution of the whole
// chunk is then ONE GEMM, weight (out_channels, rows) x cols: few large BLAS
// calls rather than one per image, which matters when BLAS threads must sync.
// Bottom/right padding only enters through out_h / out_w (computed by
// nnlite/kernels/shapes.py): that is how asymmetric padding ("same" with an
// even kernel) is expressed.
//
// col2im is the adjoint: each input pixel GATHERS the column entries that read
// it, in a fixed (i, j) order, so there are no atomics and the result is the
// same bit for bit on every run and on both builds.
#ifndef NNLITE_CONV_CUH
#define NNLITE_CONV_CUH

#include "nnlite/portable.cuh"

// Input position read by output position `o` through tap `tap` along one
// axis. 64-bit: with a huge stride, padding or dilation the position passes
// 2^31 even though every argument fits an int (it is then simply outside).
NNL_HD NNL_INLINE long long conv_input_position(int o, int stride, int pad, int tap,
                                                int dilation) {
  return (long long)o * stride - pad + (long long)tap * dilation;
}

struct conv_geometry {
  int channels, height, width;
  int kernel_h, kernel_w;
  int stride_h, stride_w;
  int pad_top, pad_left;
  int dilation_h, dilation_w;
  int out_h, out_w;
};

NNL_HD NNL_INLINE conv_geometry make_conv_geometry(int channels, int height, int width,
                                                   int kernel_h, int kernel_w, int stride_h,
                                                   int stride_w, int pad_top, int pad_left,
                                                   int dilation_h, int dilation_w, int out_h,
                                                   int out_w) {
  conv_geometry g;
  g.channels = channels;
  g.height = height;
  g.width = width;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_top = pad_top;
  g.pad_left = pad_left;
  g.dilation_h = dilation_h;
  g.dilation_w = dilation_w;
  g.out_h = out_h;
  g.out_w = out_w;
  return g;
}

// One entry of the column matrix of one image: row (c, i, j), column (oh, ow).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t im2col_entry(const scalar_t* image, const conv_geometry& g, int c,
                                        int i, int j, int oh, int ow) {
  const long long h = conv_input_position(oh, g.stride_h, g.pad_top, i, g.dilation_h);
  const long long w = conv_input_position(ow, g.stride_w, g.pad_left, j, g.dilation_w);
  if (h < 0 || h >= g.height || w < 0 || w >= g.width) return scalar_t(0);
  return image[((long long)c * g.height + h) * g.width + w];
}

// The output columns [lo, hi) whose tap j reads inside the input row: output
// column ow reads input column ow * stride_w + base.
struct conv_row_span {
  int lo, hi;
  long long base;
};

NNL_HD NNL_INLINE conv_row_span conv_row_span_of(const conv_geometry& g, int j) {
  conv_row_span span;
  span.base = (long long)j * g.dilation_w - g.pad_left;
  const long long first = span.base >= 0 ? 0 : (-span.base + g.stride_w - 1) / g.stride_w;
  const long long end =
      g.width - span.base <= 0 ? 0 : (g.width - span.base + g.stride_w - 1) / g.stride_w;
  span.lo = (int)nnl_min(first, (long long)g.out_w);
  span.hi = nnl_max(span.lo, (int)nnl_min(end, (long long)g.out_w));
  return span;
}

// One row segment of the column matrix: row (c, i, j), output row oh, all ow.
// The host build calls this: the in-bounds range of ow is found once, so the
// copy loop has no test and vectorises (a plain copy when stride_w is 1).
template <typename scalar_t>
NNL_HD NNL_INLINE void im2col_row_segment(const scalar_t* image, scalar_t* out,
                                          const conv_geometry& g, int c, int i, int j,
                                          int oh) {
  const long long h = conv_input_position(oh, g.stride_h, g.pad_top, i, g.dilation_h);
  if (h < 0 || h >= g.height) {
    for (int ow = 0; ow < g.out_w; ++ow) out[ow] = scalar_t(0);
    return;
  }
  const conv_row_span span = conv_row_span_of(g, j);
  const int lo = span.lo, hi = span.hi;
  for (int ow = 0; ow < lo; ++ow) out[ow] = scalar_t(0);
  if (lo < hi) {
    // The input element of output column lo; in bounds because lo is.
    const scalar_t* src = image + ((long long)c * g.height + h) * g.width +
                          (long long)lo * g.stride_w + span.base;
    scalar_t* dst = out + lo;
    const int count = hi - lo;
    if (g.stride_w == 1) {
      for (int k = 0; k < count; ++k) dst[k] = src[k];
    } else {
      for (int k = 0; k < count; ++k) dst[k] = src[k * g.stride_w];
    }
  }
  for (int ow = hi; ow < g.out_w; ++ow) out[ow] = scalar_t(0);
}

// The output position whose tap `tap` reads input position `pos` along one
// axis: (pos + pad - tap * dilation) / stride when that divides exactly and
// lands inside [0, out); -1 when no output reads it through this tap.
NNL_HD NNL_INLINE int conv_output_of_tap(int pos, int pad, int tap, int stride, int dilation,
                                         int out) {
  const long long offset = (long long)pos + pad - (long long)tap * dilation;
  if (offset < 0 || offset % stride != 0) return -1;
  const long long o = offset / stride;
  return o < out ? (int)o : -1;
}

// col2im value of input pixel (c, h, w) of one image: the sum of every column
// entry that im2col_entry read from it, taps in row-major (i, j) order.
// `cols` points at the image's first column; rows are `row_stride` apart.
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t col2im_pixel(const scalar_t* cols, long long row_stride,
                                        const conv_geometry& g, int c, int h, int w) {
  scalar_t sum = 0;
  for (int i = 0; i < g.kernel_h; ++i) {
    const int oh = conv_output_of_tap(h, g.pad_top, i, g.stride_h, g.dilation_h, g.out_h);
    if (oh < 0) continue;
    for (int j = 0; j < g.kernel_w; ++j) {
      const int ow = conv_output_of_tap(w, g.pad_left, j, g.stride_w, g.dilation_w, g.out_w);
      if (ow < 0) continue;
      const long long row = ((long long)c * g.kernel_h + i) * g.kernel_w + j;
      sum += cols[row * row_stride + (long long)oh * g.out_w + ow];
    }
  }
  return sum;
}

// The host build's col2im, one column-matrix row segment at a time: adds row
// (c, i, j), output row oh, all ow of one image's columns `cols_row` into the
// input plane `plane` (c's, of the same image). Run over (i, j) in row-major
// order on a zeroed plane, it adds each pixel's terms in the order
// col2im_pixel sums them, starting from 0: the same bits, while reading the
// columns in order instead of one cache line per term. The in-bounds range
// of ow is found once, as in im2col_row_segment, so the loop vectorises.
template <typename scalar_t>
NNL_HD NNL_INLINE void col2im_add_row_segment(const scalar_t* cols_row, scalar_t* plane,
                                              const conv_geometry& g, int i, int j, int oh) {
  const long long h = conv_input_position(oh, g.stride_h, g.pad_top, i, g.dilation_h);
  if (h < 0 || h >= g.height) return;
  const conv_row_span span = conv_row_span_of(g, j);
  const int lo = span.lo, hi = span.hi;
  if (lo >= hi) return;
  scalar_t* dst = plane + h * g.width + (long long)lo * g.stride_w + span.base;
  const scalar_t* src = cols_row + (long long)oh * g.out_w + lo;
  const int count = hi - lo;
  if (g.stride_w == 1) {
    for (int k = 0; k < count; ++k) dst[k] += src[k];
  } else {
    for (int k = 0; k < count; ++k) dst[k * g.stride_w] += src[k];
  }
}

#endif  // NNLITE_CONV_CUH
