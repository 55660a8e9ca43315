// Host launcher of csrc/nnlite/conv.cuh: the same per-entry / per-pixel math as
// csrc/cuda/conv.cu, OpenMP over the (image, channel) planes.
#include "nnlite/conv.cuh"

#include "host/arrays.h"
#include "host/families.h"
#include "host/geometry.h"

#include <vector>

namespace py = pybind11;

namespace {

const long long kMinParallelElements = 1 << 15;

conv_geometry checked_geometry(const char* op, const py::array& image,
                               const py::array& cols, const py::tuple& params) {
  // params: (kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left,
  //          dilation_h, dilation_w, out_h, out_w)
  require_ndim(op, "x", image, 4);
  require_ndim(op, "cols", cols, 2);
  int p[10];
  unpack_ints(op, params, p, 10);
  require_positive(op, "kernel size, stride and dilation", p, 4);
  require_positive(op, "kernel size, stride and dilation", p + 6, 2);
  require_non_negative(op, "padding and output size", p + 4, 2);
  require_non_negative(op, "padding and output size", p + 8, 2);
  const long long rows = image.shape(1) * (long long)p[0] * p[1];
  const long long width = image.shape(0) * (long long)p[8] * p[9];
  if (cols.shape(0) != rows || cols.shape(1) != width || image.shape(2) > INT_MAX ||
      image.shape(3) > INT_MAX || rows > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": cols has shape " + shape_string(cols) +
                                "; expected (" + std::to_string(rows) + ", " +
                                std::to_string(width) + ") for x of shape " +
                                shape_string(image));
  }
  return make_conv_geometry(static_cast<int>(image.shape(1)), static_cast<int>(image.shape(2)),
                            static_cast<int>(image.shape(3)), p[0], p[1], p[2], p[3], p[4],
                            p[5], p[6], p[7], p[8], p[9]);
}

template <typename scalar_t>
void im2col(host_array<scalar_t> x, host_array<scalar_t> cols, py::tuple params) {
  const conv_geometry g = checked_geometry("im2col", x, cols, params);
  const scalar_t* x_data = x.data();
  scalar_t* cols_data = cols.mutable_data();
  const long long images = x.shape(0);
  const long long planes = images * g.channels;
  const long long image_size = (long long)g.channels * g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  const long long row_stride = images * out_plane;
  const long long taps = (long long)g.kernel_h * g.kernel_w;
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(static) if (planes * taps * out_plane >= kMinParallelElements)
  for (long long plane = 0; plane < planes; ++plane) {
    const long long n = plane / g.channels;
    const int c = static_cast<int>(plane % g.channels);
    const scalar_t* image = x_data + n * image_size;
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        const long long row = (c * (long long)g.kernel_h + i) * g.kernel_w + j;
        scalar_t* out = cols_data + row * row_stride + n * out_plane;
        for (int oh = 0; oh < g.out_h; ++oh) {
          im2col_row_segment(image, out, g, c, i, j, oh);
          out += g.out_w;
        }
      }
    }
  }
}

// For every position along one axis, its (tap, output) pairs in ascending tap
// order (conv_output_of_tap), `kernel` slots per position, and their count.
struct tap_table {
  std::vector<int> taps, outs, counts;
  tap_table(int size, int pad, int kernel, int stride, int dilation, int out)
      : taps(size * kernel), outs(size * kernel), counts(size) {
    for (int pos = 0; pos < size; ++pos) {
      int count = 0;
      for (int tap = 0; tap < kernel; ++tap) {
        const int o = conv_output_of_tap(pos, pad, tap, stride, dilation, out);
        if (o < 0) continue;
        taps[pos * kernel + count] = tap;
        outs[pos * kernel + count] = o;
        ++count;
      }
      counts[pos] = count;
    }
  }
};

template <typename scalar_t>
void col2im(host_array<scalar_t> cols, host_array<scalar_t> x, py::tuple params) {
  const conv_geometry g = checked_geometry("col2im", x, cols, params);
  const scalar_t* cols_data = cols.data();
  scalar_t* x_data = x.mutable_data();
  const long long images = x.shape(0);
  const long long planes = images * g.channels;
  const long long out_plane = (long long)g.out_h * g.out_w;
  const long long row_stride = images * out_plane;
  const long long plane_size = (long long)g.height * g.width;
  const tap_table rows(g.height, g.pad_top, g.kernel_h, g.stride_h, g.dilation_h, g.out_h);
  const tap_table cols_of(g.width, g.pad_left, g.kernel_w, g.stride_w, g.dilation_w, g.out_w);
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(static) if (planes * plane_size >= kMinParallelElements)
  for (long long plane = 0; plane < planes; ++plane) {
    const long long n = plane / g.channels;
    const int c = static_cast<int>(plane % g.channels);
    const scalar_t* image_cols = cols_data + n * out_plane;
    scalar_t* out = x_data + plane * plane_size;
    for (int h = 0; h < g.height; ++h) {
      const int* h_taps = &rows.taps[h * g.kernel_h];
      const int* h_outs = &rows.outs[h * g.kernel_h];
      for (int w = 0; w < g.width; ++w) {
        out[h * g.width + w] = col2im_pixel_from_taps(
            image_cols, row_stride, g, c, h_taps, h_outs, rows.counts[h],
            &cols_of.taps[w * g.kernel_w], &cols_of.outs[w * g.kernel_w], cols_of.counts[w]);
      }
    }
  }
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const char* suffix) {
  m.def((std::string("im2col_") + suffix).c_str(), &im2col<scalar_t>, py::arg("x").noconvert(),
        py::arg("cols").noconvert(), py::arg("params"),
        "Columns of x (N, C, H, W) into cols (C*kh*kw, N*out_h*out_w); params = (kh, kw, "
        "stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, out_h, out_w).");
  m.def((std::string("col2im_") + suffix).c_str(), &col2im<scalar_t>,
        py::arg("cols").noconvert(), py::arg("x").noconvert(), py::arg("params"),
        "Adjoint of im2col: x[n, c, h, w] = sum of the column entries read from it.");
}

}  // namespace

void register_conv(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
