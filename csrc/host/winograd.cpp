// Host launcher of csrc/nnlite/winograd.cuh: the same 1-D transforms, in the
// same order, and the same arguments as csrc/cuda/winograd.cu, OpenMP over
// blocks of (image, channel) planes for the tile transforms and over blocks of
// filters for the filter transforms. Where the GPU computes one row of one
// tile per thread, the host combines a whole row of tiles at a time: first
// the plane's rows along the columns (one pass over positions), then each
// tile's window of those lines; every output is the same expression.
#include "nnlite/winograd.cuh"

#include "host/checks.h"
#include "host/families.h"

#include <algorithm>
#include <vector>

namespace py = pybind11;

// The loops over a transform's outputs sit inside `omp simd` loops over
// positions; GCC vectorises those only once the inner loop is unrolled and
// each output's switch folded to one expression, which it does not do by
// itself (measured: the F(4x4, 3x3) output transform stayed scalar).
#if defined(__GNUC__) && !defined(__clang__)
#define NNL_HOST_UNROLL _Pragma("GCC unroll 8")
#else
#define NNL_HOST_UNROLL
#endif

namespace {

// `tile` picks the variant: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3).
void require_tile(const char* op, long long tile) {
  if (tile != 2 && tile != 4) {
    argument_error(op, "tile = " + std::to_string(tile) +
                           "; expected 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))");
  }
}

long long tile_alpha(long long tile) { return tile + 2; }

// The integers of a tile transform, checked so that every index the .cuh math
// forms in int (tile numbers, rows and columns of a plane, the GPU's row *
// channels) fits one, and the two buffers of the sizes they imply:
// `plane_array` (images, channels, height, width) and `tiles_array`
// (alpha^2, channels, images * tiles_h * tiles_w).
struct tile_call {
  winograd_tiling t;
  long long images, channels, planes, plane_size, tiles, columns;
};

tile_call checked_tile_call(const char* op, const py::array& plane_array,
                            const char* plane_name, const py::array& tiles_array,
                            const char* tiles_name, long long images, long long channels,
                            long long height, long long width, long long pad_top,
                            long long pad_left, long long tiles_h, long long tiles_w,
                            long long tile) {
  require_tile(op, tile);
  const long long alpha = tile_alpha(tile);
  require_range(op, "images", images, 0, LLONG_MAX);
  require_count(op, "channels", channels);
  require_range(op, "(tile + 2) * channels", alpha * channels, 0, INT_MAX);
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
                   checked_product(op, "(tile + 2)^2 * channels * images * tiles",
                                   alpha * alpha,
                                   checked_product(op, "channels * images * tiles", channels,
                                                   columns)),
                   "(tile + 2)^2 * channels * images * tiles_h * tiles_w");
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
                            long long tiles_h, long long tiles_w, long long tile) {
  require_tile(op, tile);
  require_count(op, "out_h", out_h);
  require_count(op, "out_w", out_w);
  const long long rows = (out_h + tile - 1) / tile, cols = (out_w + tile - 1) / tile;
  require_range(op, "tiles_h (ceil(out_h / tile))", tiles_h, rows, rows);
  require_range(op, "tiles_w (ceil(out_w / tile))", tiles_w, cols, cols);
  // The host loops index the alpha lines of a row of tiles in int.
  require_range(op, "(tile + 2) * tile * tiles_w", tile_alpha(tile) * tile * tiles_w, 0,
                INT_MAX);
}

void require_output(const char* op, const char* name, const py::array& out,
                    const char* input_name, const py::array& input) {
  require_writable(op, name, out);
  require_disjoint(op, name, out, input_name, input);
}

// The host loops stage the components of up to kStagedTiles tiles of a plane
// in a local buffer and write them to the (alpha^2, channels, columns) array
// one contiguous run per component. Writing the components of each tile in
// place would interleave alpha^2 streams channels * columns elements apart,
// often a power of two, which then share one cache set (measured: the
// F(2x2, 3x3) filter transform of 256 x 256 filters took 2.0 ms in place,
// 0.3 ms with 255 x 255 filters).
const int kStagedTiles = 512;

// The inner loops are `omp simd`: each writes lines or components that none of
// its reads alias, which GCC cannot prove for 4-12 pointers (it then keeps
// them scalar: measured 3.6 ms for the CRNN conv4 input transform, 3.0 ms
// vectorised).
//
// The tiles are staged a run at a time: consecutive images of one channel
// (whole planes, when a plane has at most kStagedTiles tiles) or consecutive
// rows of tiles of one plane. Either way their tiles are consecutive columns
// of the (alpha^2, channels, columns) arrays, so a run moves as one copy per
// component. (Staged plane by plane, the CRNN's 4x32 planes of F(4x4, 3x3)
// moved 36 runs of 8 tiles each: the copies' calls took half the time.)
struct staged_run {
  long long channel, first_image;
  int images, first_row, rows, tiles_w;
  long long count() const { return (long long)images * rows * tiles_w; }
  // The staged position of the first tile of row ti of image n.
  long long offset(long long n, int ti) const {
    return ((n - first_image) * rows + (ti - first_row)) * (long long)tiles_w;
  }
};

// body(run) for every run of every channel, in parallel over the runs.
template <typename Body>
void for_each_staged_run(const tile_call& call, long long components, const Body& body) {
  const winograd_tiling t = call.t;
  const long long tiles = nnl_max(1LL, call.tiles);
  const int images = (int)nnl_max(1LL, nnl_min(call.images, kStagedTiles / tiles));
  const int rows = tiles <= kStagedTiles
                       ? t.tiles_h
                       : nnl_max(1, nnl_min(t.tiles_h, kStagedTiles / nnl_max(1, t.tiles_w)));
  const long long image_runs = (call.images + images - 1) / images;
  const long long row_runs = (t.tiles_h + rows - 1) / rows;
  const long long runs = checked_product("winograd", "runs", call.channels,
                                         image_runs * row_runs);
  for_each_plane(runs, call.planes * call.tiles * components, [&](long long index) {
    staged_run run;
    run.channel = index / (image_runs * row_runs);
    const long long rest = index % (image_runs * row_runs);
    run.first_image = rest / row_runs * images;
    run.images = (int)nnl_min((long long)images, call.images - run.first_image);
    run.first_row = (int)(rest % row_runs) * rows;
    run.rows = nnl_min(rows, t.tiles_h - run.first_row);
    run.tiles_w = t.tiles_w;
    body(run);
  });
}

// The first column of a run's tiles in a (alpha^2, channels, columns) array.
inline long long run_column(const tile_call& call, const staged_run& run) {
  return run.channel * call.columns + run.first_image * call.tiles +
         (long long)run.first_row * run.tiles_w;
}

// A worker's buffers: `staged` holds the components of one run, `combined`
// the 1-D transforms of the plane's rows that one row of tiles reads (`lines`
// of `span` values), and `zeros` stands in for a row that lies in the
// padding. The input transform's positions of `combined` that only ever see
// padding are zero from the start (B^T of zeros is +0) and never written: no
// row is copied or cleared per row of tiles.
template <typename scalar_t>
struct tile_row_buffers {
  std::vector<scalar_t> staged, combined, zeros;
  tile_row_buffers(long long staged_size, int lines, int span)
      : staged((size_t)staged_size), combined((size_t)lines * span), zeros((size_t)span) {}
};

// Row h of a plane, or zeros where h is outside it.
template <typename scalar_t>
const scalar_t* plane_row(const scalar_t* plane, const winograd_tiling& t, long long h,
                          const std::vector<scalar_t>& zeros) {
  return h >= 0 && h < t.height ? plane + h * t.width : &zeros[0];
}

// tiles(plane, ti, staged tile row, component stride, buffers) writes the
// components of every row of tiles of every plane into the staging buffer,
// which then goes to `array` (alpha^2, channels, columns) a run at a time.
template <typename W, typename scalar_t, typename Tiles>
void for_each_tile_row(const tile_call& call, int lines, int span, scalar_t* array,
                       const Tiles& tiles) {
  const int components = W::alpha * W::alpha;
  const long long stride = call.channels * call.columns;  // between components
  for_each_staged_run(call, components, [&](const staged_run& run) {
    const long long count = run.count();
    tile_row_buffers<scalar_t> buffers(components * count, lines, span);
    scalar_t* staged = &buffers.staged[0];
    for (long long n = run.first_image; n < run.first_image + run.images; ++n) {
      for (int ti = run.first_row; ti < run.first_row + run.rows; ++ti) {
        tiles(n * call.channels + run.channel, ti, staged + run.offset(n, ti), count, buffers);
      }
    }
    scalar_t* out = array + run_column(call, run);
    for (int k = 0; k < components; ++k) {
      std::copy(staged + k * count, staged + (k + 1) * count, out + k * stride);
    }
  });
}

template <typename W, typename scalar_t>
void input_transform_rows(const tile_call& call, const scalar_t* x_data, scalar_t* v_data) {
  const int alpha = W::alpha;
  const winograd_tiling t = call.t;
  // A row of tiles reads `span` positions of alpha rows, from column -pad_left
  // on; positions [begin, end) are the plane's columns, the rest padding.
  const int span = W::m * t.tiles_w + 2;
  const int begin = nnl_min(span, t.pad_left);
  const int end = (int)nnl_min((long long)span, (long long)t.pad_left + t.width);
  // The alpha rows a row of tiles reads, combined position by position into
  // B^T d (alpha lines), then each tile's alpha x alpha window of those, line
  // by line, into B^T d B.
  for_each_tile_row<W>(call, alpha, span, v_data,
                       [&](long long plane, int ti, scalar_t* out, long long stride,
                           tile_row_buffers<scalar_t>& b) {
    const scalar_t* image = x_data + plane * call.plane_size;
    const long long h = (long long)W::m * ti - t.pad_top;
    const scalar_t* rows[W::alpha];
    for (int r = 0; r < alpha; ++r) rows[r] = plane_row(image, t, h + r, b.zeros);
    scalar_t* bt = &b.combined[0];
#pragma omp simd
    for (int p = begin; p < end; ++p) {
      scalar_t column[W::alpha];
      NNL_HOST_UNROLL
      for (int r = 0; r < alpha; ++r) column[r] = rows[r][p - t.pad_left];
      NNL_HOST_UNROLL
      for (int k = 0; k < alpha; ++k) bt[k * span + p] = W::bt(k, column, 1);
    }
    for (int r = 0; r < alpha; ++r) {
      const scalar_t* line = bt + (long long)r * span;
      scalar_t* dst = out + alpha * r * stride;
#pragma omp simd
      for (int tj = 0; tj < t.tiles_w; ++tj) {
        NNL_HOST_UNROLL
        for (int q = 0; q < alpha; ++q) dst[q * stride + tj] = W::bt(q, line + W::m * tj, 1);
      }
    }
  });
}

template <typename W, typename scalar_t>
void output_adjoint_rows(const tile_call& call, const scalar_t* gy_data, scalar_t* dm_data) {
  const int alpha = W::alpha;
  const winograd_tiling t = call.t;
  const int span = W::m * t.tiles_w;  // the output columns a row of tiles covers
  // The m rows of dy a row of tiles covers, combined position by position into
  // A dy (alpha lines), then each tile's (A dy) A^T.
  for_each_tile_row<W>(call, alpha, span, dm_data,
                       [&](long long plane, int ti, scalar_t* out, long long stride,
                           tile_row_buffers<scalar_t>& b) {
    const scalar_t* image = gy_data + plane * call.plane_size;
    const scalar_t* rows[W::m];
    for (int a = 0; a < W::m; ++a) {
      rows[a] = plane_row(image, t, (long long)W::m * ti + a, b.zeros);
    }
    scalar_t* ad = &b.combined[0];
#pragma omp simd
    for (int p = 0; p < t.width; ++p) {
      scalar_t column[W::m];
      NNL_HOST_UNROLL
      for (int a = 0; a < W::m; ++a) column[a] = rows[a][p];
      NNL_HOST_UNROLL
      for (int k = 0; k < alpha; ++k) ad[k * span + p] = W::a(k, column, 1);
    }
    // Positions past the plane's edge, as the GPU's per-tile loads give them
    // (F(2x2, 3x3)'s A 0 has a -0: a cleared buffer would differ in the sign).
    for (int p = t.width; p < span; ++p) {
      const scalar_t column[W::m] = {};
      for (int k = 0; k < alpha; ++k) ad[k * span + p] = W::a(k, column, 1);
    }
    for (int r = 0; r < alpha; ++r) {
      const scalar_t* line = ad + (long long)r * span;
      scalar_t* dst = out + alpha * r * stride;
#pragma omp simd
      for (int tj = 0; tj < t.tiles_w; ++tj) {
        NNL_HOST_UNROLL
        for (int q = 0; q < alpha; ++q) dst[q * stride + tj] = W::a(q, line + W::m * tj, 1);
      }
    }
  });
}

// The output transform stages its reads as the others stage their writes:
// alpha^2 streams of reads a power of two apart thrash the cache as well once
// they outnumber its ways (F(4x4, 3x3): 36 streams, 5.5 ms in place for CRNN
// conv4).
template <typename W, typename scalar_t>
void output_transform_rows(const tile_call& call, const scalar_t* m_data, scalar_t* y_data) {
  const int alpha = W::alpha, components = W::alpha * W::alpha;
  const winograd_tiling t = call.t;
  const int tw = t.tiles_w;
  const int whole = t.width / W::m;  // tiles whose m columns are all kept
  const long long stride = call.channels * call.columns;
  for_each_staged_run(call, components, [&](const staged_run& run) {
    // The staged components of the run, and m lines of alpha component
    // columns of one row of tiles: A^T m.
    const long long count = run.count();
    tile_row_buffers<scalar_t> buffers(components * count, 1, W::m * alpha * tw);
    scalar_t* staged = &buffers.staged[0];
    scalar_t* at = &buffers.combined[0];
    const scalar_t* in = m_data + run_column(call, run);
    for (int k = 0; k < components; ++k) {
      std::copy(in + k * stride, in + k * stride + count, staged + k * count);
    }
    for (long long n = run.first_image; n < run.first_image + run.images; ++n) {
      scalar_t* image = y_data + (n * call.channels + run.channel) * call.plane_size;
      for (int ti = run.first_row; ti < run.first_row + run.rows; ++ti) {
        const scalar_t* tiles = staged + run.offset(n, ti);
        for (int s = 0; s < alpha; ++s) {
#pragma omp simd
          for (int tj = 0; tj < tw; ++tj) {
            NNL_HOST_UNROLL
            for (int a = 0; a < W::m; ++a) {
              at[(a * alpha + s) * tw + tj] = W::at(a, tiles + s * count + tj, alpha * count);
            }
          }
        }
        // (A^T m) A straight into the output rows; the last tile of a width
        // that is not a multiple of m through a temporary.
        for (int a = 0; a < W::m && (long long)W::m * ti + a < t.height; ++a) {
          const scalar_t* line = at + a * alpha * tw;
          scalar_t* row = image + ((long long)W::m * ti + a) * t.width;
#pragma omp simd
          for (int tj = 0; tj < whole; ++tj) {
            NNL_HOST_UNROLL
            for (int b = 0; b < W::m; ++b) row[W::m * tj + b] = W::at(b, line + tj, tw);
          }
          for (int b = 0; whole < tw && b < t.width - W::m * whole; ++b) {
            row[W::m * whole + b] = W::at(b, line + whole, tw);
          }
        }
      }
    }
  });
}

// The filters of a filter transform or its adjoint: `filters_array` holds
// out_channels * in_channels 3x3 filters, `tiles_array` alpha^2 components of
// each.
long long checked_filters(const char* op, const py::array& filters_array,
                          const char* filters_name, const py::array& tiles_array,
                          const char* tiles_name, long long out_channels,
                          long long in_channels, long long tile) {
  require_tile(op, tile);
  require_count(op, "out_channels", out_channels);
  require_count(op, "in_channels", in_channels);
  const long long filters = checked_product(op, "out_channels * in_channels", out_channels,
                                            in_channels);
  require_elements(op, filters_name, filters_array,
                   checked_product(op, "out_channels * in_channels * 9", filters, 9),
                   "out_channels * in_channels * 3 * 3");
  require_elements(op, tiles_name, tiles_array,
                   checked_product(op, "(tile + 2)^2 * out_channels * in_channels", filters,
                                   tile_alpha(tile) * tile_alpha(tile)),
                   "(tile + 2)^2 * out_channels * in_channels");
  return filters;
}

// Filters a host loop handles at once (staged as the tiles above are).
const long long kStagedFilters = 256;

template <typename W, typename scalar_t>
void filter_transform_blocks(long long filters, const scalar_t* w_data, scalar_t* u_data) {
  const int components = W::alpha * W::alpha;
  const long long blocks = (filters + kStagedFilters - 1) / kStagedFilters;
  for_each_plane(blocks, filters * components, [&](long long block) {
    const long long first = block * kStagedFilters;
    const long long count = nnl_min(kStagedFilters, filters - first);
    scalar_t staged[W::alpha * W::alpha * kStagedFilters];
    for (long long f = 0; f < count; ++f) {
      for (int r = 0; r < W::alpha; ++r) {
        winograd_filter_row<W>(w_data + 9 * (first + f), r, staged + f, count);
      }
    }
    for (int k = 0; k < components; ++k) {
      std::copy(staged + k * count, staged + (k + 1) * count, u_data + k * filters + first);
    }
  });
}

template <typename W, typename scalar_t>
void filter_adjoint_blocks(long long filters, const scalar_t* du_data, scalar_t* gw_data) {
  const int components = W::alpha * W::alpha;
  const long long blocks = (filters + kStagedFilters - 1) / kStagedFilters;
  for_each_plane(blocks, filters * components, [&](long long block) {
    const long long first = block * kStagedFilters;
    const long long count = nnl_min(kStagedFilters, filters - first);
    scalar_t staged[W::alpha * W::alpha * kStagedFilters];
    for (int k = 0; k < components; ++k) {
      const scalar_t* src = du_data + k * filters + first;
      std::copy(src, src + count, staged + k * count);
    }
    for (long long f = 0; f < count; ++f) {
      for (int i = 0; i < 3; ++i) {
        winograd_filter_adjoint_row<W>(staged + f, count, i, gw_data + 9 * (first + f) + 3 * i);
      }
    }
  });
}

#define INPUT_PARAMS                                                                    \
  long long images, long long channels, long long height, long long width,              \
      long long pad_top, long long pad_left, long long tiles_h, long long tiles_w,       \
      long long tile
#define OUTPUT_PARAMS                                                                   \
  long long images, long long channels, long long out_h, long long out_w,               \
      long long tiles_h, long long tiles_w, long long tile

template <typename scalar_t>
void input_transform(host_array<scalar_t> x, host_array<scalar_t> v, INPUT_PARAMS) {
  const char* op = "winograd_input_transform";
  require_count(op, "height", height);
  require_count(op, "width", width);
  require_count(op, "pad_top", pad_top);
  require_count(op, "pad_left", pad_left);
  const tile_call call = checked_tile_call(op, x, "x", v, "v", images, channels, height, width,
                                           pad_top, pad_left, tiles_h, tiles_w, tile);
  require_range(op, "tile * tiles_w + 2 (the columns a row of tiles reads)",
                tile * tiles_w + 2, 0, INT_MAX);
  require_output(op, "v", v, "x", x);
  if (v.size() == 0) return;
  py::gil_scoped_release no_gil;
  if (tile == 4) {
    input_transform_rows<winograd_f4>(call, x.data(), v.mutable_data());
  } else {
    input_transform_rows<winograd_f2>(call, x.data(), v.mutable_data());
  }
}

template <typename scalar_t>
void output_transform(host_array<scalar_t> m, host_array<scalar_t> y, OUTPUT_PARAMS) {
  const char* op = "winograd_output_transform";
  require_covering_tiles(op, out_h, out_w, tiles_h, tiles_w, tile);
  const tile_call call = checked_tile_call(op, y, "y", m, "m", images, channels, out_h, out_w,
                                           0, 0, tiles_h, tiles_w, tile);
  require_output(op, "y", y, "m", m);
  if (y.size() == 0) return;
  py::gil_scoped_release no_gil;
  if (tile == 4) {
    output_transform_rows<winograd_f4>(call, m.data(), y.mutable_data());
  } else {
    output_transform_rows<winograd_f2>(call, m.data(), y.mutable_data());
  }
}

template <typename scalar_t>
void output_adjoint(host_array<scalar_t> gy, host_array<scalar_t> dm, OUTPUT_PARAMS) {
  const char* op = "winograd_output_adjoint";
  require_covering_tiles(op, out_h, out_w, tiles_h, tiles_w, tile);
  const tile_call call = checked_tile_call(op, gy, "gy", dm, "dm", images, channels, out_h,
                                           out_w, 0, 0, tiles_h, tiles_w, tile);
  require_output(op, "dm", dm, "gy", gy);
  if (dm.size() == 0) return;
  py::gil_scoped_release no_gil;
  if (tile == 4) {
    output_adjoint_rows<winograd_f4>(call, gy.data(), dm.mutable_data());
  } else {
    output_adjoint_rows<winograd_f2>(call, gy.data(), dm.mutable_data());
  }
}

template <typename scalar_t>
void filter_transform(host_array<scalar_t> w, host_array<scalar_t> u, long long out_channels,
                      long long in_channels, long long tile) {
  const char* op = "winograd_filter_transform";
  const long long filters =
      checked_filters(op, w, "w", u, "u", out_channels, in_channels, tile);
  require_output(op, "u", u, "w", w);
  if (filters == 0) return;
  py::gil_scoped_release no_gil;
  if (tile == 4) {
    filter_transform_blocks<winograd_f4>(filters, w.data(), u.mutable_data());
  } else {
    filter_transform_blocks<winograd_f2>(filters, w.data(), u.mutable_data());
  }
}

template <typename scalar_t>
void filter_adjoint(host_array<scalar_t> du, host_array<scalar_t> gw, long long out_channels,
                    long long in_channels, long long tile) {
  const char* op = "winograd_filter_adjoint";
  const long long filters =
      checked_filters(op, gw, "gw", du, "du", out_channels, in_channels, tile);
  require_output(op, "gw", gw, "du", du);
  if (filters == 0) return;
  py::gil_scoped_release no_gil;
  if (tile == 4) {
    filter_adjoint_blocks<winograd_f4>(filters, du.data(), gw.mutable_data());
  } else {
    filter_adjoint_blocks<winograd_f2>(filters, du.data(), gw.mutable_data());
  }
}

#define INPUT_PY_ARGS                                                                  \
  py::arg("images"), py::arg("channels"), py::arg("height"), py::arg("width"),         \
      py::arg("pad_top"), py::arg("pad_left"), py::arg("tiles_h"), py::arg("tiles_w"), \
      py::arg("tile")
#define OUTPUT_PY_ARGS                                                                 \
  py::arg("images"), py::arg("channels"), py::arg("out_h"), py::arg("out_w"),          \
      py::arg("tiles_h"), py::arg("tiles_w"), py::arg("tile")

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("winograd_input_transform_" + suffix).c_str(), &input_transform<scalar_t>,
        py::arg("x").noconvert(), py::arg("v").noconvert(), INPUT_PY_ARGS,
        "B^T d B of every input tile of x (images, C, H, W) into v (alpha^2, C, "
        "images*tiles).");
  m.def(("winograd_filter_transform_" + suffix).c_str(), &filter_transform<scalar_t>,
        py::arg("w").noconvert(), py::arg("u").noconvert(), py::arg("out_channels"),
        py::arg("in_channels"), py::arg("tile"),
        "G g G^T of every 3x3 filter of w (K, C, 3, 3) into u (alpha^2, K, C).");
  m.def(("winograd_output_transform_" + suffix).c_str(), &output_transform<scalar_t>,
        py::arg("m").noconvert(), py::arg("y").noconvert(), OUTPUT_PY_ARGS,
        "A^T m A of every tile of m (alpha^2, K, images*tiles) into y (images, K, out_h, "
        "out_w).");
  m.def(("winograd_output_adjoint_" + suffix).c_str(), &output_adjoint<scalar_t>,
        py::arg("gy").noconvert(), py::arg("dm").noconvert(), OUTPUT_PY_ARGS,
        "A dy A^T of every output tile of gy (images, K, out_h, out_w) into dm (alpha^2, K, "
        "images*tiles).");
  m.def(("winograd_filter_adjoint_" + suffix).c_str(), &filter_adjoint<scalar_t>,
        py::arg("du").noconvert(), py::arg("gw").noconvert(), py::arg("out_channels"),
        py::arg("in_channels"), py::arg("tile"),
        "G^T du G of every filter of du (alpha^2, K, C) into gw (K, C, 3, 3).");
}

}  // namespace

void register_winograd(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
