// Host launcher of csrc/nnlite/conv.cuh: the same math and the same arguments
// as csrc/cuda/conv.cu, OpenMP over the (image, channel) planes. Both kernels
// run by row segments here (the GPU's col2im gathers per pixel); the results
// are the same bits.
#include "nnlite/conv.cuh"

#include "host/checks.h"
#include "host/families.h"

#include <algorithm>

namespace py = pybind11;

namespace {

struct conv_call {
  conv_geometry g;
  long long images, planes, plane_size, out_plane, taps;
};

// Every integer in range for the int math of conv.cuh (positions along an axis
// are formed in 64 bits there; plane offsets, rows and taps in int), and both
// buffers of the sizes the integers imply.
conv_call checked_call(const char* op, const py::array& x, const py::array& cols,
                       long long images, long long channels, long long height,
                       long long width, long long kernel_h, long long kernel_w,
                       long long stride_h, long long stride_w, long long pad_top,
                       long long pad_left, long long dilation_h, long long dilation_w,
                       long long out_h, long long out_w) {
  require_range(op, "images", images, 0, LLONG_MAX);
  require_count(op, "channels", channels);
  require_conv_geometry(op, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_top,
                        pad_left, dilation_h, dilation_w, out_h, out_w);
  const long long taps = checked_product(op, "kernel_h * kernel_w", kernel_h, kernel_w);
  const long long rows = checked_product(op, "channels * kernel_h * kernel_w", channels, taps);
  require_range(op, "channels * kernel_h * kernel_w", rows, 0, INT_MAX);
  const long long plane_size = checked_product(op, "height * width", height, width);
  const long long out_plane = checked_product(op, "out_h * out_w", out_h, out_w);
  require_range(op, "out_h * out_w", out_plane, 0, INT_MAX);
  const long long planes = checked_product(op, "images * channels", images, channels);
  require_elements(op, "x", x, checked_product(op, "images * channels * H * W", planes,
                                               plane_size),
                   "images * channels * height * width");
  require_elements(op, "cols", cols,
                   checked_product(op, "cols size", rows,
                                   checked_product(op, "images * out_h * out_w", images,
                                                   out_plane)),
                   "(channels * kernel_h * kernel_w) * (images * out_h * out_w)");
  conv_call call;
  call.g = make_conv_geometry((int)channels, (int)height, (int)width, (int)kernel_h,
                              (int)kernel_w, (int)stride_h, (int)stride_w, (int)pad_top,
                              (int)pad_left, (int)dilation_h, (int)dilation_w, (int)out_h,
                              (int)out_w);
  call.images = images;
  call.planes = planes;
  call.plane_size = plane_size;
  call.out_plane = out_plane;
  call.taps = taps;
  return call;
}

#define CONV_PARAMS                                                                      \
  long long images, long long channels, long long height, long long width,               \
      long long kernel_h, long long kernel_w, long long stride_h, long long stride_w,    \
      long long pad_top, long long pad_left, long long dilation_h, long long dilation_w, \
      long long out_h, long long out_w
#define CONV_ARGS                                                                         \
  images, channels, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_top,       \
      pad_left, dilation_h, dilation_w, out_h, out_w

template <typename scalar_t>
void im2col(host_array<scalar_t> x, host_array<scalar_t> cols, CONV_PARAMS) {
  const conv_call call = checked_call("im2col", x, cols, CONV_ARGS);
  if (cols.size() == 0) return;
  const conv_geometry g = call.g;
  const scalar_t* x_data = x.data();
  scalar_t* cols_data = cols.mutable_data();
  const long long image_size = g.channels * call.plane_size;
  const long long row_stride = call.images * call.out_plane;
  py::gil_scoped_release no_gil;
  for_each_plane(call.planes, call.planes * call.taps * call.out_plane, [&](long long plane) {
    const long long n = plane / g.channels;
    const int c = static_cast<int>(plane % g.channels);
    const scalar_t* image = x_data + n * image_size;
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        const long long row = (c * (long long)g.kernel_h + i) * g.kernel_w + j;
        scalar_t* out = cols_data + row * row_stride + n * call.out_plane;
        for (int oh = 0; oh < g.out_h; ++oh) {
          im2col_row_segment(image, out, g, c, i, j, oh);
          out += g.out_w;
        }
      }
    }
  });
}

template <typename scalar_t>
void col2im(host_array<scalar_t> cols, host_array<scalar_t> x, CONV_PARAMS) {
  const conv_call call = checked_call("col2im", x, cols, CONV_ARGS);
  if (x.size() == 0) return;
  scalar_t* x_data = x.mutable_data();
  std::fill(x_data, x_data + x.size(), scalar_t(0));
  if (cols.size() == 0) return;  // no output position reads any pixel
  const conv_geometry g = call.g;
  const scalar_t* cols_data = cols.data();
  const long long row_stride = call.images * call.out_plane;
  py::gil_scoped_release no_gil;
  // One plane per worker, so no two workers add into one pixel; within a
  // plane the taps go in row-major order (col2im_add_row_segment says why).
  for_each_plane(call.planes, call.planes * call.taps * call.out_plane, [&](long long plane) {
    const long long n = plane / g.channels;
    const int c = static_cast<int>(plane % g.channels);
    scalar_t* out = x_data + plane * call.plane_size;
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        const long long row = (c * (long long)g.kernel_h + i) * g.kernel_w + j;
        const scalar_t* cols_row = cols_data + row * row_stride + n * call.out_plane;
        for (int oh = 0; oh < g.out_h; ++oh) col2im_add_row_segment(cols_row, out, g, i, j, oh);
      }
    }
  });
}

#define CONV_PY_ARGS                                                                     \
  py::arg("images"), py::arg("channels"), py::arg("height"), py::arg("width"),           \
      py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h"), py::arg("stride_w"), \
      py::arg("pad_top"), py::arg("pad_left"), py::arg("dilation_h"),                    \
      py::arg("dilation_w"), py::arg("out_h"), py::arg("out_w")

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("im2col_" + suffix).c_str(), &im2col<scalar_t>, py::arg("x").noconvert(),
        py::arg("cols").noconvert(), CONV_PY_ARGS,
        "Columns of x (images, C, H, W) into cols (C*kh*kw, images*out_h*out_w).");
  m.def(("col2im_" + suffix).c_str(), &col2im<scalar_t>, py::arg("cols").noconvert(),
        py::arg("x").noconvert(), CONV_PY_ARGS,
        "Adjoint of im2col: x[n, c, h, w] = sum of the column entries read from it.");
}

}  // namespace

void register_conv(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
