// CUDA launcher of csrc/nnlite/winograd.cuh: grid-stride loops with one thread
// per row of a transformed tile: (row, channel, tile) for the input and output
// transforms and the output adjoint, (row, filter) for the filter transform
// and its adjoint. Every thread writes its own outputs: no atomics.
// `tile` (the output tile's side m: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3))
// picks the variant; the whole launch takes one branch. Launched by
// nnlite/kernels/winograd.py (through nnlite/kernels/launch.py);
// csrc/host/winograd.cpp takes the same arguments.
#include "nnlite/winograd.cuh"

// The (row, channel, column) of a grid index over rows x channels x columns,
// where column = image * tiles + tile. rows * channels fits an int (the host
// checks the same limit), so only two of the divisions are 64-bit.
struct winograd_item {
  int row, channel, tile;
  long long column, image;
};

__device__ NNL_INLINE winograd_item winograd_item_of(long long idx, int channels,
                                                     long long columns, int tiles) {
  winograd_item item;
  const long long row_channel = idx / columns;
  item.column = idx - row_channel * columns;
  item.row = (int)row_channel / channels;
  item.channel = (int)row_channel - item.row * channels;
  item.image = item.column / tiles;
  item.tile = (int)(item.column - item.image * tiles);
  return item;
}

// One thread per row of a transformed tile, computed from the whole tile
// (which the tile's other rows re-read from the cache): a thread per tile,
// with F(4x4, 3x3) in double, needed more than the TK1's 63 registers.

// x (images, channels, height, width) -> v (alpha^2, channels, images * tiles).
template <typename W, typename scalar_t>
__device__ NNL_INLINE void input_transform_grid(const scalar_t* x, scalar_t* v,
                                                long long images, int channels,
                                                const winograd_tiling& t) {
  const int tiles = t.tiles_h * t.tiles_w;
  const long long columns = images * tiles;  // v's row length
  const long long stride = channels * columns;  // between components
  const long long plane = (long long)t.height * t.width;
  NNL_GRID_STRIDE_LOOP(idx, W::alpha * stride) {
    const winograd_item it = winograd_item_of(idx, channels, columns, tiles);
    const winograd_input_tile<W, scalar_t> d(x + (it.image * channels + it.channel) * plane, t,
                                             it.tile / t.tiles_w, it.tile % t.tiles_w);
    winograd_input_row<W>(d, it.row, v + it.channel * columns + it.column, stride);
  }
}

// w (out_channels, in_channels, 3, 3) -> u (alpha^2, out_channels, in_channels).
template <typename W, typename scalar_t>
__device__ NNL_INLINE void filter_transform_grid(const scalar_t* w, scalar_t* u,
                                                 int out_channels, int in_channels) {
  const long long filters = (long long)out_channels * in_channels;
  NNL_GRID_STRIDE_LOOP(idx, W::alpha * filters) {
    const int row = (int)(idx / filters);
    const long long filter = idx - row * filters;
    winograd_filter_row<W>(w + 9 * filter, row, u + filter, filters);
  }
}

// m (alpha^2, channels, images * tiles) -> y (images, channels, out_h, out_w).
template <typename W, typename scalar_t>
__device__ NNL_INLINE void output_transform_grid(const scalar_t* m, scalar_t* y,
                                                 long long images, int channels,
                                                 const winograd_tiling& t) {
  const int tiles = t.tiles_h * t.tiles_w;
  const long long columns = images * tiles;
  const long long stride = channels * columns;
  const long long plane = (long long)t.height * t.width;
  NNL_GRID_STRIDE_LOOP(idx, W::m * stride) {
    const winograd_item it = winograd_item_of(idx, channels, columns, tiles);
    const long long h = winograd_output_position<W>(it.tile / t.tiles_w, it.row, t.height);
    if (h < 0) continue;
    const int w = W::m * (it.tile % t.tiles_w);  // the tile's first column
    winograd_output_row<W>(m + it.channel * columns + it.column, stride, it.row,
                           y + (it.image * channels + it.channel) * plane + h * t.width + w,
                           nnl_min((int)W::m, t.width - w));
  }
}

// gy (images, channels, out_h, out_w) -> dm (alpha^2, channels, images * tiles).
template <typename W, typename scalar_t>
__device__ NNL_INLINE void output_adjoint_grid(const scalar_t* gy, scalar_t* dm,
                                               long long images, int channels,
                                               const winograd_tiling& t) {
  const int tiles = t.tiles_h * t.tiles_w;
  const long long columns = images * tiles;
  const long long stride = channels * columns;
  const long long plane = (long long)t.height * t.width;
  NNL_GRID_STRIDE_LOOP(idx, W::alpha * stride) {
    const winograd_item it = winograd_item_of(idx, channels, columns, tiles);
    const scalar_t* image = gy + (it.image * channels + it.channel) * plane;
    scalar_t dy[W::m * W::m];  // the tile's output gradient, zero past the edge
    for (int a = 0; a < W::m; ++a) {
      const long long h = winograd_output_position<W>(it.tile / t.tiles_w, a, t.height);
      for (int b = 0; b < W::m; ++b) {
        const long long w = winograd_output_position<W>(it.tile % t.tiles_w, b, t.width);
        dy[W::m * a + b] = (h >= 0 && w >= 0) ? image[h * t.width + w] : scalar_t(0);
      }
    }
    winograd_output_adjoint_row<W>(dy, it.row, dm + it.channel * columns + it.column, stride);
  }
}

// du (alpha^2, out_channels, in_channels) -> gw (out_channels, in_channels, 3, 3).
template <typename W, typename scalar_t>
__device__ NNL_INLINE void filter_adjoint_grid(const scalar_t* du, scalar_t* gw,
                                               int out_channels, int in_channels) {
  const long long filters = (long long)out_channels * in_channels;
  NNL_GRID_STRIDE_LOOP(idx, 3 * filters) {
    const int row = (int)(idx / filters);
    const long long filter = idx - row * filters;
    winograd_filter_adjoint_row<W>(du + filter, filters, row, gw + 9 * filter + 3 * row);
  }
}

#define NNL_WINOGRAD_INPUT_PARAMS                                                         \
  long long images, int channels, int height, int width, int pad_top, int pad_left,      \
      int tiles_h, int tiles_w, int tile
#define NNL_WINOGRAD_OUTPUT_PARAMS                                                        \
  long long images, int channels, int out_h, int out_w, int tiles_h, int tiles_w, int tile
#define NNL_WINOGRAD_INPUT_TILING \
  make_winograd_tiling(height, width, pad_top, pad_left, tiles_h, tiles_w)
#define NNL_WINOGRAD_OUTPUT_TILING make_winograd_tiling(out_h, out_w, 0, 0, tiles_h, tiles_w)

// One variant or the other for the whole launch.
#define NNL_WINOGRAD_VARIANT(grid, args) \
  if (tile == 4) {                       \
    grid<winograd_f4> args;              \
  } else {                               \
    grid<winograd_f2> args;              \
  }

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_input_transform_f32(const float* x, float* v, NNL_WINOGRAD_INPUT_PARAMS) {
  NNL_WINOGRAD_VARIANT(input_transform_grid,
                       (x, v, images, channels, NNL_WINOGRAD_INPUT_TILING))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_input_transform_f64(const double* x, double* v, NNL_WINOGRAD_INPUT_PARAMS) {
  NNL_WINOGRAD_VARIANT(input_transform_grid,
                       (x, v, images, channels, NNL_WINOGRAD_INPUT_TILING))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_transform_f32(const float* w, float* u, int out_channels, int in_channels,
                              int tile) {
  NNL_WINOGRAD_VARIANT(filter_transform_grid, (w, u, out_channels, in_channels))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_transform_f64(const double* w, double* u, int out_channels, int in_channels,
                              int tile) {
  NNL_WINOGRAD_VARIANT(filter_transform_grid, (w, u, out_channels, in_channels))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_transform_f32(const float* m, float* y, NNL_WINOGRAD_OUTPUT_PARAMS) {
  NNL_WINOGRAD_VARIANT(output_transform_grid,
                       (m, y, images, channels, NNL_WINOGRAD_OUTPUT_TILING))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_transform_f64(const double* m, double* y, NNL_WINOGRAD_OUTPUT_PARAMS) {
  NNL_WINOGRAD_VARIANT(output_transform_grid,
                       (m, y, images, channels, NNL_WINOGRAD_OUTPUT_TILING))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_adjoint_f32(const float* gy, float* dm, NNL_WINOGRAD_OUTPUT_PARAMS) {
  NNL_WINOGRAD_VARIANT(output_adjoint_grid,
                       (gy, dm, images, channels, NNL_WINOGRAD_OUTPUT_TILING))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_adjoint_f64(const double* gy, double* dm, NNL_WINOGRAD_OUTPUT_PARAMS) {
  NNL_WINOGRAD_VARIANT(output_adjoint_grid,
                       (gy, dm, images, channels, NNL_WINOGRAD_OUTPUT_TILING))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_adjoint_f32(const float* du, float* gw, int out_channels, int in_channels,
                            int tile) {
  NNL_WINOGRAD_VARIANT(filter_adjoint_grid, (du, gw, out_channels, in_channels))
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_adjoint_f64(const double* du, double* gw, int out_channels, int in_channels,
                            int tile) {
  NNL_WINOGRAD_VARIANT(filter_adjoint_grid, (du, gw, out_channels, in_channels))
}
