// Row-wise softmax and log-softmax, forward and backward: the math only.
//
// One row is processed by `nthreads` cooperating workers; worker `tid` owns
// columns tid, tid + nthreads, ... Each *_partial_* step returns that worker's
// share of a row reduction; the launcher combines the shares (a shared-memory
// tree in csrc/cuda/softmax.cu, nothing in csrc/host/softmax.cpp where
// nthreads == 1) and hands the total to the next step.
//
//   forward      m = max_j x_j,  s = sum_j exp(x_j - m)
//                softmax      y_j = exp(x_j - m) / s
//                log-softmax  y_j = (x_j - m) - log(s)
//   backward     (y is the forward output, gy the gradient w.r.t. y)
//                softmax      d = sum_j gy_j y_j,  gx_j = y_j (gy_j - d)
//                log-softmax  d = sum_j gy_j,      gx_j = gy_j - exp(y_j) d
//
// Every write step reads and writes column j only, so an output may alias its
// input.
#ifndef NNLITE_SOFTMAX_CUH
#define NNLITE_SOFTMAX_CUH

#include "nnlite/portable.cuh"

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t softmax_partial_max(const scalar_t* x, int cols, int tid,
                                               int nthreads) {
  scalar_t row_max = nnl_limits<scalar_t>::lowest();
  for (int j = tid; j < cols; j += nthreads) row_max = nnl_fmax(row_max, x[j]);
  return row_max;
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t softmax_partial_sum_exp(const scalar_t* x, int cols,
                                                   scalar_t row_max, int tid, int nthreads) {
  scalar_t sum_exp = 0;
  for (int j = tid; j < cols; j += nthreads) sum_exp += nnl_exp(x[j] - row_max);
  return sum_exp;
}

template <typename scalar_t>
NNL_HD NNL_INLINE void softmax_write(const scalar_t* x, scalar_t* y, int cols, scalar_t row_max,
                                     scalar_t sum_exp, int log_softmax, int tid, int nthreads) {
  if (log_softmax) {
    // (x - m) first: it is exact for the entries that matter (those near m).
    const scalar_t log_sum = nnl_log(sum_exp);
    for (int j = tid; j < cols; j += nthreads) y[j] = (x[j] - row_max) - log_sum;
  } else {
    for (int j = tid; j < cols; j += nthreads) y[j] = nnl_exp(x[j] - row_max) / sum_exp;
  }
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t softmax_backward_partial_dot(const scalar_t* y, const scalar_t* gy,
                                                        int cols, int log_softmax, int tid,
                                                        int nthreads) {
  scalar_t dot = 0;
  if (log_softmax) {
    for (int j = tid; j < cols; j += nthreads) dot += gy[j];
  } else {
    for (int j = tid; j < cols; j += nthreads) dot += gy[j] * y[j];
  }
  return dot;
}

template <typename scalar_t>
NNL_HD NNL_INLINE void softmax_backward_write(const scalar_t* y, const scalar_t* gy, scalar_t* gx,
                                              int cols, scalar_t dot, int log_softmax, int tid,
                                              int nthreads) {
  if (log_softmax) {
    for (int j = tid; j < cols; j += nthreads) gx[j] = gy[j] - nnl_exp(y[j]) * dot;
  } else {
    for (int j = tid; j < cols; j += nthreads) gx[j] = y[j] * (gy[j] - dot);
  }
}

#endif  // NNLITE_SOFTMAX_CUH
