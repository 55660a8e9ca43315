// Max and average pooling over one (height, width) plane: the math only.
//
// Window (oh, ow) covers rows oh * stride_h - pad_h ... + kernel_h - 1 and the
// matching columns; out_h / out_w come from nnlite/kernels/shapes.py (ceil
// mode included), so the last window may reach past the padded input.
//
// Max pooling ignores positions outside the input (implicit -inf padding).
// The first maximum in row-major window order wins a tie; a NaN wins over any
// number (the first NaN among several), as PyTorch propagates NaN. The argmax
// saved is h * width + w within the plane, or -1 for a window with no input
// position (shapes.py's rule never makes one; -1 keeps the backward exact).
//
// Average pooling divides by the window clipped to the padded input
// (height + pad_h, width + pad_w) when count_include_pad, else by the window
// clipped to the input, as PyTorch does.
//
// Both backwards GATHER: each input pixel walks the windows that cover it in
// row-major order, so overlapping windows are summed without atomics and in
// the same order on every run.
#ifndef NNLITE_POOL_CUH
#define NNLITE_POOL_CUH

#include "nnlite/portable.cuh"

struct pool_geometry {
  int height, width;
  int kernel_h, kernel_w;
  int stride_h, stride_w;
  int pad_h, pad_w;
  int out_h, out_w;
};

NNL_HD NNL_INLINE pool_geometry make_pool_geometry(int height, int width, int kernel_h,
                                                   int kernel_w, int stride_h, int stride_w,
                                                   int pad_h, int pad_w, int out_h, int out_w) {
  pool_geometry g;
  g.height = height;
  g.width = width;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  g.out_h = out_h;
  g.out_w = out_w;
  return g;
}

// keep ? *v : 0. Host compilers turn the ternary on a float into a branch,
// which mispredicts on real argmax patterns, so the host build masks the bit
// pattern instead; nvcc already emits a select for the ternary, and the mask
// would cost registers the TK1 budget cannot spare. Both forms give the same
// bits (tests run the host form here and the CUDA form on a GPU).
#if defined(__CUDACC__)
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t pool_keep_or_zero(bool keep, const scalar_t* v) {
  return keep ? *v : scalar_t(0);  // a predicated load
}
#else
inline float pool_keep_or_zero(bool keep, const float* v) {
  union { float value; unsigned int bits; } u;
  u.value = *v;
  u.bits &= 0u - (unsigned int)keep;
  return u.value;
}

inline double pool_keep_or_zero(bool keep, const double* v) {
  union { double value; unsigned long long bits; } u;
  u.value = *v;
  u.bits &= 0ull - (unsigned long long)keep;
  return u.value;
}
#endif

// Output rows whose windows cover input row `pos`: [*first, *last).
NNL_HD NNL_INLINE void pool_covering_range(int pos, int pad, int kernel, int stride, int out,
                                           int* first, int* last) {
  const int offset = pos + pad;  // position in the padded input
  *first = offset < kernel ? 0 : (offset - kernel) / stride + 1;
  *last = nnl_min(offset / stride + 1, out);
}

template <typename scalar_t>
NNL_HD NNL_INLINE void maxpool_window(const scalar_t* plane, const pool_geometry& g, int oh,
                                      int ow, scalar_t* value, int* index) {
  const int h_start = oh * g.stride_h - g.pad_h;
  const int w_start = ow * g.stride_w - g.pad_w;
  const int h_first = nnl_max(h_start, 0);
  const int w_first = nnl_max(w_start, 0);
  const int h_end = nnl_min(h_start + g.kernel_h, g.height);
  const int w_end = nnl_min(w_start + g.kernel_w, g.width);
  if (h_first >= h_end || w_first >= w_end) {
    *value = nnl_limits<scalar_t>::lowest();
    *index = -1;
    return;
  }
  int best_index = h_first * g.width + w_first;
  scalar_t best = plane[best_index];
  bool any_nan = false;
  for (int h = h_first; h < h_end; ++h) {
    const scalar_t* row = plane + h * g.width;
    for (int w = w_first; w < w_end; ++w) {
      const scalar_t v = row[w];
      // Strict > keeps the first maximum. Written as a mask so compilers emit
      // selects, not a branch that mispredicts half the time on real data.
      const int take = -(int)(v > best);
      best_index = ((h * g.width + w) & take) | (best_index & ~take);
      best = v > best ? v : best;
      any_nan |= v != v;
    }
  }
  if (any_nan) {  // rare: the first NaN of the window wins, as PyTorch propagates NaN
    for (int h = h_end - 1; h >= h_first; --h) {
      for (int w = w_end - 1; w >= w_first; --w) {
        const scalar_t v = plane[h * g.width + w];
        if (v != v) {
          best = v;
          best_index = h * g.width + w;
        }
      }
    }
  }
  *value = best;
  *index = best_index;
}

// An interior window (entirely inside the plane) of a size fixed at compile
// time, starting at in-plane offset `start`: maxpool_window's first-maximum
// rule, unrolled. It does not resolve NaN: it returns nonzero if it saw one,
// and the caller then redoes the window with maxpool_window. (Plain ints and
// selects, so that a host loop over windows vectorises.)
template <int KH, int KW, typename scalar_t>
NNL_HD NNL_INLINE int maxpool_interior_window(const scalar_t* plane, int width, int start,
                                              scalar_t* value, int* index) {
  int best_index = start;
  scalar_t best = plane[start];
  int any_nan = 0;
  for (int dh = 0; dh < KH; ++dh) {
    for (int dw = 0; dw < KW; ++dw) {
      const int at = start + dh * width + dw;
      const scalar_t v = plane[at];
      const int take = -(int)(v > best);
      best_index = (at & take) | (best_index & ~take);
      best = v > best ? v : best;
      any_nan |= (int)(v != v);
    }
  }
  *value = best;
  *index = best_index;
  return any_nan;
}

// Gradient of input pixel `index` (= h * width + w) given the windows that
// cover it, [oh_first, oh_last) x [ow_first, ow_last): the sum of gy over
// those whose argmax it is. The host build precomputes the ranges per row and
// column; the CUDA build computes them per pixel (maxpool_backward_pixel).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t maxpool_backward_gather(const scalar_t* gy_plane,
                                                   const int* argmax_plane, int out_w,
                                                   int index, int oh_first, int oh_last,
                                                   int ow_first, int ow_last) {
  scalar_t sum = 0;
  for (int oh = oh_first; oh < oh_last; ++oh) {
    for (int ow = ow_first; ow < ow_last; ++ow) {
      const int o = oh * out_w + ow;
      sum += pool_keep_or_zero(argmax_plane[o] == index, gy_plane + o);
    }
  }
  return sum;
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t maxpool_backward_pixel(const scalar_t* gy_plane,
                                                  const int* argmax_plane,
                                                  const pool_geometry& g, int h, int w) {
  int oh_first, oh_last, ow_first, ow_last;
  pool_covering_range(h, g.pad_h, g.kernel_h, g.stride_h, g.out_h, &oh_first, &oh_last);
  pool_covering_range(w, g.pad_w, g.kernel_w, g.stride_w, g.out_w, &ow_first, &ow_last);
  return maxpool_backward_gather(gy_plane, argmax_plane, g.out_w, h * g.width + w, oh_first,
                                 oh_last, ow_first, ow_last);
}

// The divisor of average-pool window (oh, ow): 64-bit, as a huge kernel over
// a padded input can cover more than 2^31 positions.
NNL_HD NNL_INLINE long long avgpool_divisor(const pool_geometry& g, int oh, int ow,
                                            int count_include_pad) {
  int h_start = oh * g.stride_h - g.pad_h;
  int w_start = ow * g.stride_w - g.pad_w;
  int h_end = nnl_min(h_start + g.kernel_h, g.height + g.pad_h);
  int w_end = nnl_min(w_start + g.kernel_w, g.width + g.pad_w);
  if (!count_include_pad) {
    h_start = nnl_max(h_start, 0);
    w_start = nnl_max(w_start, 0);
    h_end = nnl_min(h_end, g.height);
    w_end = nnl_min(w_end, g.width);
  }
  return (long long)(h_end - h_start) * (w_end - w_start);
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t avgpool_window(const scalar_t* plane, const pool_geometry& g, int oh,
                                          int ow, int count_include_pad) {
  const int h_start = oh * g.stride_h - g.pad_h;
  const int w_start = ow * g.stride_w - g.pad_w;
  const int h_end = nnl_min(h_start + g.kernel_h, g.height);
  const int w_end = nnl_min(w_start + g.kernel_w, g.width);
  scalar_t sum = 0;
  for (int h = nnl_max(h_start, 0); h < h_end; ++h) {
    for (int w = nnl_max(w_start, 0); w < w_end; ++w) sum += plane[h * g.width + w];
  }
  const long long divisor = avgpool_divisor(g, oh, ow, count_include_pad);
  return divisor > 0 ? sum / scalar_t(divisor) : scalar_t(0);
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t avgpool_backward_pixel(const scalar_t* gy_plane,
                                                  const pool_geometry& g, int h, int w,
                                                  int count_include_pad) {
  int oh_first, oh_last, ow_first, ow_last;
  pool_covering_range(h, g.pad_h, g.kernel_h, g.stride_h, g.out_h, &oh_first, &oh_last);
  pool_covering_range(w, g.pad_w, g.kernel_w, g.stride_w, g.out_w, &ow_first, &ow_last);
  scalar_t sum = 0;
  for (int oh = oh_first; oh < oh_last; ++oh) {
    for (int ow = ow_first; ow < ow_last; ++ow) {
      const long long divisor = avgpool_divisor(g, oh, ow, count_include_pad);
      if (divisor > 0) sum += gy_plane[oh * g.out_w + ow] / scalar_t(divisor);
    }
  }
  return sum;
}

#endif  // NNLITE_POOL_CUH
