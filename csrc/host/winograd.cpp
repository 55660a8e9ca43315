// Host launcher of csrc/nnlite/winograd.cuh: the same per-tile math and the
// same arguments as csrc/cuda/winograd.cu, OpenMP over the (image, channel)
// planes of the tile transforms and over the filters of the filter transforms.
#include "nnlite/winograd.cuh"

#include "host/checks.h"
#include "host/families.h"

#include <algorithm>
#include <vector>

namespace py = pybind11;

namespace {

const int kComponents = NNL_WINOGRAD_COMPONENTS;

// The integers of a tile transform, checked so that every index the .cuh math
// forms in int (tile numbers, rows and columns of a plane) fits one, and the
// two buffers of the sizes they imply: `plane_array` (images, channels,
// height, width) and `tiles_array` (16, channels, images * tiles_h * tiles_w).
struct tile_call {
  winograd_tiling t;
  long long images, channels, planes, plane_size, tiles, columns;
};

tile_call checked_tile_call(const char* op, const py::array& plane_array,
                            const char* plane_name, const py::array& tiles_array,
                            const char* tiles_name, long long images, long long channels,
                            long long height, long long width, long long pad_top,
                            long long pad_left, long long tiles_h, long long tiles_w) {
  require_range(op, "images", images, 0, LLONG_MAX);
  require_count(op, "channels", channels);
  require_count(op, "tiles_h", tiles_h);
  require_count(op, "tiles_w", tiles_w);
  const long long tiles = checked_product(op, "tiles_h * tiles_w", tiles_h, tiles_w);
  require_range(op, "tiles_h * tiles_w", tiles, 0, INT_MAX);
  const long long plane_size = checked_product(op, "height * width", height, width);
  const long long planes = checked_product(op, "images * channels", images, channels);
  require_elements(op, plane_name, plane_array,
                   checked_product(op, "images * channels * height * width", planes,
                                   plane_size),
                   "images * channels * height * width");
  const long long columns = checked_product(op, "images * tiles_h * tiles_w", images, tiles);
  require_elements(op, tiles_name, tiles_array,
                   checked_product(op, "16 * channels * images * tiles_h * tiles_w",
                                   kComponents, checked_product(op, "channels * images * tiles",
                                                                channels, columns)),
                   "16 * channels * images * tiles_h * tiles_w");
  tile_call call;
  call.t = make_winograd_tiling((int)height, (int)width, (int)pad_top, (int)pad_left,
                                (int)tiles_h, (int)tiles_w);
  call.images = images;
  call.channels = channels;
  call.planes = planes;
  call.plane_size = plane_size;
  call.tiles = tiles;
  call.columns = columns;
  return call;
}

// An output transform (or its adjoint) covers its plane exactly: fewer tiles
// would leave outputs unwritten, more would compute tiles nobody reads.
void require_covering_tiles(const char* op, long long out_h, long long out_w,
                            long long tiles_h, long long tiles_w) {
  require_count(op, "out_h", out_h);
  require_count(op, "out_w", out_w);
  require_range(op, "tiles_h (ceil(out_h / 2))", tiles_h, (out_h + 1) / 2, (out_h + 1) / 2);
  require_range(op, "tiles_w (ceil(out_w / 2))", tiles_w, (out_w + 1) / 2, (out_w + 1) / 2);
  // The host loops index 8 lines of a row of tiles in int.
  require_range(op, "8 * tiles_w", 8 * tiles_w, 0, INT_MAX);
}

void require_output(const char* op, const char* name, const py::array& out,
                    const char* input_name, const py::array& input) {
  require_writable(op, name, out);
  require_disjoint(op, name, out, input_name, input);
}

#define INPUT_PARAMS                                                                    \
  long long images, long long channels, long long height, long long width,              \
      long long pad_top, long long pad_left, long long tiles_h, long long tiles_w
#define OUTPUT_PARAMS                                                                   \
  long long images, long long channels, long long out_h, long long out_w,               \
      long long tiles_h, long long tiles_w

// The host loops stage the 16 components of up to kStagedTiles tiles of a
// plane in a local buffer and write them to the (16, channels, columns) array
// one contiguous run per component. Writing the 16 components of each tile in
// place would interleave 16 streams channels * columns elements apart, often a
// power of two, which then share one cache set (measured: the filter
// transform of 256 x 256 filters took 2.0 ms in place, 0.3 ms with 255 x 255).
const int kStagedTiles = 512;

// The inner loops are `omp simd`: each writes lines or components that none of
// its reads alias, which GCC cannot prove for 4-8 pointers (it then keeps them
// scalar: measured 3.6 ms for the CRNN conv4 input transform).
//
// One worker's buffers for the rows of tiles of a plane: `staged` holds the
// components of `group` rows of tiles, `combined` the 1-D transforms of the
// plane's rows that one row of tiles reads (`lines` of `span` values), and
// `zeros` stands in for a row that lies in the padding. The input transform's
// positions of `combined` that only ever see padding are zero from the start
// (B^T of zeros is +0) and never written: no row is copied or cleared per row
// of tiles.
template <typename scalar_t>
struct tile_row_buffers {
  int group;
  std::vector<scalar_t> staged, combined, zeros;
  tile_row_buffers(const winograd_tiling& t, int lines, int span)
      : group(nnl_max(1, nnl_min(t.tiles_h, kStagedTiles / nnl_max(1, t.tiles_w)))),
        staged(kComponents * (size_t)group * t.tiles_w),
        combined((size_t)lines * span),
        zeros((size_t)span) {}
};

// Row h of a plane, or zeros where h is outside it.
template <typename scalar_t>
const scalar_t* plane_row(const scalar_t* plane, const winograd_tiling& t, long long h,
                          const std::vector<scalar_t>& zeros) {
  return h >= 0 && h < t.height ? plane + h * t.width : &zeros[0];
}

// body(begin, end) over blocks of consecutive planes, in parallel: about 4096
// tiles a block (one plane at least), so that a loop's buffers are set up
// once per block rather than once per small plane.
template <typename Body>
void for_each_plane_block(const tile_call& call, const Body& body) {
  const long long per_block = nnl_max(1LL, nnl_min(64LL, 4096 / nnl_max(1LL, call.tiles)));
  const long long blocks = (call.planes + per_block - 1) / per_block;
  for_each_plane(blocks, call.planes * call.tiles * kComponents, [&](long long block) {
    body(block * per_block, nnl_min(call.planes, (block + 1) * per_block));
  });
}

// tiles(plane, ti, staged tile row, component stride, buffers) writes the
// components of every row of tiles of every plane into the staging buffer,
// which then goes to `array` (16, channels, columns).
template <typename scalar_t, typename Tiles>
void for_each_tile_row(const tile_call& call, int lines, int span, scalar_t* array,
                       const Tiles& tiles) {
  const winograd_tiling t = call.t;
  const int tw = t.tiles_w;
  const long long stride = call.channels * call.columns;  // between components
  for_each_plane_block(call, [&](long long begin, long long end) {
    tile_row_buffers<scalar_t> buffers(t, lines, span);
    for (long long plane = begin; plane < end; ++plane) {
      const long long n = plane / call.channels, c = plane % call.channels;
      scalar_t* out = array + c * call.columns + n * call.tiles;
      for (int first = 0; first < t.tiles_h; first += buffers.group) {
        const int count = nnl_min(buffers.group, t.tiles_h - first) * tw;  // tiles staged
        scalar_t* staged = &buffers.staged[0];
        for (int ti = first; ti < first + count / tw; ++ti) {
          tiles(plane, ti, staged + (ti - first) * tw, (long long)count, buffers);
        }
        for (int k = 0; k < kComponents; ++k) {
          std::copy(staged + (long long)k * count, staged + (long long)(k + 1) * count,
                    out + k * stride + (long long)first * tw);
        }
      }
    }
  });
}

template <typename scalar_t>
void input_transform(host_array<scalar_t> x, host_array<scalar_t> v, INPUT_PARAMS) {
  const char* op = "winograd_input_transform";
  require_count(op, "height", height);
  require_count(op, "width", width);
  require_count(op, "pad_top", pad_top);
  require_count(op, "pad_left", pad_left);
  const tile_call call = checked_tile_call(op, x, "x", v, "v", images, channels, height, width,
                                           pad_top, pad_left, tiles_h, tiles_w);
  require_output(op, "v", v, "x", x);
  if (v.size() == 0) return;
  const winograd_tiling t = call.t;
  const scalar_t* x_data = x.data();
  // A row of tiles reads `span` positions of 4 rows, from column -pad_left
  // on; positions [begin, end) are the plane's columns, the rest padding.
  require_range(op, "2 * tiles_w + 2 (the columns a row of tiles reads)", 2 * tiles_w + 2, 0,
                INT_MAX);
  const int span = 2 * t.tiles_w + 2;
  const int begin = (int)nnl_min((long long)span, pad_left);
  const int end = (int)nnl_min((long long)span, pad_left + width);
  py::gil_scoped_release no_gil;
  // The 4 rows a row of tiles reads, combined position by position into B^T d
  // (4 lines), then each tile's 4x4 window of those, line by line, into
  // B^T d B.
  for_each_tile_row(call, 4, span, v.mutable_data(),
                    [&](long long plane, int ti, scalar_t* out, long long stride,
                        tile_row_buffers<scalar_t>& b) {
    const scalar_t* image = x_data + plane * call.plane_size;
    const long long h = 2 * (long long)ti - t.pad_top;
    const scalar_t* r0 = plane_row(image, t, h, b.zeros);
    const scalar_t* r1 = plane_row(image, t, h + 1, b.zeros);
    const scalar_t* r2 = plane_row(image, t, h + 2, b.zeros);
    const scalar_t* r3 = plane_row(image, t, h + 3, b.zeros);
    scalar_t* bt = &b.combined[0];
#pragma omp simd
    for (int p = begin; p < end; ++p) {
      const int w = p - t.pad_left;
      winograd_bt(r0[w], r1[w], r2[w], r3[w], bt + p, span);
    }
    for (int r = 0; r < 4; ++r) {
      const scalar_t* line = bt + (long long)r * span;
#pragma omp simd
      for (int tj = 0; tj < t.tiles_w; ++tj) {
        winograd_bt(line[2 * tj], line[2 * tj + 1], line[2 * tj + 2], line[2 * tj + 3],
                    out + 4 * r * stride + tj, stride);
      }
    }
  });
}

template <typename scalar_t>
void output_adjoint(host_array<scalar_t> gy, host_array<scalar_t> dm, OUTPUT_PARAMS) {
  const char* op = "winograd_output_adjoint";
  require_covering_tiles(op, out_h, out_w, tiles_h, tiles_w);
  const tile_call call = checked_tile_call(op, gy, "gy", dm, "dm", images, channels, out_h,
                                           out_w, 0, 0, tiles_h, tiles_w);
  require_output(op, "dm", dm, "gy", gy);
  if (dm.size() == 0) return;
  const winograd_tiling t = call.t;
  const scalar_t* gy_data = gy.data();
  const int span = 2 * t.tiles_w;  // the output columns a row of tiles covers
  py::gil_scoped_release no_gil;
  // The 2 rows of dy a row of tiles covers, combined position by position into
  // A dy (4 lines), then each tile's (A dy) A^T.
  for_each_tile_row(call, 4, span, dm.mutable_data(),
                    [&](long long plane, int ti, scalar_t* out, long long stride,
                        tile_row_buffers<scalar_t>& b) {
    const scalar_t* image = gy_data + plane * call.plane_size;
    const scalar_t* r0 = plane_row(image, t, 2 * (long long)ti, b.zeros);
    const scalar_t* r1 = plane_row(image, t, 2 * (long long)ti + 1, b.zeros);
    scalar_t* ad = &b.combined[0];
#pragma omp simd
    for (int p = 0; p < t.width; ++p) winograd_a(r0[p], r1[p], ad + p, span);
    // The position past an odd width, as the GPU's per-tile loads give it
    // (A 0 has a -0: a cleared buffer would differ in the sign bit).
    for (int p = t.width; p < span; ++p) winograd_a(scalar_t(0), scalar_t(0), ad + p, span);
    for (int r = 0; r < 4; ++r) {
      const scalar_t* line = ad + (long long)r * span;
#pragma omp simd
      for (int tj = 0; tj < t.tiles_w; ++tj) {
        winograd_a(line[2 * tj], line[2 * tj + 1], out + 4 * r * stride + tj, stride);
      }
    }
  });
}

template <typename scalar_t>
void output_transform(host_array<scalar_t> m, host_array<scalar_t> y, OUTPUT_PARAMS) {
  const char* op = "winograd_output_transform";
  require_covering_tiles(op, out_h, out_w, tiles_h, tiles_w);
  const tile_call call = checked_tile_call(op, y, "y", m, "m", images, channels, out_h, out_w,
                                           0, 0, tiles_h, tiles_w);
  require_output(op, "y", y, "m", m);
  if (y.size() == 0) return;
  const winograd_tiling t = call.t;
  const int tw = t.tiles_w, pairs = t.width / 2;  // tiles whose 2 columns are both kept
  const scalar_t* m_data = m.data();
  scalar_t* y_data = y.mutable_data();
  const long long stride = call.channels * call.columns;
  py::gil_scoped_release no_gil;
  // A row of tiles: A^T m (2 lines of 4 component columns, tile by tile), then
  // (A^T m) A straight into the two output rows, the last column of an odd
  // width through a temporary. m is read in place: 16 streams of reads do not
  // contend the way 16 streams of writes do (measured no faster staged).
  for_each_plane_block(call, [&](long long begin, long long end) {
    std::vector<scalar_t> at_lines(8 * (size_t)tw);
    scalar_t* at = &at_lines[0];
    for (long long plane = begin; plane < end; ++plane) {
    const long long n = plane / call.channels, c = plane % call.channels;
    const scalar_t* in = m_data + c * call.columns + n * call.tiles;
    scalar_t* image = y_data + plane * call.plane_size;
    for (int ti = 0; ti < t.tiles_h; ++ti, in += tw) {
      for (int s = 0; s < 4; ++s) {
        const scalar_t *m0 = in + s * stride, *m1 = in + (4 + s) * stride;
        const scalar_t *m2 = in + (8 + s) * stride, *m3 = in + (12 + s) * stride;
#pragma omp simd
        for (int tj = 0; tj < tw; ++tj) {
          winograd_at(m0[tj], m1[tj], m2[tj], m3[tj], at + s * tw + tj, 4 * (long long)tw);
        }
      }
      for (int a = 0; a < 2 && 2 * ti + a < t.height; ++a) {
        const scalar_t* line = at + 4 * a * tw;
        scalar_t* row = image + (long long)(2 * ti + a) * t.width;
#pragma omp simd
        for (int tj = 0; tj < pairs; ++tj) {
          winograd_at(line[tj], line[tw + tj], line[2 * tw + tj], line[3 * tw + tj],
                      row + 2 * tj, 1);
        }
        if (pairs < tw) {
          scalar_t last[2];
          winograd_at(line[pairs], line[tw + pairs], line[2 * tw + pairs],
                      line[3 * tw + pairs], last, 1);
          row[2 * pairs] = last[0];
        }
      }
    }
    }
  });
}

// The filters of a filter transform or its adjoint: `filters_array` holds
// out_channels * in_channels 3x3 filters, `tiles_array` 16 components of each.
long long checked_filters(const char* op, const py::array& filters_array,
                          const char* filters_name, const py::array& tiles_array,
                          const char* tiles_name, long long out_channels,
                          long long in_channels) {
  require_count(op, "out_channels", out_channels);
  require_count(op, "in_channels", in_channels);
  const long long filters = checked_product(op, "out_channels * in_channels", out_channels,
                                            in_channels);
  require_elements(op, filters_name, filters_array,
                   checked_product(op, "out_channels * in_channels * 9", filters, 9),
                   "out_channels * in_channels * 3 * 3");
  require_elements(op, tiles_name, tiles_array,
                   checked_product(op, "16 * out_channels * in_channels", filters, kComponents),
                   "16 * out_channels * in_channels");
  return filters;
}

// Filters a host loop handles at once (staged as the tiles above are).
const long long kStagedFilters = 256;

template <typename scalar_t>
void filter_transform(host_array<scalar_t> w, host_array<scalar_t> u, long long out_channels,
                      long long in_channels) {
  const char* op = "winograd_filter_transform";
  const long long filters = checked_filters(op, w, "w", u, "u", out_channels, in_channels);
  require_output(op, "u", u, "w", w);
  if (filters == 0) return;
  const scalar_t* w_data = w.data();
  scalar_t* u_data = u.mutable_data();
  const long long blocks = (filters + kStagedFilters - 1) / kStagedFilters;
  py::gil_scoped_release no_gil;
  for_each_plane(blocks, filters * kComponents, [&](long long block) {
    const long long first = block * kStagedFilters;
    const long long count = nnl_min(kStagedFilters, filters - first);
    scalar_t staged[kComponents * kStagedFilters];
    for (long long f = 0; f < count; ++f) {
      winograd_filter_tile(w_data + 9 * (first + f), staged + f, count);
    }
    for (int k = 0; k < kComponents; ++k) {
      std::copy(staged + k * count, staged + (k + 1) * count, u_data + k * filters + first);
    }
  });
}

template <typename scalar_t>
void filter_adjoint(host_array<scalar_t> du, host_array<scalar_t> gw, long long out_channels,
                    long long in_channels) {
  const char* op = "winograd_filter_adjoint";
  const long long filters = checked_filters(op, gw, "gw", du, "du", out_channels, in_channels);
  require_output(op, "gw", gw, "du", du);
  if (filters == 0) return;
  const scalar_t* du_data = du.data();
  scalar_t* gw_data = gw.mutable_data();
  const long long blocks = (filters + kStagedFilters - 1) / kStagedFilters;
  py::gil_scoped_release no_gil;
  for_each_plane(blocks, filters * kComponents, [&](long long block) {
    const long long first = block * kStagedFilters;
    const long long count = nnl_min(kStagedFilters, filters - first);
    scalar_t staged[kComponents * kStagedFilters];
    for (int k = 0; k < kComponents; ++k) {
      const scalar_t* src = du_data + k * filters + first;
      std::copy(src, src + count, staged + k * count);
    }
    for (long long f = 0; f < count; ++f) {
      winograd_filter_adjoint_tile(staged + f, count, gw_data + 9 * (first + f));
    }
  });
}

#define INPUT_PY_ARGS                                                                  \
  py::arg("images"), py::arg("channels"), py::arg("height"), py::arg("width"),         \
      py::arg("pad_top"), py::arg("pad_left"), py::arg("tiles_h"), py::arg("tiles_w")
#define OUTPUT_PY_ARGS                                                                 \
  py::arg("images"), py::arg("channels"), py::arg("out_h"), py::arg("out_w"),          \
      py::arg("tiles_h"), py::arg("tiles_w")

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("winograd_input_transform_" + suffix).c_str(), &input_transform<scalar_t>,
        py::arg("x").noconvert(), py::arg("v").noconvert(), INPUT_PY_ARGS,
        "B^T d B of every 4x4 tile of x (images, C, H, W) into v (16, C, images*tiles).");
  m.def(("winograd_filter_transform_" + suffix).c_str(), &filter_transform<scalar_t>,
        py::arg("w").noconvert(), py::arg("u").noconvert(), py::arg("out_channels"),
        py::arg("in_channels"),
        "G g G^T of every 3x3 filter of w (K, C, 3, 3) into u (16, K, C).");
  m.def(("winograd_output_transform_" + suffix).c_str(), &output_transform<scalar_t>,
        py::arg("m").noconvert(), py::arg("y").noconvert(), OUTPUT_PY_ARGS,
        "A^T m A of every tile of m (16, K, images*tiles) into y (images, K, out_h, out_w).");
  m.def(("winograd_output_adjoint_" + suffix).c_str(), &output_adjoint<scalar_t>,
        py::arg("gy").noconvert(), py::arg("dm").noconvert(), OUTPUT_PY_ARGS,
        "A dy A^T of every 2x2 tile of gy (images, K, out_h, out_w) into dm (16, K, "
        "images*tiles).");
  m.def(("winograd_filter_adjoint_" + suffix).c_str(), &filter_adjoint<scalar_t>,
        py::arg("du").noconvert(), py::arg("gw").noconvert(), py::arg("out_channels"),
        py::arg("in_channels"),
        "G^T du G of every filter of du (16, K, C) into gw (K, C, 3, 3).");
}

}  // namespace

void register_winograd(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
