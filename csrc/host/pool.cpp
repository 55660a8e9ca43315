// Host launcher of csrc/nnlite/pool.cuh: the same per-window / per-pixel math
// and the same arguments as csrc/cuda/pool.cu, OpenMP over the (image,
// channel) planes. Max pooling has host fast paths for the seeds' windows
// (2x2 stride 2, 2x1, 3x3 stride 2): interior windows unrolled in loops that
// vectorise, and a window-by-window backward where windows do not overlap.
#include "nnlite/pool.cuh"

#include "host/checks.h"
#include "host/families.h"
#include "host/vectorize.h"

#include <algorithm>
#include <vector>

namespace py = pybind11;

namespace {

// The geometry integers of every pool entry point, checked so that each index
// the .cuh math forms in int (window starts and ends, in-plane offsets, the
// int32 argmax) fits one, and each buffer holds what they imply.
struct pool_call {
  pool_geometry g;
  long long planes, in_plane, out_plane;
};

pool_call checked_call(const char* op, long long planes, long long height, long long width,
                       long long kernel_h, long long kernel_w, long long stride_h,
                       long long stride_w, long long pad_h, long long pad_w, long long out_h,
                       long long out_w, const py::array& input, const char* input_name,
                       const py::array& pooled, const char* pooled_name) {
  require_range(op, "planes", planes, 0, LLONG_MAX);
  require_count(op, "height", height);
  require_count(op, "width", width);
  require_positive_int(op, "kernel_h", kernel_h);
  require_positive_int(op, "kernel_w", kernel_w);
  require_positive_int(op, "stride_h", stride_h);
  require_positive_int(op, "stride_w", stride_w);
  require_count(op, "pad_h", pad_h);
  require_count(op, "pad_w", pad_w);
  require_count(op, "out_h", out_h);
  require_count(op, "out_w", out_w);
  const long long in_plane = checked_product(op, "height * width", height, width);
  const long long out_plane = checked_product(op, "out_h * out_w", out_h, out_w);
  require_range(op, "height * width", in_plane, 0, INT_MAX);
  require_range(op, "out_h * out_w", out_plane, 0, INT_MAX);
  // The last window's end and the padded extent, both formed in int.
  if (out_h > 0) require_range(op, "(out_h - 1) * stride_h + kernel_h",
                               (out_h - 1) * stride_h + kernel_h, 0, INT_MAX);
  if (out_w > 0) require_range(op, "(out_w - 1) * stride_w + kernel_w",
                               (out_w - 1) * stride_w + kernel_w, 0, INT_MAX);
  require_range(op, "height + pad_h", height + pad_h, 0, INT_MAX);
  require_range(op, "width + pad_w", width + pad_w, 0, INT_MAX);
  require_elements(op, input_name, input, checked_product(op, "planes * H * W", planes, in_plane),
                   "planes * height * width");
  require_elements(op, pooled_name, pooled,
                   checked_product(op, "planes * out_h * out_w", planes, out_plane),
                   "planes * out_h * out_w");
  pool_call call;
  call.g = make_pool_geometry((int)height, (int)width, (int)kernel_h, (int)kernel_w,
                              (int)stride_h, (int)stride_w, (int)pad_h, (int)pad_w, (int)out_h,
                              (int)out_w);
  call.planes = planes;
  call.in_plane = in_plane;
  call.out_plane = out_plane;
  return call;
}

#define POOL_PARAMS                                                                   \
  long long planes, long long height, long long width, long long kernel_h,            \
      long long kernel_w, long long stride_h, long long stride_w, long long pad_h,    \
      long long pad_w, long long out_h, long long out_w
#define POOL_ARGS \
  planes, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w

// Interior windows ow in [begin, end) of one output row, whose first window
// starts at in-plane offset `start`: nonzero if one held a NaN. The stride is
// a template argument and the pointers restrict, so that the loop vectorises
// (an AVX2 copy beside the baseline one, as vectorize.h explains).
template <int KH, int KW, int SW, typename scalar_t>
NNL_HOST_VECTOR_CLONES int maxpool_interior_row(const scalar_t* __restrict__ in, int width,
                                                int start, int count,
                                                scalar_t* __restrict__ out,
                                                int* __restrict__ index) {
  int any_nan = 0;
  for (int i = 0; i < count; ++i) {
    any_nan |= maxpool_interior_window<KH, KW>(in, width, start + i * SW, out + i, index + i);
  }
  return any_nan;
}

// One plane of max pooling with a KH x KW window and column stride SW:
// interior windows through maxpool_interior_row (the seeds' 2x2 pools: 5-7x
// faster than the general window loop, 2x1: 2.5x; one thread), the clipped
// ones at the edges and any row holding a NaN through maxpool_window.
template <int KH, int KW, int SW, typename scalar_t>
void maxpool_plane(const scalar_t* in, const pool_geometry& g, scalar_t* out, int* index) {
  // Interior columns: ow in [ow_lo, ow_hi), where w_start >= 0 and w_start + KW <= width.
  const int ow_lo = nnl_min((g.pad_w + SW - 1) / SW, g.out_w);
  const int ow_hi = g.width + g.pad_w < KW
                        ? ow_lo
                        : nnl_max(ow_lo, nnl_min((g.width + g.pad_w - KW) / SW + 1, g.out_w));
  for (int oh = 0; oh < g.out_h; ++oh) {
    scalar_t* out_row = out + oh * g.out_w;
    int* index_row = index + oh * g.out_w;
    const int h_start = oh * g.stride_h - g.pad_h;
    const bool inside = h_start >= 0 && h_start + KH <= g.height;
    const int lo = inside ? ow_lo : g.out_w, hi = inside ? ow_hi : g.out_w;
    for (int ow = 0; ow < lo; ++ow) maxpool_window(in, g, oh, ow, out_row + ow, index_row + ow);
    const int any_nan = hi > lo ? maxpool_interior_row<KH, KW, SW>(
                                      in, g.width, h_start * g.width + lo * SW - g.pad_w, hi - lo,
                                      out_row + lo, index_row + lo)
                                : 0;
    const int redo_from = any_nan ? lo : hi;
    for (int ow = redo_from; ow < g.out_w; ++ow) {
      maxpool_window(in, g, oh, ow, out_row + ow, index_row + ow);
    }
  }
}

template <typename scalar_t>
void maxpool_forward(host_array<scalar_t> x, host_array<scalar_t> y, host_array<int> argmax,
                     POOL_PARAMS) {
  const pool_call call = checked_call("maxpool_forward", POOL_ARGS, x, "x", y, "y");
  require_elements("maxpool_forward", "argmax", argmax, y.size(), "the size of y");
  if (call.out_plane == 0 || call.planes == 0) return;
  const scalar_t* x_data = x.data();
  scalar_t* y_data = y.mutable_data();
  int* argmax_data = argmax.mutable_data();
  py::gil_scoped_release no_gil;
  for_each_plane(call.planes, call.planes * call.in_plane, [&](long long plane) {
    // A local copy: the loops' int writes (argmax) cannot alias a local, so
    // the geometry stays in registers (read through the closure, it was
    // reloaded at every window: max pooling 13% slower).
    const pool_geometry g = call.g;
    const scalar_t* in = x_data + plane * call.in_plane;
    scalar_t* out = y_data + plane * call.out_plane;
    int* index = argmax_data + plane * call.out_plane;
    if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_w == 2) {
      maxpool_plane<2, 2, 2>(in, g, out, index);
    } else if (g.kernel_h == 2 && g.kernel_w == 1 && g.stride_w == 1) {
      maxpool_plane<2, 1, 1>(in, g, out, index);
    } else if (g.kernel_h == 3 && g.kernel_w == 3 && g.stride_w == 2) {
      maxpool_plane<3, 3, 2>(in, g, out, index);
    } else {
      for (int oh = 0; oh < g.out_h; ++oh) {
        for (int ow = 0; ow < g.out_w; ++ow) {
          maxpool_window(in, g, oh, ow, out + oh * g.out_w + ow, index + oh * g.out_w + ow);
        }
      }
    }
  });
}

// [first, last) of the output positions covering each input position along one
// axis, computed once per call instead of once per pixel (integer divisions).
std::vector<int> covering_ranges(int size, int pad, int kernel, int stride, int out) {
  std::vector<int> ranges(2 * (size_t)size);
  for (int pos = 0; pos < size; ++pos) {
    pool_covering_range(pos, pad, kernel, stride, out, &ranges[2 * (size_t)pos],
                        &ranges[2 * (size_t)pos + 1]);
  }
  return ranges;
}

// The gradient of count interior windows of one output row whose windows do
// not overlap (the first starting at in-plane offset `start`): each position
// a window covers gets the window's gy if it is its argmax, else 0. No search
// for the windows covering a pixel and no branch on where the argmax lies; a
// stray argmax matches nothing, as in the gather. Vectorises as
// maxpool_interior_row does.
template <int KH, int KW, int SW, typename scalar_t>
NNL_HOST_VECTOR_CLONES void interior_window_gradients(const scalar_t* __restrict__ gy,
                                                      const int* __restrict__ argmax, int width,
                                                      int start, int count,
                                                      scalar_t* __restrict__ out) {
  for (int i = 0; i < count; ++i) {
    const int at = argmax[i];
    for (int dh = 0; dh < KH; ++dh) {
      for (int dw = 0; dw < KW; ++dw) {
        const int p = start + i * SW + dh * width + dw;
        out[p] = pool_keep_or_zero(at == p, gy + i);
      }
    }
  }
}

// The same for a whole plane and any window: clipped windows position by
// position; rows of interior windows through interior_window_gradients when
// the window and column stride are KH x KW and SW (KH = 0: none are).
template <int KH, int KW, int SW, typename scalar_t>
void window_gradients(const scalar_t* gy_plane, const int* argmax_plane, const pool_geometry& g,
                      scalar_t* out) {
  const int ow_lo = KH > 0 ? nnl_min((g.pad_w + SW - 1) / SW, g.out_w) : g.out_w;
  const int ow_hi = KH == 0 || g.width + g.pad_w < KW
                        ? ow_lo
                        : nnl_max(ow_lo, nnl_min((g.width + g.pad_w - KW) / SW + 1, g.out_w));
  for (int oh = 0; oh < g.out_h; ++oh) {
    const int h_start = oh * g.stride_h - g.pad_h;
    const int h_first = nnl_max(h_start, 0);
    const int h_end = nnl_min(h_start + g.kernel_h, g.height);
    const bool inside = KH > 0 && h_first == h_start && h_end == h_start + KH;
    const int lo = inside ? ow_lo : g.out_w, hi = inside ? ow_hi : g.out_w;
    if (hi > lo) {
      interior_window_gradients<KH, KW, SW>(gy_plane + oh * g.out_w + lo,
                                            argmax_plane + oh * g.out_w + lo, g.width,
                                            h_start * g.width + lo * SW - g.pad_w, hi - lo, out);
    }
    for (int ow = 0; ow < g.out_w; ++ow) {
      if (ow == lo) ow = hi;
      if (ow >= g.out_w) break;
      const int o = oh * g.out_w + ow;
      const int at = argmax_plane[o];
      const int w_start = ow * g.stride_w - g.pad_w;
      for (int h = h_first; h < h_end; ++h) {
        for (int w = nnl_max(w_start, 0); w < nnl_min(w_start + g.kernel_w, g.width); ++w) {
          const int p = h * g.width + w;
          out[p] = pool_keep_or_zero(at == p, gy_plane + o);
        }
      }
    }
  }
}

template <typename scalar_t>
void maxpool_backward(host_array<scalar_t> gy, host_array<int> argmax, host_array<scalar_t> gx,
                      POOL_PARAMS) {
  const pool_call call = checked_call("maxpool_backward", POOL_ARGS, gx, "gx", gy, "gy");
  require_elements("maxpool_backward", "argmax", argmax, gy.size(), "the size of gy");
  if (call.in_plane == 0 || call.planes == 0) return;
  const scalar_t* gy_data = gy.data();
  const int* argmax_data = argmax.data();
  scalar_t* gx_data = gx.mutable_data();
  const pool_geometry& shape = call.g;
  // Windows that do not overlap (stride >= kernel, as in every seed network):
  // a pixel lies in at most one window, so the gather's sum has at most one
  // term, and each window can write its own positions (window_gradients):
  // 6-10x faster than the per-pixel search of the gather (one thread).
  const bool disjoint = shape.stride_h >= shape.kernel_h && shape.stride_w >= shape.kernel_w;
  std::vector<int> rows, cols;  // the gather's covering ranges
  if (!disjoint) {
    rows = covering_ranges(shape.height, shape.pad_h, shape.kernel_h, shape.stride_h,
                           shape.out_h);
    cols = covering_ranges(shape.width, shape.pad_w, shape.kernel_w, shape.stride_w,
                           shape.out_w);
  }
  py::gil_scoped_release no_gil;
  for_each_plane(call.planes, call.planes * call.in_plane, [&](long long plane) {
    const pool_geometry g = call.g;  // a local copy, as above
    const scalar_t* gy_plane = gy_data + plane * call.out_plane;
    const int* argmax_plane = argmax_data + plane * call.out_plane;
    scalar_t* out = gx_data + plane * call.in_plane;
    if (disjoint) {
      // Positions no window covers (a floor-mode remainder, the gaps of a
      // stride larger than the kernel) stay 0.
      std::fill(out, out + call.in_plane, scalar_t(0));
      if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_w == 2) {
        window_gradients<2, 2, 2>(gy_plane, argmax_plane, g, out);
      } else if (g.kernel_h == 2 && g.kernel_w == 1 && g.stride_w == 1) {
        window_gradients<2, 1, 1>(gy_plane, argmax_plane, g, out);
      } else {
        window_gradients<0, 0, 1>(gy_plane, argmax_plane, g, out);
      }
      return;
    }
    for (int h = 0; h < g.height; ++h) {
      for (int w = 0; w < g.width; ++w) {
        out[h * g.width + w] = maxpool_backward_gather(
            gy_plane, argmax_plane, g.out_w, h * g.width + w, rows[2 * h], rows[2 * h + 1],
            cols[2 * w], cols[2 * w + 1]);
      }
    }
  });
}

template <typename scalar_t>
void avgpool_forward(host_array<scalar_t> x, host_array<scalar_t> y, POOL_PARAMS,
                     long long count_include_pad) {
  const pool_call call = checked_call("avgpool_forward", POOL_ARGS, x, "x", y, "y");
  require_range("avgpool_forward", "count_include_pad", count_include_pad, 0, 1);
  if (call.out_plane == 0 || call.planes == 0) return;
  const int include_pad = (int)count_include_pad;
  const scalar_t* x_data = x.data();
  scalar_t* y_data = y.mutable_data();
  py::gil_scoped_release no_gil;
  for_each_plane(call.planes, call.planes * call.in_plane, [&](long long plane) {
    const pool_geometry g = call.g;  // a local copy, as above
    const scalar_t* in = x_data + plane * call.in_plane;
    scalar_t* out = y_data + plane * call.out_plane;
    for (int oh = 0; oh < g.out_h; ++oh) {
      for (int ow = 0; ow < g.out_w; ++ow) {
        out[oh * g.out_w + ow] = avgpool_window(in, g, oh, ow, include_pad);
      }
    }
  });
}

template <typename scalar_t>
void avgpool_backward(host_array<scalar_t> gy, host_array<scalar_t> gx, POOL_PARAMS,
                      long long count_include_pad) {
  const pool_call call = checked_call("avgpool_backward", POOL_ARGS, gx, "gx", gy, "gy");
  require_range("avgpool_backward", "count_include_pad", count_include_pad, 0, 1);
  if (call.in_plane == 0 || call.planes == 0) return;
  const int include_pad = (int)count_include_pad;
  const scalar_t* gy_data = gy.data();
  scalar_t* gx_data = gx.mutable_data();
  py::gil_scoped_release no_gil;
  for_each_plane(call.planes, call.planes * call.in_plane, [&](long long plane) {
    const pool_geometry g = call.g;  // a local copy, as above
    const scalar_t* gy_plane = gy_data + plane * call.out_plane;
    scalar_t* out = gx_data + plane * call.in_plane;
    for (int h = 0; h < g.height; ++h) {
      for (int w = 0; w < g.width; ++w) {
        out[h * g.width + w] = avgpool_backward_pixel(gy_plane, g, h, w, include_pad);
      }
    }
  });
}

#define POOL_PY_ARGS                                                                  \
  py::arg("planes"), py::arg("height"), py::arg("width"), py::arg("kernel_h"),        \
      py::arg("kernel_w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"), \
      py::arg("pad_w"), py::arg("out_h"), py::arg("out_w")

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("maxpool_forward_" + suffix).c_str(), &maxpool_forward<scalar_t>,
        py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("argmax").noconvert(),
        POOL_PY_ARGS, "Max pool x (planes, H, W) into y and the int32 in-plane argmax.");
  m.def(("maxpool_backward_" + suffix).c_str(), &maxpool_backward<scalar_t>,
        py::arg("gy").noconvert(), py::arg("argmax").noconvert(), py::arg("gx").noconvert(),
        POOL_PY_ARGS, "Gradient of max pooling into gx, gathered per input pixel.");
  m.def(("avgpool_forward_" + suffix).c_str(), &avgpool_forward<scalar_t>,
        py::arg("x").noconvert(), py::arg("y").noconvert(), POOL_PY_ARGS,
        py::arg("count_include_pad"), "Average pool x (planes, H, W) into y.");
  m.def(("avgpool_backward_" + suffix).c_str(), &avgpool_backward<scalar_t>,
        py::arg("gy").noconvert(), py::arg("gx").noconvert(), POOL_PY_ARGS,
        py::arg("count_include_pad"),
        "Gradient of average pooling into gx, gathered per input pixel.");
}

}  // namespace

void register_pool(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
