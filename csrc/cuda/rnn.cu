// CUDA launcher of csrc/nnlite/rnn.cuh: one thread per hidden unit (n, j) of a
// step, grid-stride loops over the units = N * H hidden units of the step.
//
// Launch, by the kernel layer (nnlite/kernels/rnn.py): block = NNL_GRID_THREADS
// threads, grid = enough blocks to cover `units`, capped at NNL_MAX_GRID_BLOCKS
// (the loop covers the rest). Every entry point takes units = N * H and hidden
// = H (units a multiple of hidden); the host build (csrc/host/rnn.cpp) takes
// the same arguments in the same order.
#include "nnlite/rnn.cuh"

template <typename scalar_t>
__device__ NNL_INLINE void lstm_cell_forward_grid(scalar_t* gx, const scalar_t* gh,
                                                  const scalar_t* c_prev, const scalar_t* h_prev,
                                                  scalar_t* c, scalar_t* h, const int* lengths,
                                                  int t, long long units, int hidden,
                                                  int hard_sigmoid) {
  NNL_GRID_STRIDE_LOOP(unit, units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    lstm_cell_forward_element(gx, gh, c_prev, h_prev, c, h, rnn_step_is_live(lengths, n, t),
                              hidden, hard_sigmoid, n, j);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void lstm_cell_backward_grid(const scalar_t* gates, const scalar_t* c_prev,
                                                   const scalar_t* c, const scalar_t* dh,
                                                   const scalar_t* dc, scalar_t* d_gates,
                                                   scalar_t* dc_prev, scalar_t* dh_prev,
                                                   const int* lengths, int t, long long units,
                                                   int hidden, int hard_sigmoid) {
  NNL_GRID_STRIDE_LOOP(unit, units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    lstm_cell_backward_element(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev,
                               rnn_step_is_live(lengths, n, t), hidden, hard_sigmoid, n, j);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void gru_reset_gate_forward_grid(scalar_t* gx, const scalar_t* gh_rz,
                                                       const scalar_t* h_prev, scalar_t* rh,
                                                       long long units, int hidden,
                                                       int hard_sigmoid) {
  NNL_GRID_STRIDE_LOOP(unit, units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_reset_gate_forward_element(gx, gh_rz, h_prev, rh, hidden, hard_sigmoid, n, j);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void gru_cell_forward_grid(scalar_t* gx, const scalar_t* gh,
                                                 const scalar_t* b_hn, const scalar_t* h_prev,
                                                 scalar_t* h, const int* lengths, int t,
                                                 long long units, int hidden, int hard_sigmoid,
                                                 int reset_after) {
  NNL_GRID_STRIDE_LOOP(unit, units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_cell_forward_element(gx, gh, b_hn, h_prev, h, rnn_step_is_live(lengths, n, t), hidden,
                             hard_sigmoid, reset_after, n, j);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void gru_cell_backward_grid(const scalar_t* gates, const scalar_t* gh,
                                                  const scalar_t* b_hn, const scalar_t* h_prev,
                                                  const scalar_t* dh, scalar_t* d_gx,
                                                  scalar_t* d_gh, scalar_t* dh_prev,
                                                  const int* lengths, int t, long long units,
                                                  int hidden, int hard_sigmoid,
                                                  int reset_after) {
  NNL_GRID_STRIDE_LOOP(unit, units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_cell_backward_element(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev,
                              rnn_step_is_live(lengths, n, t), hidden, hard_sigmoid,
                              reset_after, n, j);
  }
}

template <typename scalar_t>
__device__ NNL_INLINE void gru_reset_gate_backward_grid(const scalar_t* gates,
                                                        const scalar_t* h_prev,
                                                        const scalar_t* d_rh, scalar_t* d_gx,
                                                        scalar_t* dh_prev, const int* lengths,
                                                        int t, long long units, int hidden,
                                                        int hard_sigmoid) {
  NNL_GRID_STRIDE_LOOP(unit, units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_reset_gate_backward_element(gates, h_prev, d_rh, d_gx, dh_prev,
                                    rnn_step_is_live(lengths, n, t), hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
lstm_cell_forward_f32(float* gx, const float* gh, const float* c_prev, const float* h_prev,
                      float* c, float* h, const int* lengths, int t, long long units,
                      int hidden, int hard_sigmoid) {
  lstm_cell_forward_grid(gx, gh, c_prev, h_prev, c, h, lengths, t, units, hidden, hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
lstm_cell_forward_f64(double* gx, const double* gh, const double* c_prev, const double* h_prev,
                      double* c, double* h, const int* lengths, int t, long long units,
                      int hidden, int hard_sigmoid) {
  lstm_cell_forward_grid(gx, gh, c_prev, h_prev, c, h, lengths, t, units, hidden, hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
lstm_cell_backward_f32(const float* gates, const float* c_prev, const float* c, const float* dh,
                       const float* dc, float* d_gates, float* dc_prev, float* dh_prev,
                       const int* lengths, int t, long long units, int hidden,
                       int hard_sigmoid) {
  lstm_cell_backward_grid(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t,
                          units, hidden, hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
lstm_cell_backward_f64(const double* gates, const double* c_prev, const double* c,
                       const double* dh, const double* dc, double* d_gates, double* dc_prev,
                       double* dh_prev, const int* lengths, int t, long long units, int hidden,
                       int hard_sigmoid) {
  lstm_cell_backward_grid(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t,
                          units, hidden, hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_reset_gate_forward_f32(float* gx, const float* gh_rz, const float* h_prev, float* rh,
                           long long units, int hidden, int hard_sigmoid) {
  gru_reset_gate_forward_grid(gx, gh_rz, h_prev, rh, units, hidden, hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_reset_gate_forward_f64(double* gx, const double* gh_rz, const double* h_prev, double* rh,
                           long long units, int hidden, int hard_sigmoid) {
  gru_reset_gate_forward_grid(gx, gh_rz, h_prev, rh, units, hidden, hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_cell_forward_f32(float* gx, const float* gh, const float* b_hn, const float* h_prev,
                     float* h, const int* lengths, int t, long long units, int hidden,
                     int hard_sigmoid, int reset_after) {
  gru_cell_forward_grid(gx, gh, b_hn, h_prev, h, lengths, t, units, hidden, hard_sigmoid,
                        reset_after);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_cell_forward_f64(double* gx, const double* gh, const double* b_hn, const double* h_prev,
                     double* h, const int* lengths, int t, long long units, int hidden,
                     int hard_sigmoid, int reset_after) {
  gru_cell_forward_grid(gx, gh, b_hn, h_prev, h, lengths, t, units, hidden, hard_sigmoid,
                        reset_after);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_cell_backward_f32(const float* gates, const float* gh, const float* b_hn,
                      const float* h_prev, const float* dh, float* d_gx, float* d_gh,
                      float* dh_prev, const int* lengths, int t, long long units, int hidden,
                      int hard_sigmoid, int reset_after) {
  gru_cell_backward_grid(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, t, units,
                         hidden, hard_sigmoid, reset_after);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_cell_backward_f64(const double* gates, const double* gh, const double* b_hn,
                      const double* h_prev, const double* dh, double* d_gx, double* d_gh,
                      double* dh_prev, const int* lengths, int t, long long units, int hidden,
                      int hard_sigmoid, int reset_after) {
  gru_cell_backward_grid(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, t, units,
                         hidden, hard_sigmoid, reset_after);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_reset_gate_backward_f32(const float* gates, const float* h_prev, const float* d_rh,
                            float* d_gx, float* dh_prev, const int* lengths, int t,
                            long long units, int hidden, int hard_sigmoid) {
  gru_reset_gate_backward_grid(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, units, hidden,
                               hard_sigmoid);
}

extern "C" __global__ void __launch_bounds__(NNL_GRID_THREADS)
gru_reset_gate_backward_f64(const double* gates, const double* h_prev, const double* d_rh,
                            double* d_gx, double* dh_prev, const int* lengths, int t,
                            long long units, int hidden, int hard_sigmoid) {
  gru_reset_gate_backward_grid(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, units, hidden,
                               hard_sigmoid);
}
