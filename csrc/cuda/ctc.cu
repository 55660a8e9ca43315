// CUDA launcher of csrc/nnlite/ctc.cuh.
//
// ctc_alpha / ctc_beta: one block per sequence, the block's threads stride over
// the extended label (so any label length works, 2L + 1 > 1024 included), a
// barrier between time steps; alpha and beta live in a global workspace
// (N, T_max, S_max) that the caller allocates.
// ctc_grad: a grid-stride loop over the (t, n, c) of the gradient, each thread
// gathering over the extended positions that carry class c: no atomics, so the
// gradient is bit-identical run to run.
//
// Launched by nnlite/kernels/ctc.py through nnlite/kernels/nvrtc.py: alpha/beta
// grid = N, block = S_max rounded up to a warp, at most NNL_MAX_THREADS_PER_BLOCK;
// grad block = NNL_GRID_THREADS, grid = enough blocks for T_max N C, at most
// NNL_MAX_GRID_BLOCKS. The host build (csrc/host/ctc.cpp) has the same entry
// points with the same arguments.
#include "nnlite/ctc.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void ctc_alpha_block(const scalar_t* log_probs, const int* targets,
                                           const int* input_lengths, const int* target_lengths,
                                           scalar_t* alpha, scalar_t* nll, int batch,
                                           int classes, int max_time, int max_length,
                                           int blank) {
  const int n = blockIdx.x;
  const int tid = threadIdx.x;
  const int nthreads = blockDim.x;
  const int frames = input_lengths[n];
  const int ext_len = 2 * target_lengths[n] + 1;
  const int ext_stride = 2 * max_length + 1;
  const int* tgt = targets + (long long)n * max_length;
  scalar_t* alpha_n = alpha + (long long)n * max_time * ext_stride;
  const long long frame_stride = (long long)batch * classes;
  const scalar_t* lp = log_probs + (long long)n * classes;

  if (frames > 0) {
    ctc_alpha_init(lp, tgt, ext_len, blank, alpha_n, tid, nthreads);
    for (int t = 1; t < frames; ++t) {
      __syncthreads();
      ctc_alpha_step(lp + t * frame_stride, tgt, ext_len, blank, frames - t,
                     alpha_n + (long long)(t - 1) * ext_stride,
                     alpha_n + (long long)t * ext_stride, tid, nthreads);
    }
    __syncthreads();
  }
  if (tid == 0) {
    const scalar_t* last = alpha_n + (long long)(frames > 0 ? frames - 1 : 0) * ext_stride;
    nll[n] = ctc_neg_log_likelihood(last, ext_len, frames);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void ctc_beta_block(const scalar_t* log_probs, const int* targets,
                                          const int* input_lengths, const int* target_lengths,
                                          scalar_t* beta, int batch, int classes, int max_time,
                                          int max_length, int blank) {
  const int n = blockIdx.x;
  const int tid = threadIdx.x;
  const int nthreads = blockDim.x;
  const int frames = input_lengths[n];
  if (frames == 0) return;
  const int ext_len = 2 * target_lengths[n] + 1;
  const int ext_stride = 2 * max_length + 1;
  const int* tgt = targets + (long long)n * max_length;
  scalar_t* beta_n = beta + (long long)n * max_time * ext_stride;
  const long long frame_stride = (long long)batch * classes;
  const scalar_t* lp = log_probs + (long long)n * classes;

  ctc_beta_init(lp + (frames - 1) * frame_stride, tgt, ext_len, blank,
                beta_n + (long long)(frames - 1) * ext_stride, tid, nthreads);
  for (int t = frames - 2; t >= 0; --t) {
    __syncthreads();
    ctc_beta_step(lp + t * frame_stride, tgt, ext_len, blank, t, frames - t,
                  beta_n + (long long)(t + 1) * ext_stride, beta_n + (long long)t * ext_stride,
                  tid, nthreads);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void ctc_grad_elements(const scalar_t* log_probs, const int* targets,
                                             const int* input_lengths,
                                             const int* target_lengths, const scalar_t* alpha,
                                             const scalar_t* beta, const scalar_t* nll,
                                             const scalar_t* grad_scale, scalar_t* grad,
                                             int batch, int classes, int max_time,
                                             int max_length, int blank) {
  const long long frame_size = (long long)batch * classes;
  const int ext_stride = 2 * max_length + 1;
  NNL_GRID_STRIDE_LOOP(index, max_time * frame_size) {
    const int t = (int)(index / frame_size);
    const int n = (int)((index / classes) % batch);
    const int c = (int)(index % classes);
    const int frames = input_lengths[n];
    const scalar_t sample_nll = nll[n];
    // Padded frames and samples without a valid path (nll = +inf) get exactly 0.
    if (t >= frames || !ctc_has_gradient(sample_nll)) {
      grad[index] = scalar_t(0);
      continue;
    }
    const int length = target_lengths[n];
    int first, last;
    ctc_frame_window(2 * length + 1, frames, t, &first, &last);
    const long long row = ((long long)n * max_time + t) * ext_stride;
    const scalar_t occupancy =
        ctc_class_occupancy(alpha + row, beta + row, targets + (long long)n * max_length,
                            length, blank, c, first, last);
    grad[index] = ctc_grad_value(occupancy, log_probs[index], sample_nll, grad_scale[n]);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
ctc_alpha_f32(const float* log_probs, const int* targets, const int* input_lengths,
              const int* target_lengths, float* alpha, float* nll, int batch, int classes,
              int max_time, int max_length, int blank) {
  ctc_alpha_block(log_probs, targets, input_lengths, target_lengths, alpha, nll, batch, classes,
                  max_time, max_length, blank);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
ctc_beta_f32(const float* log_probs, const int* targets, const int* input_lengths,
             const int* target_lengths, float* beta, int batch, int classes, int max_time,
             int max_length, int blank) {
  ctc_beta_block(log_probs, targets, input_lengths, target_lengths, beta, batch, classes,
                 max_time, max_length, blank);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
ctc_grad_f32(const float* log_probs, const int* targets, const int* input_lengths,
             const int* target_lengths, const float* alpha, const float* beta, const float* nll,
             const float* grad_scale, float* grad, int batch, int classes, int max_time,
             int max_length, int blank) {
  ctc_grad_elements(log_probs, targets, input_lengths, target_lengths, alpha, beta, nll,
                   grad_scale, grad, batch, classes, max_time, max_length, blank);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
ctc_alpha_f64(const double* log_probs, const int* targets, const int* input_lengths,
              const int* target_lengths, double* alpha, double* nll, int batch, int classes,
              int max_time, int max_length, int blank) {
  ctc_alpha_block(log_probs, targets, input_lengths, target_lengths, alpha, nll, batch, classes,
                  max_time, max_length, blank);
}

extern "C" __global__ void __launch_bounds__(NNL_MAX_THREADS_PER_BLOCK)
ctc_beta_f64(const double* log_probs, const int* targets, const int* input_lengths,
             const int* target_lengths, double* beta, int batch, int classes, int max_time,
             int max_length, int blank) {
  ctc_beta_block(log_probs, targets, input_lengths, target_lengths, beta, batch, classes,
                 max_time, max_length, blank);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
ctc_grad_f64(const double* log_probs, const int* targets, const int* input_lengths,
             const int* target_lengths, const double* alpha, const double* beta, const double* nll,
             const double* grad_scale, double* grad, int batch, int classes, int max_time,
             int max_length, int blank) {
  ctc_grad_elements(log_probs, targets, input_lengths, target_lengths, alpha, beta, nll,
                   grad_scale, grad, batch, classes, max_time, max_length, blank);
}
