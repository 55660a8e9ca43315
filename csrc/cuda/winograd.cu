// CUDA launcher of csrc/nnlite/winograd.cuh: grid-stride loops with one thread
// per (channel, tile) for the input and output transforms and their adjoint,
// and one per (out_channel, in_channel) filter for the filter transform and
// its adjoint. Every thread writes its own outputs: no atomics. Launched by
// nnlite/kernels/winograd.py (through nnlite/kernels/launch.py);
// csrc/host/winograd.cpp takes the same arguments.
#include "nnlite/winograd.cuh"

// x (images, channels, height, width) -> v (16, channels, images * tiles).
template <typename scalar_t>
__device__ NNL_INLINE void input_transform_grid(const scalar_t* x, scalar_t* v,
                                                long long images, int channels,
                                                const winograd_tiling& t) {
  const int tiles = t.tiles_h * t.tiles_w;
  const long long columns = images * tiles;  // v's row length
  const long long plane = (long long)t.height * t.width;
  NNL_GRID_STRIDE_LOOP(idx, channels * columns) {
    const int c = (int)(idx / columns);
    const long long column = idx - c * columns;
    const long long image = column / tiles;
    const int tile = (int)(column - image * tiles);
    scalar_t d[16];
    winograd_load_tile(x + (image * channels + c) * plane, t, tile / t.tiles_w,
                       tile % t.tiles_w, d);
    winograd_input_tile(d, v + idx, channels * columns);
  }
}

// w (out_channels, in_channels, 3, 3) -> u (16, out_channels, in_channels).
template <typename scalar_t>
__device__ NNL_INLINE void filter_transform_grid(const scalar_t* w, scalar_t* u,
                                                 int out_channels, int in_channels) {
  const long long filters = (long long)out_channels * in_channels;
  NNL_GRID_STRIDE_LOOP(idx, filters) { winograd_filter_tile(w + 9 * idx, u + idx, filters); }
}

// m (16, channels, images * tiles) -> y (images, channels, out_h, out_w).
template <typename scalar_t>
__device__ NNL_INLINE void output_transform_grid(const scalar_t* m, scalar_t* y,
                                                 long long images, int channels,
                                                 const winograd_tiling& t) {
  const int tiles = t.tiles_h * t.tiles_w;
  const long long columns = images * tiles;
  const long long plane = (long long)t.height * t.width;
  NNL_GRID_STRIDE_LOOP(idx, channels * columns) {
    const int c = (int)(idx / columns);
    const long long column = idx - c * columns;
    const long long image = column / tiles;
    const int tile = (int)(column - image * tiles);
    scalar_t out[4];
    winograd_output_tile(m + idx, channels * columns, out);
    winograd_store_output_tile(out, t, tile / t.tiles_w, tile % t.tiles_w,
                               y + (image * channels + c) * plane);
  }
}

// gy (images, channels, out_h, out_w) -> dm (16, channels, images * tiles).
template <typename scalar_t>
__device__ NNL_INLINE void output_adjoint_grid(const scalar_t* gy, scalar_t* dm,
                                               long long images, int channels,
                                               const winograd_tiling& t) {
  const int tiles = t.tiles_h * t.tiles_w;
  const long long columns = images * tiles;
  const long long plane = (long long)t.height * t.width;
  NNL_GRID_STRIDE_LOOP(idx, channels * columns) {
    const int c = (int)(idx / columns);
    const long long column = idx - c * columns;
    const long long image = column / tiles;
    const int tile = (int)(column - image * tiles);
    scalar_t dy[4];
    winograd_load_output_tile(gy + (image * channels + c) * plane, t, tile / t.tiles_w,
                              tile % t.tiles_w, dy);
    winograd_output_adjoint_tile(dy, dm + idx, channels * columns);
  }
}

// du (16, out_channels, in_channels) -> gw (out_channels, in_channels, 3, 3).
template <typename scalar_t>
__device__ NNL_INLINE void filter_adjoint_grid(const scalar_t* du, scalar_t* gw,
                                               int out_channels, int in_channels) {
  const long long filters = (long long)out_channels * in_channels;
  NNL_GRID_STRIDE_LOOP(idx, filters) {
    winograd_filter_adjoint_tile(du + idx, filters, gw + 9 * idx);
  }
}

#define NNL_WINOGRAD_INPUT_PARAMS                                                         \
  long long images, int channels, int height, int width, int pad_top, int pad_left,      \
      int tiles_h, int tiles_w
#define NNL_WINOGRAD_OUTPUT_PARAMS                                                        \
  long long images, int channels, int out_h, int out_w, int tiles_h, int tiles_w

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_input_transform_f32(const float* x, float* v, NNL_WINOGRAD_INPUT_PARAMS) {
  input_transform_grid(x, v, images, channels,
                       make_winograd_tiling(height, width, pad_top, pad_left, tiles_h, tiles_w));
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_input_transform_f64(const double* x, double* v, NNL_WINOGRAD_INPUT_PARAMS) {
  input_transform_grid(x, v, images, channels,
                       make_winograd_tiling(height, width, pad_top, pad_left, tiles_h, tiles_w));
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_transform_f32(const float* w, float* u, int out_channels, int in_channels) {
  filter_transform_grid(w, u, out_channels, in_channels);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_transform_f64(const double* w, double* u, int out_channels, int in_channels) {
  filter_transform_grid(w, u, out_channels, in_channels);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_transform_f32(const float* m, float* y, NNL_WINOGRAD_OUTPUT_PARAMS) {
  output_transform_grid(m, y, images, channels,
                        make_winograd_tiling(out_h, out_w, 0, 0, tiles_h, tiles_w));
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_transform_f64(const double* m, double* y, NNL_WINOGRAD_OUTPUT_PARAMS) {
  output_transform_grid(m, y, images, channels,
                        make_winograd_tiling(out_h, out_w, 0, 0, tiles_h, tiles_w));
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_adjoint_f32(const float* gy, float* dm, NNL_WINOGRAD_OUTPUT_PARAMS) {
  output_adjoint_grid(gy, dm, images, channels,
                      make_winograd_tiling(out_h, out_w, 0, 0, tiles_h, tiles_w));
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_output_adjoint_f64(const double* gy, double* dm, NNL_WINOGRAD_OUTPUT_PARAMS) {
  output_adjoint_grid(gy, dm, images, channels,
                      make_winograd_tiling(out_h, out_w, 0, 0, tiles_h, tiles_w));
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_adjoint_f32(const float* du, float* gw, int out_channels, int in_channels) {
  filter_adjoint_grid(du, gw, out_channels, in_channels);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
winograd_filter_adjoint_f64(const double* du, double* gw, int out_channels, int in_channels) {
  filter_adjoint_grid(du, gw, out_channels, in_channels);
}
