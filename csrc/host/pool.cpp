// Host launcher of csrc/nnlite/pool.cuh: the same per-window / per-pixel math
// and the same arguments as csrc/cuda/pool.cu, OpenMP over the (image,
// channel) planes.
#include "nnlite/pool.cuh"

#include "host/checks.h"
#include "host/families.h"

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
    for (int oh = 0; oh < g.out_h; ++oh) {
      for (int ow = 0; ow < g.out_w; ++ow) {
        maxpool_window(in, g, oh, ow, out + oh * g.out_w + ow, index + oh * g.out_w + ow);
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
  const std::vector<int> rows = covering_ranges(shape.height, shape.pad_h, shape.kernel_h,
                                                shape.stride_h, shape.out_h);
  const std::vector<int> cols = covering_ranges(shape.width, shape.pad_w, shape.kernel_w,
                                                shape.stride_w, shape.out_w);
  py::gil_scoped_release no_gil;
  for_each_plane(call.planes, call.planes * call.in_plane, [&](long long plane) {
    const pool_geometry g = call.g;  // a local copy, as above
    const scalar_t* gy_plane = gy_data + plane * call.out_plane;
    const int* argmax_plane = argmax_data + plane * call.out_plane;
    scalar_t* out = gx_data + plane * call.in_plane;
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
