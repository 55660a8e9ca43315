// Host launcher of csrc/nnlite/pool.cuh: the same per-window / per-pixel math as
// csrc/cuda/pool.cu, OpenMP over the (image, channel) planes.
#include "nnlite/pool.cuh"

#include "host/arrays.h"
#include "host/families.h"
#include "host/geometry.h"

#include <vector>

namespace py = pybind11;

namespace {

const long long kMinParallelElements = 1 << 15;

// params: (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w); the input is
// `image` (N, C, H, W), the pooled side `pooled` (N, C, out_h, out_w).
pool_geometry checked_geometry(const char* op, const py::array& image, const char* pooled_name,
                               const py::array& pooled, const py::tuple& params) {
  require_ndim(op, "x", image, 4);
  require_ndim(op, pooled_name, pooled, 4);
  int p[6];
  unpack_ints(op, params, p, 6);
  require_positive(op, "kernel size and stride", p, 4);
  require_non_negative(op, "padding", p + 4, 2);
  if (pooled.shape(0) != image.shape(0) || pooled.shape(1) != image.shape(1) ||
      image.shape(2) * image.shape(3) > INT_MAX || pooled.shape(2) * pooled.shape(3) > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": " + pooled_name + " has shape " +
                                shape_string(pooled) + " and x " + shape_string(image) +
                                "; expected the same (N, C) and planes of at most " +
                                std::to_string(INT_MAX) + " elements");
  }
  return make_pool_geometry(static_cast<int>(image.shape(2)), static_cast<int>(image.shape(3)),
                            p[0], p[1], p[2], p[3], p[4], p[5],
                            static_cast<int>(pooled.shape(2)), static_cast<int>(pooled.shape(3)));
}

long long planes_of(const py::array& image) { return image.shape(0) * image.shape(1); }

template <typename scalar_t>
void maxpool_forward(host_array<scalar_t> x, host_array<scalar_t> y, host_array<int> argmax,
                     py::tuple params) {
  const pool_geometry g = checked_geometry("maxpool_forward", x, "y", y, params);
  require_same_shape("maxpool_forward", "argmax", argmax, "y", y);
  const scalar_t* x_data = x.data();
  scalar_t* y_data = y.mutable_data();
  int* argmax_data = argmax.mutable_data();
  const long long planes = planes_of(x);
  const long long in_plane = (long long)g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(static) if (planes * in_plane >= kMinParallelElements)
  for (long long plane = 0; plane < planes; ++plane) {
    const scalar_t* in = x_data + plane * in_plane;
    scalar_t* out = y_data + plane * out_plane;
    int* index = argmax_data + plane * out_plane;
    for (int oh = 0; oh < g.out_h; ++oh) {
      for (int ow = 0; ow < g.out_w; ++ow) {
        maxpool_window(in, g, oh, ow, out + oh * g.out_w + ow, index + oh * g.out_w + ow);
      }
    }
  }
}

// [first, last) of the output positions covering each input position along one
// axis, computed once per call instead of once per pixel (integer divisions).
std::vector<int> covering_ranges(int size, int pad, int kernel, int stride, int out) {
  std::vector<int> ranges(2 * size);
  for (int pos = 0; pos < size; ++pos) {
    pool_covering_range(pos, pad, kernel, stride, out, &ranges[2 * pos], &ranges[2 * pos + 1]);
  }
  return ranges;
}

template <typename scalar_t>
void maxpool_backward(host_array<scalar_t> gy, host_array<int> argmax, host_array<scalar_t> gx,
                      py::tuple params) {
  const pool_geometry g = checked_geometry("maxpool_backward", gx, "gy", gy, params);
  require_same_shape("maxpool_backward", "argmax", argmax, "gy", gy);
  const scalar_t* gy_data = gy.data();
  const int* argmax_data = argmax.data();
  scalar_t* gx_data = gx.mutable_data();
  const long long planes = planes_of(gx);
  const long long in_plane = (long long)g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  const std::vector<int> rows = covering_ranges(g.height, g.pad_h, g.kernel_h, g.stride_h,
                                                g.out_h);
  const std::vector<int> cols = covering_ranges(g.width, g.pad_w, g.kernel_w, g.stride_w,
                                                g.out_w);
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(static) if (planes * in_plane >= kMinParallelElements)
  for (long long plane = 0; plane < planes; ++plane) {
    const scalar_t* gy_plane = gy_data + plane * out_plane;
    const int* argmax_plane = argmax_data + plane * out_plane;
    scalar_t* out = gx_data + plane * in_plane;
    for (int h = 0; h < g.height; ++h) {
      for (int w = 0; w < g.width; ++w) {
        out[h * g.width + w] = maxpool_backward_gather(
            gy_plane, argmax_plane, g.out_w, h * g.width + w, rows[2 * h], rows[2 * h + 1],
            cols[2 * w], cols[2 * w + 1]);
      }
    }
  }
}

template <typename scalar_t>
void avgpool_forward(host_array<scalar_t> x, host_array<scalar_t> y, py::tuple params,
                     int count_include_pad) {
  const pool_geometry g = checked_geometry("avgpool_forward", x, "y", y, params);
  const scalar_t* x_data = x.data();
  scalar_t* y_data = y.mutable_data();
  const long long planes = planes_of(x);
  const long long in_plane = (long long)g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(static) if (planes * in_plane >= kMinParallelElements)
  for (long long plane = 0; plane < planes; ++plane) {
    const scalar_t* in = x_data + plane * in_plane;
    scalar_t* out = y_data + plane * out_plane;
    for (int oh = 0; oh < g.out_h; ++oh) {
      for (int ow = 0; ow < g.out_w; ++ow) {
        out[oh * g.out_w + ow] = avgpool_window(in, g, oh, ow, count_include_pad);
      }
    }
  }
}

template <typename scalar_t>
void avgpool_backward(host_array<scalar_t> gy, host_array<scalar_t> gx, py::tuple params,
                      int count_include_pad) {
  const pool_geometry g = checked_geometry("avgpool_backward", gx, "gy", gy, params);
  const scalar_t* gy_data = gy.data();
  scalar_t* gx_data = gx.mutable_data();
  const long long planes = planes_of(gx);
  const long long in_plane = (long long)g.height * g.width;
  const long long out_plane = (long long)g.out_h * g.out_w;
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(static) if (planes * in_plane >= kMinParallelElements)
  for (long long plane = 0; plane < planes; ++plane) {
    const scalar_t* gy_plane = gy_data + plane * out_plane;
    scalar_t* out = gx_data + plane * in_plane;
    for (int h = 0; h < g.height; ++h) {
      for (int w = 0; w < g.width; ++w) {
        out[h * g.width + w] = avgpool_backward_pixel(gy_plane, g, h, w, count_include_pad);
      }
    }
  }
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const char* suffix) {
  const char* params_doc = "; params = (kh, kw, stride_h, stride_w, pad_h, pad_w)";
  m.def((std::string("maxpool_forward_") + suffix).c_str(), &maxpool_forward<scalar_t>,
        py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("argmax").noconvert(),
        py::arg("params"),
        (std::string("Max pool x (N, C, H, W) into y and the int32 in-plane argmax") +
         params_doc).c_str());
  m.def((std::string("maxpool_backward_") + suffix).c_str(), &maxpool_backward<scalar_t>,
        py::arg("gy").noconvert(), py::arg("argmax").noconvert(), py::arg("gx").noconvert(),
        py::arg("params"),
        (std::string("Gradient of max pooling into gx, gathered per input pixel") +
         params_doc).c_str());
  m.def((std::string("avgpool_forward_") + suffix).c_str(), &avgpool_forward<scalar_t>,
        py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("params"),
        py::arg("count_include_pad"),
        (std::string("Average pool x (N, C, H, W) into y") + params_doc).c_str());
  m.def((std::string("avgpool_backward_") + suffix).c_str(), &avgpool_backward<scalar_t>,
        py::arg("gy").noconvert(), py::arg("gx").noconvert(), py::arg("params"),
        py::arg("count_include_pad"),
        (std::string("Gradient of average pooling into gx, gathered per input pixel") +
         params_doc).c_str());
}

}  // namespace

void register_pool(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
