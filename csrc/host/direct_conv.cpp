// Host launcher of csrc/nnlite/direct_conv.cuh: the same sums and the same
// arguments as csrc/cuda/direct_conv.cu, vectorised along the output row.
//
// Forward and backward-data are one routine, `correlate`: a zero-extended copy
// of an image's source planes (x padded; or gy with its padding and, for a
// stride, zeros between its rows and columns) is correlated with prepared
// filters (w; or w flipped and transposed), one register tile of a few
// destination channels by V columns of one row at a time. Every tile element
// adds exactly the products, in exactly the order, of one GPU thread's
// direct_conv_output_element / direct_conv_input_grad_element: the copy's
// zeros are the values those functions substitute, so no tap needs a test and
// the inner loop is a broadcast weight times V contiguous values (GCC keeps
// the tile in registers and vectorises it; the AVX2 clone runs where the CPU
// has it, with the same rounding).
//
// The weight gradient sums over (image, output row, output column): each
// worker owns whole weight elements (a block of output channels of one input
// channel) and keeps kLanes partial sums per element, lane l taking the
// columns ow = l mod kLanes in (image, row, column) order, then adds the lanes
// left to right. The order is fixed by the data alone, so the result does not
// depend on the machine, the vector width or the thread count. (The GPU adds
// its threads' shares in a tree instead: the two builds round differently.)
#include "nnlite/direct_conv.cuh"

#include "host/checks.h"
#include "host/families.h"
#include "host/vectorize.h"

#include <algorithm>
#include <cstring>
#include <vector>

// The vector types below are passed by value to inline helpers only.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace py = pybind11;

namespace {

// Bounds of the host loops' zero-extended copies (elements): one plane, and
// the planes of one image; nnlite/kernels/direct_conv.py keeps the same numbers.
const long long kMaxExtendedPlane = 1LL << 24;
const long long kMaxExtendedImage = 1LL << 26;

struct direct_call {
  conv_geometry g;
  long long images, out_channels, plane, out_plane, taps;
};

// Every integer in range for the int math of conv.cuh / direct_conv.cuh, the
// host's buffers of int-indexed rows, and the three arrays of the sizes the
// integers imply: the input `x_name` (images, channels, height, width), the
// output-side `y_name` (images, out_channels, out_h, out_w) and the weights
// (out_channels, channels, kernel_h, kernel_w).
direct_call checked_call(const char* op, const py::array& x, const char* x_name,
                         const py::array& y, const char* y_name, const py::array& w,
                         const char* w_name, long long images, long long channels,
                         long long out_channels, long long height, long long width,
                         long long kernel_h, long long kernel_w, long long stride_h,
                         long long stride_w, long long pad_top, long long pad_left,
                         long long dilation_h, long long dilation_w, long long out_h,
                         long long out_w) {
  require_range(op, "images", images, 0, LLONG_MAX);
  require_count(op, "channels", channels);
  require_count(op, "out_channels", out_channels);
  require_conv_geometry(op, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_top,
                        pad_left, dilation_h, dilation_w, out_h, out_w);
  // The zero-extended planes of the host loops span at most `rows` x `cols`
  // positions (the windows' reach past the output, or past the input for
  // backward-data, plus a tile of columns), indexed in int; the buffers of
  // all channels are bounded too (nnlite.kernels.direct_conv.supports
  // applies the same bound, so F.conv2d never hands these a layer they refuse).
  const long long reach_h = checked_product(op, "dilation_h * (kernel_h - 1)", dilation_h,
                                            kernel_h - 1);
  const long long reach_w = checked_product(op, "dilation_w * (kernel_w - 1)", dilation_w,
                                            kernel_w - 1);
  const long long rows = nnl_max(checked_product(op, "stride_h * out_h", stride_h, out_h),
                                 height) + reach_h + 1;
  const long long cols = nnl_max(checked_product(op, "stride_w * (out_w + 64)", stride_w,
                                                 out_w + 64), width + 64) + reach_w + 1;
  require_range(op, "the zero-extended plane's rows", rows, 0, kMaxExtendedPlane);
  require_range(op, "the zero-extended plane's columns", cols, 0, kMaxExtendedPlane);
  require_range(op, "the zero-extended plane (rows * columns)", rows * cols, 0,
                kMaxExtendedPlane);
  require_range(op, "the zero-extended planes of an image (rows * columns * channels)",
                checked_product(op, "rows * columns * channels", rows * cols,
                                nnl_max(channels, out_channels)),
                0, kMaxExtendedImage);
  const long long taps = checked_product(op, "kernel_h * kernel_w", kernel_h, kernel_w);
  const long long filter = checked_product(op, "channels * kernel_h * kernel_w", channels, taps);
  const long long plane = checked_product(op, "height * width", height, width);
  const long long out_plane = checked_product(op, "out_h * out_w", out_h, out_w);
  require_elements(op, w_name, w,
                   checked_product(op, "out_channels * channels * kernel_h * kernel_w",
                                   out_channels, filter),
                   "out_channels * channels * kernel_h * kernel_w");
  require_elements(op, x_name, x,
                   checked_product(op, "images * channels * height * width",
                                   checked_product(op, "images * channels", images, channels),
                                   plane),
                   "images * channels * height * width");
  require_elements(op, y_name, y,
                   checked_product(op, "images * out_channels * out_h * out_w",
                                   checked_product(op, "images * out_channels", images,
                                                   out_channels),
                                   out_plane),
                   "images * out_channels * out_h * out_w");
  direct_call call;
  call.g = make_conv_geometry((int)channels, (int)height, (int)width, (int)kernel_h,
                              (int)kernel_w, (int)stride_h, (int)stride_w, (int)pad_top,
                              (int)pad_left, (int)dilation_h, (int)dilation_w, (int)out_h,
                              (int)out_w);
  call.images = images;
  call.out_channels = out_channels;
  call.plane = plane;
  call.out_plane = out_plane;
  call.taps = taps;
  return call;
}

// Eight lanes of scalar_t as a GCC vector: one AVX register of floats, two of
// doubles (the baseline clone splits them into SSE2 halves; every lane still
// does the same operations, so the bits agree). Plain loops over a tile did
// not stay in registers (measured: 7 GFLOP/s against 60-78 with these, one
// core, digits conv2).
template <typename scalar_t>
struct lanes8;
template <>
struct lanes8<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct lanes8<double> {
  typedef double type __attribute__((vector_size(64)));
};
const int kLanes = 8;

// Columns of one register tile (vectors of 8), and destination channels per
// tile: 16 x 4 floats or 8 x 4 doubles are 8 AVX registers of accumulators.
template <typename scalar_t>
struct tile_vectors {
  static const int value = 2;
};
template <>
struct tile_vectors<double> {
  static const int value = 1;
};
// A tile of fewer channels is wider, so that it still has 8 AVX registers of
// independent sums: with 2 (one channel, 16 columns) the adds waited on each
// other (measured: digits conv1 backward-data, 1 destination channel, 51 ms
// against 29 for the forward's 4).
template <typename scalar_t, int channels>
struct tile_shape {
  static const int vectors =
      tile_vectors<scalar_t>::value * (channels == 1 ? 4 : channels == 2 ? 2 : 1);
  static const int width = kLanes * vectors;
};
// The widest tile: the columns a zero-extended row must hold past out_w.
template <typename scalar_t>
struct tile_width {
  static const int value = tile_shape<scalar_t, 1>::width;
};
const int kTileChannels = 4;

template <typename vec_t, typename scalar_t>
inline vec_t load_lanes(const scalar_t* src, long long step) {
  vec_t v;
  if (step == 1) {
    std::memcpy(&v, src, sizeof(vec_t));
  } else {
    for (int l = 0; l < kLanes; ++l) v[l] = src[l * step];
  }
  return v;
}

// One axis of a zero-extended copy: buffer position q holds source position
// (q - offset) / spread when that divides exactly and lies in [0, size), 0
// otherwise (spread is the stride whose zeros backward-data inserts; offset
// may be negative).
struct extension {
  long long offset;
  int spread, size, extent;  // extent: buffer positions
};

inline long long extension_source(const extension& e, long long q) {
  const long long t = q - e.offset;
  if (t < 0 || t % e.spread != 0 || t / e.spread >= e.size) return -1;
  return t / e.spread;
}

// The zero-extended copy of `planes` source planes (size rows.size x
// cols.size each, contiguous) into `buffer` (rows.extent x cols.extent each).
template <typename scalar_t>
void extend_planes(const scalar_t* source, int planes, const extension& rows,
                   const extension& cols, scalar_t* buffer) {
  std::fill(buffer, buffer + (long long)planes * rows.extent * cols.extent, scalar_t(0));
  for (int p = 0; p < planes; ++p) {
    const scalar_t* plane = source + (long long)p * rows.size * cols.size;
    for (int r = 0; r < rows.extent; ++r) {
      const long long h = extension_source(rows, r);
      if (h < 0) continue;
      const scalar_t* src = plane + h * cols.size;
      scalar_t* dst = buffer + ((long long)p * rows.extent + r) * cols.extent;
      if (cols.spread == 1) {
        const long long lo = nnl_max(0LL, cols.offset);
        const long long hi = nnl_min((long long)cols.extent, cols.offset + cols.size);
        if (lo < hi) std::copy(src + (lo - cols.offset), src + (hi - cols.offset), dst + lo);
      } else {
        for (int q = 0; q < cols.extent; ++q) {
          const long long w = extension_source(cols, q);
          if (w >= 0) dst[q] = src[w];
        }
      }
    }
  }
}

// What `correlate` computes: dest[d, r, c] = bias[d] (if any) + sum over
// source planes s, taps (i, j) of filters[d, s, i, j] * buffer[s, r * row_step
// + i * tap_h, c * col_step + j * tap_w].
struct correlation {
  int sources, dests, out_h, out_w, kernel_h, kernel_w;
  int row_step, col_step, tap_h, tap_w;
  extension rows, cols;  // of the source planes into the buffer
};

// One register tile: `channels` (<= kTileChannels) destination channels from
// d0, columns [c0, c0 + V) of row r, the valid `count` of them stored.
template <typename scalar_t, int channels>
NNL_HOST_FLATTEN void correlate_tile(const correlation& k, const scalar_t* buffer,
                                     const scalar_t* filters, const scalar_t* bias, int d0,
                                     int r, int c0, int count, scalar_t* dest) {
  typedef typename lanes8<scalar_t>::type vec_t;
  const int NV = tile_shape<scalar_t, channels>::vectors;
  const long long taps = (long long)k.kernel_h * k.kernel_w;
  const long long plane = (long long)k.rows.extent * k.cols.extent;
  const long long filter_stride = (long long)k.sources * taps;
  vec_t acc[channels][NV];
  for (int d = 0; d < channels; ++d) {
    for (int v = 0; v < NV; ++v) acc[d][v] = vec_t{};
  }
  for (int s = 0; s < k.sources; ++s) {
    const scalar_t* filter = filters + ((long long)d0 * k.sources + s) * taps;
    for (int i = 0; i < k.kernel_h; ++i) {
      const scalar_t* row = buffer + s * plane +
                            ((long long)r * k.row_step + (long long)i * k.tap_h) * k.cols.extent +
                            (long long)c0 * k.col_step;
      for (int j = 0; j < k.kernel_w; ++j) {
        const scalar_t* src = row + (long long)j * k.tap_w;
        const long long tap = (long long)i * k.kernel_w + j;
        vec_t x[NV];
        for (int v = 0; v < NV; ++v) {
          x[v] = load_lanes<vec_t>(src + (long long)v * kLanes * k.col_step, k.col_step);
        }
        for (int d = 0; d < channels; ++d) {
          const scalar_t weight = filter[d * filter_stride + tap];
          for (int v = 0; v < NV; ++v) acc[d][v] = direct_conv_madd(acc[d][v], weight, x[v]);
        }
      }
    }
  }
  const long long out_plane = (long long)k.out_h * k.out_w;
  for (int d = 0; d < channels; ++d) {
    scalar_t lanes[kLanes * NV];
    std::memcpy(lanes, acc[d], sizeof(lanes));
    scalar_t* out = dest + (d0 + d) * out_plane + (long long)r * k.out_w + c0;
    if (bias) {
      for (int v = 0; v < count; ++v) out[v] = lanes[v] + bias[d0 + d];
    } else {
      for (int v = 0; v < count; ++v) out[v] = lanes[v];
    }
  }
}

// A block of up to kTileChannels destination channels of one image, every row.
template <typename scalar_t, int channels>
NNL_HOST_VECTOR_CLONES NNL_HOST_FLATTEN void correlate_block(
    const correlation& k, const scalar_t* buffer, const scalar_t* filters, const scalar_t* bias,
    int d0, scalar_t* dest) {
  const int V = tile_shape<scalar_t, channels>::width;
  // Down a strip of V columns, row after row: the source rows a tile reads
  // are mostly the ones the tile above read, still in L1 (a whole row at a
  // time they were not, with many channels and a tall kernel).
  for (int c0 = 0; c0 < k.out_w; c0 += V) {
    for (int r = 0; r < k.out_h; ++r) {
      correlate_tile<scalar_t, channels>(k, buffer, filters, bias, d0, r, c0,
                                         nnl_min(V, k.out_w - c0), dest);
    }
  }
}

// source (images, sources, rows.size, cols.size) -> dest (images, dests,
// out_h, out_w), in parallel over (image, block of destination channels); a
// worker extends an image's planes once for all the blocks it runs of it.
template <typename scalar_t>
void correlate(const correlation& k, long long images, const scalar_t* source,
               const scalar_t* filters, const scalar_t* bias, scalar_t* dest) {
  const long long blocks_per_image = (k.dests + kTileChannels - 1) / kTileChannels;
  const long long items = images * blocks_per_image;
  const long long source_image = (long long)k.sources * k.rows.size * k.cols.size;
  const long long dest_image = (long long)k.dests * k.out_h * k.out_w;
  const long long buffer_size = (long long)k.sources * k.rows.extent * k.cols.extent;
  // Contiguous runs of items per worker, so that most runs stay on one image.
  const long long runs = nnl_min(items, 64LL);
  const long long work = items * kTileChannels * k.out_h * (long long)k.out_w *
                         k.sources * k.kernel_h * k.kernel_w;
  for_each_plane(runs, work, [&](long long run) {
    const long long begin = items * run / runs, end = items * (run + 1) / runs;
    std::vector<scalar_t> buffer((size_t)buffer_size);
    long long extended = -1;  // the image whose planes the buffer holds
    for (long long item = begin; item < end; ++item) {
      const long long n = item / blocks_per_image;
      const int d0 = (int)(item - n * blocks_per_image) * kTileChannels;
      if (n != extended) {
        extend_planes(source + n * source_image, k.sources, k.rows, k.cols, buffer.data());
        extended = n;
      }
      scalar_t* out = dest + n * dest_image;
      switch (nnl_min(kTileChannels, k.dests - d0)) {
        case 1: correlate_block<scalar_t, 1>(k, buffer.data(), filters, bias, d0, out); break;
        case 2: correlate_block<scalar_t, 2>(k, buffer.data(), filters, bias, d0, out); break;
        case 3: correlate_block<scalar_t, 3>(k, buffer.data(), filters, bias, d0, out); break;
        default: correlate_block<scalar_t, 4>(k, buffer.data(), filters, bias, d0, out); break;
      }
    }
  });
}

// Columns the last tile of a row reads past out_w: the buffer holds them (as
// zeros) so that no tile needs a shorter loop.
int tile_extent(int out, int step, int kernel, int tap, int tile) {
  const long long columns = (long long)(out + tile - 1) / tile * tile;
  return (int)(nnl_max(0LL, columns - 1) * step + (long long)(kernel - 1) * tap + 1);
}

#define DIRECT_PARAMS                                                                    \
  long long images, long long channels, long long out_channels, long long height,        \
      long long width, long long kernel_h, long long kernel_w, long long stride_h,       \
      long long stride_w, long long pad_top, long long pad_left, long long dilation_h,   \
      long long dilation_w, long long out_h, long long out_w
#define DIRECT_ARGS                                                                       \
  images, channels, out_channels, height, width, kernel_h, kernel_w, stride_h, stride_w,  \
      pad_top, pad_left, dilation_h, dilation_w, out_h, out_w

template <typename scalar_t>
void forward(host_array<scalar_t> x, host_array<scalar_t> w, host_array<scalar_t> b,
             host_array<scalar_t> y, DIRECT_PARAMS) {
  const char* op = "direct_conv_forward";
  const direct_call call = checked_call(op, x, "x", y, "y", w, "w", DIRECT_ARGS);
  require_elements(op, "b", b, out_channels, "out_channels");
  require_writable(op, "y", y);
  require_disjoint(op, "y", y, "x", x);
  require_disjoint(op, "y", y, "w", w);
  require_disjoint(op, "y", y, "b", b);
  if (y.size() == 0) return;
  const conv_geometry g = call.g;
  correlation k;
  k.sources = g.channels;
  k.dests = (int)out_channels;
  k.out_h = g.out_h;
  k.out_w = g.out_w;
  k.kernel_h = g.kernel_h;
  k.kernel_w = g.kernel_w;
  k.row_step = g.stride_h;
  k.col_step = g.stride_w;
  k.tap_h = g.dilation_h;
  k.tap_w = g.dilation_w;
  const extension rows = {g.pad_top, 1, g.height,
                          tile_extent(g.out_h, g.stride_h, g.kernel_h, g.dilation_h, 1)};
  const extension cols = {g.pad_left, 1, g.width,
                          tile_extent(g.out_w, g.stride_w, g.kernel_w, g.dilation_w,
                                      tile_width<scalar_t>::value)};
  k.rows = rows;
  k.cols = cols;
  const scalar_t *x_data = x.data(), *w_data = w.data(), *b_data = b.data();
  scalar_t* y_data = y.mutable_data();
  py::gil_scoped_release no_gil;
  correlate(k, call.images, x_data, w_data, b_data, y_data);
}

template <typename scalar_t>
void backward_data(host_array<scalar_t> gy, host_array<scalar_t> w, host_array<scalar_t> gx,
                   DIRECT_PARAMS) {
  const char* op = "direct_conv_backward_data";
  const direct_call call = checked_call(op, gx, "gx", gy, "gy", w, "w", DIRECT_ARGS);
  require_writable(op, "gx", gx);
  require_disjoint(op, "gx", gx, "gy", gy);
  require_disjoint(op, "gx", gx, "w", w);
  if (gx.size() == 0) return;
  const conv_geometry g = call.g;
  const scalar_t *gy_data = gy.data(), *w_data = w.data();
  scalar_t* gx_data = gx.mutable_data();
  const long long taps = call.taps;
  py::gil_scoped_release no_gil;
  // The flipped, transposed filters: flipped[c, o, i', j'] = w[o, c, kh-1-i', kw-1-j'].
  std::vector<scalar_t> flipped((size_t)(call.out_channels * g.channels * taps));
  for (long long o = 0; o < call.out_channels; ++o) {
    for (long long c = 0; c < g.channels; ++c) {
      const scalar_t* src = w_data + (o * g.channels + c) * taps;
      scalar_t* dst = &flipped[(size_t)((c * call.out_channels + o) * taps)];
      for (long long t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
    }
  }
  correlation k;
  k.sources = (int)call.out_channels;
  k.dests = g.channels;
  k.out_h = g.height;
  k.out_w = g.width;
  k.kernel_h = g.kernel_h;
  k.kernel_w = g.kernel_w;
  k.row_step = 1;
  k.col_step = 1;
  k.tap_h = g.dilation_h;
  k.tap_w = g.dilation_w;
  // Buffer row r of input row h and flipped tap i' is r = h + i' * dilation:
  // gy's row t / stride_h for t = r - ((kernel_h - 1) * dilation_h - pad_top).
  const extension rows = {(long long)(g.kernel_h - 1) * g.dilation_h - g.pad_top, g.stride_h,
                          g.out_h, tile_extent(g.height, 1, g.kernel_h, g.dilation_h, 1)};
  const extension cols = {(long long)(g.kernel_w - 1) * g.dilation_w - g.pad_left,
                          g.stride_w, g.out_w,
                          tile_extent(g.width, 1, g.kernel_w, g.dilation_w,
                                      tile_width<scalar_t>::value)};
  k.rows = rows;
  k.cols = cols;
  if (call.out_channels == 0 || call.out_plane == 0) {
    std::fill(gx_data, gx_data + gx.size(), scalar_t(0));
    return;
  }
  correlate(k, call.images, gy_data, (const scalar_t*)&flipped[0], (const scalar_t*)0, gx_data);
}

// Output channels a worker's weight elements span (one input channel), and
// taps of one kernel row it sums at once: 4 x 3 vectors of sums from 4 vectors
// of gy and 3 of x per step (one tap at a time: 120 ms on digits conv2's weight
// gradient, one thread; 4 x 3: 105 ms; 4 x 2 measured no faster). It stays
// about twice the forward's time per product: GCC folds the gy loads into the
// multiplies, 15 loads per 12 products, since 12 sums leave no register spare.
const int kWeightChannels = 4;
const int kWeightTaps = 3;

// Adds the terms of rows [r0, r1) of one image to the lanes of the weight
// elements (o0 .. o0 + channels, c, i, j0 .. j0 + taps): gy_image is gy[n],
// plane the zero-extended x[n, c] (rows.extent x cols.extent). Lane l of an
// element takes the columns ow = l mod kLanes; the columns past the last full
// vector go to their lanes one at a time (a vector there would multiply gy's
// neighbours by x values no output reads, a NaN among them included).
template <typename scalar_t, int channels, int taps>
NNL_HOST_FLATTEN void weight_lanes_rows(const conv_geometry& g, const scalar_t* gy_image,
                                        int o0, const scalar_t* plane, int plane_w, int i,
                                        int j0, int r0, int r1, scalar_t* lanes) {
  typedef typename lanes8<scalar_t>::type vec_t;
  const long long out_plane = (long long)g.out_h * g.out_w;
  const long long kernel_taps = (long long)g.kernel_h * g.kernel_w;
  const long long sw = g.stride_w;
  const int full = g.out_w / kLanes * kLanes;
  vec_t acc[channels][taps];
  scalar_t* stored = lanes + ((long long)i * g.kernel_w + j0) * kLanes;
  for (int d = 0; d < channels; ++d) {
    std::memcpy(acc[d], stored + d * kernel_taps * kLanes, sizeof(acc[d]));
  }
  for (int r = r0; r < r1; ++r) {
    const scalar_t* xrow = plane +
                           ((long long)r * g.stride_h + (long long)i * g.dilation_h) * plane_w +
                           (long long)j0 * g.dilation_w;
    const scalar_t* gyrow = gy_image + (long long)o0 * out_plane + (long long)r * g.out_w;
    for (int q = 0; q < full; q += kLanes) {
      vec_t xv[taps], gv[channels];
      for (int t = 0; t < taps; ++t) {
        xv[t] = load_lanes<vec_t>(xrow + q * sw + (long long)t * g.dilation_w, sw);
      }
      for (int d = 0; d < channels; ++d) gv[d] = load_lanes<vec_t>(gyrow + d * out_plane + q, 1);
      for (int d = 0; d < channels; ++d) {
        for (int t = 0; t < taps; ++t) acc[d][t] = direct_conv_madd(acc[d][t], gv[d], xv[t]);
      }
    }
    for (int q = full; q < g.out_w; ++q) {
      for (int t = 0; t < taps; ++t) {
        const scalar_t xq = xrow[q * sw + (long long)t * g.dilation_w];
        for (int d = 0; d < channels; ++d) {
          acc[d][t][q - full] =
              direct_conv_madd(acc[d][t][q - full], gyrow[d * out_plane + q], xq);
        }
      }
    }
  }
  for (int d = 0; d < channels; ++d) {
    std::memcpy(stored + d * kernel_taps * kLanes, acc[d], sizeof(acc[d]));
  }
}

template <typename scalar_t, int channels>
NNL_HOST_VECTOR_CLONES NNL_HOST_FLATTEN void weight_lanes_pass(
    const conv_geometry& g, const scalar_t* gy_image, int o0, const scalar_t* plane,
    int plane_w, int r0, int r1, scalar_t* lanes) {
  for (int i = 0; i < g.kernel_h; ++i) {
    for (int j0 = 0; j0 < g.kernel_w; j0 += kWeightTaps) {
      switch (nnl_min(kWeightTaps, g.kernel_w - j0)) {
        case 1:
          weight_lanes_rows<scalar_t, channels, 1>(g, gy_image, o0, plane, plane_w, i, j0,
                                                   r0, r1, lanes);
          break;
        case 2:
          weight_lanes_rows<scalar_t, channels, 2>(g, gy_image, o0, plane, plane_w, i, j0,
                                                   r0, r1, lanes);
          break;
        default:
          weight_lanes_rows<scalar_t, channels, 3>(g, gy_image, o0, plane, plane_w, i, j0,
                                                   r0, r1, lanes);
          break;
      }
    }
  }
}

template <typename scalar_t>
void backward_weight(host_array<scalar_t> x, host_array<scalar_t> gy, host_array<scalar_t> gw,
                     DIRECT_PARAMS) {
  const char* op = "direct_conv_backward_weight";
  const direct_call call = checked_call(op, x, "x", gy, "gy", gw, "gw", DIRECT_ARGS);
  require_writable(op, "gw", gw);
  require_disjoint(op, "gw", gw, "x", x);
  require_disjoint(op, "gw", gw, "gy", gy);
  if (gw.size() == 0) return;
  const conv_geometry g = call.g;
  if (call.images == 0 || call.out_plane == 0) {  // no terms (and no image loop to run)
    std::fill(gw.mutable_data(), gw.mutable_data() + gw.size(), scalar_t(0));
    return;
  }
  const scalar_t *x_data = x.data(), *gy_data = gy.data();
  scalar_t* gw_data = gw.mutable_data();
  const int taps = (int)call.taps;
  const long long blocks_per_channel =
      (call.out_channels + kWeightChannels - 1) / kWeightChannels;
  const long long items = blocks_per_channel * g.channels;
  const extension rows = {g.pad_top, 1, g.height,
                          tile_extent(g.out_h, g.stride_h, g.kernel_h, g.dilation_h, 1)};
  const extension cols = {g.pad_left, 1, g.width,
                          tile_extent(g.out_w, g.stride_w, g.kernel_w, g.dilation_w, 1)};
  // Rows of a pass over the taps, so that the gy rows it reads again for every
  // tap stay in L1 (measured no faster than 4x as many rows, but no slower).
  const int pass_rows = (int)nnl_max(1LL, 2048LL / ((long long)g.out_w + 1));
  const long long image_size = (long long)g.channels * call.plane;
  const long long gy_image = call.out_channels * call.out_plane;
  py::gil_scoped_release no_gil;
  for_each_plane(items, call.images * call.out_plane * taps * call.out_channels * g.channels,
                 [&](long long item) {
    const long long c = item / blocks_per_channel;
    const int o0 = (int)(item - c * blocks_per_channel) * kWeightChannels;
    const int channels = (int)nnl_min((long long)kWeightChannels, call.out_channels - o0);
    std::vector<scalar_t> plane((size_t)rows.extent * cols.extent);
    std::vector<scalar_t> lanes((size_t)kWeightChannels * taps * kLanes, scalar_t(0));
    for (long long n = 0; n < call.images; ++n) {
      extend_planes(x_data + n * image_size + c * call.plane, 1, rows, cols, &plane[0]);
      const scalar_t* gyn = gy_data + n * gy_image;
      for (int r0 = 0; r0 < g.out_h; r0 += pass_rows) {
        const int r1 = nnl_min(g.out_h, r0 + pass_rows);
        switch (channels) {
          case 1:
            weight_lanes_pass<scalar_t, 1>(g, gyn, o0, &plane[0], cols.extent, r0, r1, &lanes[0]);
            break;
          case 2:
            weight_lanes_pass<scalar_t, 2>(g, gyn, o0, &plane[0], cols.extent, r0, r1, &lanes[0]);
            break;
          case 3:
            weight_lanes_pass<scalar_t, 3>(g, gyn, o0, &plane[0], cols.extent, r0, r1, &lanes[0]);
            break;
          default:
            weight_lanes_pass<scalar_t, 4>(g, gyn, o0, &plane[0], cols.extent, r0, r1, &lanes[0]);
            break;
        }
      }
    }
    for (int d = 0; d < channels; ++d) {
      for (int t = 0; t < taps; ++t) {
        const scalar_t* lane = &lanes[(size_t)((d * taps + t) * kLanes)];
        scalar_t sum = lane[0];
        for (int l = 1; l < kLanes; ++l) sum += lane[l];
        gw_data[((o0 + d) * (long long)g.channels + c) * taps + t] = sum;
      }
    }
  });
}

#define DIRECT_PY_ARGS                                                                   \
  py::arg("images"), py::arg("channels"), py::arg("out_channels"), py::arg("height"),    \
      py::arg("width"), py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h"),   \
      py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"), py::arg("dilation_h"), \
      py::arg("dilation_w"), py::arg("out_h"), py::arg("out_w")

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("direct_conv_forward_" + suffix).c_str(), &forward<scalar_t>,
        py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b").noconvert(),
        py::arg("y").noconvert(), DIRECT_PY_ARGS,
        "y = b + the convolution of x (images, C, H, W) with w (K, C, kh, kw), directly.");
  m.def(("direct_conv_backward_data_" + suffix).c_str(), &backward_data<scalar_t>,
        py::arg("gy").noconvert(), py::arg("w").noconvert(), py::arg("gx").noconvert(),
        DIRECT_PY_ARGS, "gx, the gradient of the direct convolution's input, from gy.");
  m.def(("direct_conv_backward_weight_" + suffix).c_str(), &backward_weight<scalar_t>,
        py::arg("x").noconvert(), py::arg("gy").noconvert(), py::arg("gw").noconvert(),
        DIRECT_PY_ARGS, "gw, the gradient of the direct convolution's weights, from x and gy.");
}

}  // namespace

void register_direct_conv(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
