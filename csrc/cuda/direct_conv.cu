// CUDA launcher of csrc/nnlite/direct_conv.cuh: one thread per output element
// (forward) or input-gradient element (backward-data), grid-stride loops; one
// block per weight-gradient element (a grid-stride loop over the elements),
// its threads sharing the output positions and adding their shares in a
// fixed tree: no atomics, the same bits on every run. Launched by
// nnlite/kernels/direct_conv.py (through nnlite/kernels/launch.py);
// csrc/host/direct_conv.cpp takes the same arguments.
#include "nnlite/direct_conv.cuh"
#include "cuda/block_reduce.cuh"

// index_t: unsigned int when direct_narrow says every index fits, else long long.
template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void forward_grid(const scalar_t* x, const scalar_t* w, const scalar_t* b,
                                        scalar_t* y, index_t images, int out_channels,
                                        const conv_geometry& g) {
  const index_t out_plane = (index_t)g.out_h * g.out_w;
  const index_t image_size = (index_t)g.channels * g.height * g.width;
  const index_t filter_size = (index_t)g.channels * g.kernel_h * g.kernel_w;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, images * out_channels * out_plane) {
    const index_t plane = idx / out_plane;
    const index_t p = idx - plane * out_plane;
    const index_t n = plane / out_channels;
    const index_t o = plane - n * out_channels;
    const index_t oh = p / g.out_w;
    y[idx] = direct_conv_output_element(x + n * image_size, w + o * filter_size, b[o], g,
                                        (int)oh, (int)(p - oh * g.out_w));
  }
}

template <typename scalar_t, typename index_t>
__device__ NNL_INLINE void backward_data_grid(const scalar_t* gy, const scalar_t* w,
                                              scalar_t* gx, index_t images, int out_channels,
                                              const conv_geometry& g) {
  const index_t plane_size = (index_t)g.height * g.width;
  const index_t gy_image = (index_t)out_channels * g.out_h * g.out_w;
  NNL_GRID_STRIDE_LOOP_AS(index_t, idx, images * g.channels * plane_size) {
    const index_t plane = idx / plane_size;
    const index_t hw = idx - plane * plane_size;
    const index_t n = plane / g.channels;
    const index_t c = plane - n * g.channels;
    const index_t h = hw / g.width;
    gx[idx] = direct_conv_input_grad_element(gy + n * gy_image, w, g, out_channels, (int)c,
                                             (int)h, (int)(hw - h * g.width));
  }
}

// Every block walks the weight elements gridDim.x apart; all its threads take
// part in each element's reduction, so the barriers of block_reduce are met
// by the whole block.
template <typename scalar_t>
__device__ NNL_INLINE void backward_weight_blocks(const scalar_t* x, const scalar_t* gy,
                                                  scalar_t* gw, long long images,
                                                  int out_channels, const conv_geometry& g) {
  scalar_t* scratch = nnl_shared_scratch<scalar_t>();
  const int taps = g.kernel_h * g.kernel_w;
  const long long elements = (long long)out_channels * g.channels * taps;
  for (long long e = blockIdx.x; e < elements; e += gridDim.x) {
    const long long filter = e / taps;
    const int tap = (int)(e - filter * taps);
    const int o = (int)(filter / g.channels);
    const int c = (int)(filter - (long long)o * g.channels);
    const int i = tap / g.kernel_w;
    const scalar_t share = direct_conv_weight_grad_partial(
        x, gy, g, images, out_channels, o, c, i, tap - i * g.kernel_w, (long long)threadIdx.x,
        (long long)blockDim.x);
    const scalar_t total = block_reduce(share, scratch, nnl_sum_op());
    if (threadIdx.x == 0) gw[e] = total;
  }
}

// Whether every index of a forward / backward-data launch fits the narrow
// type: the input, the output and the weights.
__device__ NNL_INLINE bool direct_narrow(long long images, int out_channels,
                                         const conv_geometry& g) {
  const long long input = images * g.channels * g.height * g.width;
  const long long output = images * out_channels * g.out_h * g.out_w;
  const long long weights = (long long)out_channels * g.channels * g.kernel_h * g.kernel_w;
  return nnl_narrow_index(nnl_max(nnl_max(input, output), weights));
}

#define NNL_DIRECT_CONV_PARAMS                                                            \
  long long images, int channels, int out_channels, int height, int width, int kernel_h,  \
      int kernel_w, int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, \
      int dilation_w, int out_h, int out_w
#define NNL_DIRECT_CONV_GEOMETRY                                                           \
  make_conv_geometry(channels, height, width, kernel_h, kernel_w, stride_h, stride_w,      \
                     pad_top, pad_left, dilation_h, dilation_w, out_h, out_w)

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
direct_conv_forward_f32(const float* x, const float* w, const float* b, float* y,
                        NNL_DIRECT_CONV_PARAMS) {
  const conv_geometry g = NNL_DIRECT_CONV_GEOMETRY;
  if (direct_narrow(images, out_channels, g)) {
    forward_grid(x, w, b, y, (unsigned int)images, out_channels, g);
  } else {
    forward_grid(x, w, b, y, images, out_channels, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
direct_conv_forward_f64(const double* x, const double* w, const double* b, double* y,
                        NNL_DIRECT_CONV_PARAMS) {
  const conv_geometry g = NNL_DIRECT_CONV_GEOMETRY;
  if (direct_narrow(images, out_channels, g)) {
    forward_grid(x, w, b, y, (unsigned int)images, out_channels, g);
  } else {
    forward_grid(x, w, b, y, images, out_channels, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
direct_conv_backward_data_f32(const float* gy, const float* w, float* gx,
                              NNL_DIRECT_CONV_PARAMS) {
  const conv_geometry g = NNL_DIRECT_CONV_GEOMETRY;
  if (direct_narrow(images, out_channels, g)) {
    backward_data_grid(gy, w, gx, (unsigned int)images, out_channels, g);
  } else {
    backward_data_grid(gy, w, gx, images, out_channels, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
direct_conv_backward_data_f64(const double* gy, const double* w, double* gx,
                              NNL_DIRECT_CONV_PARAMS) {
  const conv_geometry g = NNL_DIRECT_CONV_GEOMETRY;
  if (direct_narrow(images, out_channels, g)) {
    backward_data_grid(gy, w, gx, (unsigned int)images, out_channels, g);
  } else {
    backward_data_grid(gy, w, gx, images, out_channels, g);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
direct_conv_backward_weight_f32(const float* x, const float* gy, float* gw,
                                NNL_DIRECT_CONV_PARAMS) {
  backward_weight_blocks(x, gy, gw, images, out_channels, NNL_DIRECT_CONV_GEOMETRY);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
direct_conv_backward_weight_f64(const double* x, const double* gy, double* gw,
                                NNL_DIRECT_CONV_PARAMS) {
  backward_weight_blocks(x, gy, gw, images, out_channels, NNL_DIRECT_CONV_GEOMETRY);
}
