// Direct (implicit-GEMM) 2-D convolution: the math only. No column matrix:
// every output, input-gradient and weight-gradient element is summed straight
// from x, w and gy, over the geometry of csrc/nnlite/conv.cuh (stride, padding
// with top/left given and bottom/right implied by out_h/out_w, dilation).
//
//   forward        y[n,o,oh,ow]  = b[o] + sum_{c,i,j} w[o,c,i,j] x[n,c,h,w]
//                  h = oh*stride_h - pad_top + i*dilation_h (w alike)
//   backward-data  gx[n,c,h,w]   = sum_{o,i,j} w[o,c,i,j] gy[n,o,oh,ow]
//                  over the (oh, ow) whose tap (i, j) reads (h, w)
//   backward-wts   gw[o,c,i,j]   = sum_{n,oh,ow} gy[n,o,oh,ow] x[n,c,h,w]
//
// Every tap contributes a product, with 0 standing in for a position in the
// padding (forward, weight gradient) or for an output that does not exist
// (backward-data): so a NaN or infinite weight reaches every output of its
// channel pair, as it does through im2col's GEMM, and the host build, which
// reads zero-extended copies of its rows without a test per tap, performs the
// very same operations in the same order as one GPU thread: forward and
// backward-data give the same bits in both builds (g++, no FMA contraction;
// NVRTC contracts to FMA on a real GPU, which rounds differently).
// Each sum runs in a fixed order: forward over (c, i, j) row-major, then the
// bias; backward-data over o, then i and j DESCENDING (the host computes it as
// the forward convolution of gy with the flipped kernel). Nothing is
// scattered and nothing uses atomics.
#ifndef NNLITE_DIRECT_CONV_CUH
#define NNLITE_DIRECT_CONV_CUH

#include "nnlite/conv.cuh"

// One product-accumulate of every sum below, multiply then add, rounded
// separately: the operation both builds repeat (the host build on GCC vectors
// of lanes, acc_t, with a scalar weight broadcast to every lane).
template <typename acc_t, typename scalar_t>
NNL_HD NNL_INLINE acc_t direct_conv_madd(acc_t acc, scalar_t weight, acc_t value) {
  return acc + weight * value;
}

// x of one image at channel c and position (h, w), 0 in the padding.
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t direct_conv_input_value(const scalar_t* image, const conv_geometry& g,
                                                   int c, long long h, long long w) {
  if (h < 0 || h >= g.height || w < 0 || w >= g.width) return scalar_t(0);
  return image[((long long)c * g.height + h) * g.width + w];
}

// y[n, o, oh, ow] of one image: `filters` is w[o] (channels x kernel_h x kernel_w).
// Written with running pointers and one row test per tap row, and the tap
// loop kept rolled on the GPU: nvcc unrolled it 4 times and the thread needed
// 64 registers, past the TK1's 63 (47 rolled, ptxas -v, sm_75).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t direct_conv_output_element(const scalar_t* image,
                                                      const scalar_t* filters, scalar_t bias,
                                                      const conv_geometry& g, int oh, int ow) {
  const long long h0 = conv_input_position(oh, g.stride_h, g.pad_top, 0, g.dilation_h);
  const long long w0 = conv_input_position(ow, g.stride_w, g.pad_left, 0, g.dilation_w);
  const long long plane = (long long)g.height * g.width;
  scalar_t acc = 0;
  for (int c = 0; c < g.channels; ++c, image += plane) {
    long long h = h0;
    for (int i = 0; i < g.kernel_h; ++i, h += g.dilation_h) {
      const bool row_inside = h >= 0 && h < g.height;
      const scalar_t* row = image + h * g.width;
      long long w = w0;
#if defined(__CUDACC__)
#pragma unroll 1
#endif
      for (int j = 0; j < g.kernel_w; ++j, w += g.dilation_w, ++filters) {
        const scalar_t value = (row_inside && w >= 0 && w < g.width) ? row[w] : scalar_t(0);
        acc = direct_conv_madd(acc, *filters, value);
      }
    }
  }
  return acc + bias;
}

// gx[n, c, h, w] of one image: `gy_image` is gy[n] (out_channels x out_h x
// out_w), `weight` all of w (out_channels x channels x kernel_h x kernel_w).
// Taps run i, j descending: the order of the flipped kernel.
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t direct_conv_input_grad_element(const scalar_t* gy_image,
                                                          const scalar_t* weight,
                                                          const conv_geometry& g,
                                                          int out_channels, int c, int h,
                                                          int w) {
  const long long taps = (long long)g.kernel_h * g.kernel_w;
  scalar_t acc = 0;
  for (int o = 0; o < out_channels; ++o) {
    const scalar_t* plane = gy_image + (long long)o * g.out_h * g.out_w;
    const scalar_t* filter = weight + ((long long)o * g.channels + c) * taps;
    for (int i = g.kernel_h - 1; i >= 0; --i) {
      const int oh = conv_output_of_tap(h, g.pad_top, i, g.stride_h, g.dilation_h, g.out_h);
      for (int j = g.kernel_w - 1; j >= 0; --j) {
        const int ow = conv_output_of_tap(w, g.pad_left, j, g.stride_w, g.dilation_w, g.out_w);
        const scalar_t value =
            (oh >= 0 && ow >= 0) ? plane[(long long)oh * g.out_w + ow] : scalar_t(0);
        acc = direct_conv_madd(acc, filter[(long long)i * g.kernel_w + j], value);
      }
    }
  }
  return acc;
}

// Part of gw[o, c, i, j]: the terms of the flat output positions p = n *
// out_h * out_w + oh * out_w + ow in first, first + step, ... < images *
// out_h * out_w, in that order. The GPU gives each thread of a block one such
// strided share and adds the shares in a fixed tree (block_reduce).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t direct_conv_weight_grad_partial(const scalar_t* x, const scalar_t* gy,
                                                           const conv_geometry& g,
                                                           long long images, int out_channels,
                                                           int o, int c, int i, int j,
                                                           long long first, long long step) {
  const long long out_plane = (long long)g.out_h * g.out_w;
  const long long image_size = (long long)g.channels * g.height * g.width;
  const long long total = images * out_plane;
  scalar_t acc = 0;
  for (long long p = first; p < total; p += step) {
    const long long n = p / out_plane;
    const long long q = p - n * out_plane;
    const int oh = (int)(q / g.out_w);
    const int ow = (int)(q - (long long)oh * g.out_w);
    const long long h = conv_input_position(oh, g.stride_h, g.pad_top, i, g.dilation_h);
    const long long w = conv_input_position(ow, g.stride_w, g.pad_left, j, g.dilation_w);
    acc = direct_conv_madd(acc, gy[(n * out_channels + o) * out_plane + q],
                           direct_conv_input_value(x + n * image_size, g, c, h, w));
  }
  return acc;
}

#endif  // NNLITE_DIRECT_CONV_CUH
