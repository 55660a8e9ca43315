// CUDA launcher of csrc/nnlite/rnn.cuh: one thread per hidden unit (n, j) of a
// step, grid-stride loops over the N * H units.
//
// Launch (nnlite/kernels/cuda_rnn.py): block = 256 threads, grid = enough blocks
// to cover N * H, capped; each thread strides by the whole grid.
#include "nnlite/rnn.cuh"

#define RNN_THREADS 256

// The (n, j) of each unit this thread owns, with a 64-bit counter: N * H may
// pass 2^31 even though each extent fits an int.
#define RNN_FOR_EACH_UNIT(units)                                          \
  for (long long unit = (long long)blockIdx.x * blockDim.x + threadIdx.x;        \
       unit < (units); unit += (long long)blockDim.x * gridDim.x)

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
lstm_cell_forward_f32(float* gx, const float* gh, const float* c_prev, const float* h_prev,
    float* c, float* h, const int* lengths, int t, long long units, int hidden, int
    hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    lstm_cell_forward_element(gx, gh, c_prev, h_prev, c, h, rnn_step_is_live(lengths, (int)n,
        t), hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
lstm_cell_forward_f64(double* gx, const double* gh, const double* c_prev, const double* h_prev,
    double* c, double* h, const int* lengths, int t, long long units, int hidden, int
    hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    lstm_cell_forward_element(gx, gh, c_prev, h_prev, c, h, rnn_step_is_live(lengths, (int)n,
        t), hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
lstm_cell_backward_f32(const float* gates, const float* c_prev, const float* c, const float* dh,
    const float* dc, float* d_gates, float* dc_prev, float* dh_prev, const int* lengths, int t,
    long long units, int hidden, int hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    lstm_cell_backward_element(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev,
        rnn_step_is_live(lengths, (int)n, t), hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
lstm_cell_backward_f64(const double* gates, const double* c_prev, const double* c, const double*
    dh, const double* dc, double* d_gates, double* dc_prev, double* dh_prev, const int* lengths,
    int t, long long units, int hidden, int hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    lstm_cell_backward_element(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev,
        rnn_step_is_live(lengths, (int)n, t), hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_reset_gate_forward_f32(float* gx, const float* gh_rz, const float* h_prev, float* rh, long
    long units, int hidden, int hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_reset_gate_forward_element(gx, gh_rz, h_prev, rh, hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_reset_gate_forward_f64(double* gx, const double* gh_rz, const double* h_prev, double* rh,
    long long units, int hidden, int hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_reset_gate_forward_element(gx, gh_rz, h_prev, rh, hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_cell_forward_f32(float* gx, const float* gh, const float* b_hn, const float* h_prev, float*
    h, const int* lengths, int t, long long units, int hidden, int hard_sigmoid, int
    reset_after) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_cell_forward_element(gx, gh, b_hn, h_prev, h, rnn_step_is_live(lengths, (int)n, t),
        hidden, hard_sigmoid, reset_after, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_cell_forward_f64(double* gx, const double* gh, const double* b_hn, const double* h_prev,
    double* h, const int* lengths, int t, long long units, int hidden, int hard_sigmoid, int
    reset_after) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_cell_forward_element(gx, gh, b_hn, h_prev, h, rnn_step_is_live(lengths, (int)n, t),
        hidden, hard_sigmoid, reset_after, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_cell_backward_f32(const float* gates, const float* gh, const float* b_hn, const float*
    h_prev, const float* dh, float* d_gx, float* d_gh, float* dh_prev, const int* lengths, int
    t, long long units, int hidden, int hard_sigmoid, int reset_after) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_cell_backward_element(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev,
        rnn_step_is_live(lengths, (int)n, t), hidden, hard_sigmoid, reset_after, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_cell_backward_f64(const double* gates, const double* gh, const double* b_hn, const double*
    h_prev, const double* dh, double* d_gx, double* d_gh, double* dh_prev, const int* lengths,
    int t, long long units, int hidden, int hard_sigmoid, int reset_after) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_cell_backward_element(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev,
        rnn_step_is_live(lengths, (int)n, t), hidden, hard_sigmoid, reset_after, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_reset_gate_backward_f32(const float* gates, const float* h_prev, const float* d_rh, float*
    d_gx, float* dh_prev, const int* lengths, int t, long long units, int hidden, int
    hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_reset_gate_backward_element(gates, h_prev, d_rh, d_gx, dh_prev,
        rnn_step_is_live(lengths, (int)n, t), hidden, hard_sigmoid, n, j);
  }
}

extern "C" __global__ void __launch_bounds__(RNN_THREADS)
gru_reset_gate_backward_f64(const double* gates, const double* h_prev, const double* d_rh,
    double* d_gx, double* dh_prev, const int* lengths, int t, long long units, int hidden, int
    hard_sigmoid) {
  RNN_FOR_EACH_UNIT(units) {
    const long long n = unit / hidden;
    const int j = (int)(unit % hidden);
    gru_reset_gate_backward_element(gates, h_prev, d_rh, d_gx, dh_prev,
        rnn_step_is_live(lengths, (int)n, t), hidden, hard_sigmoid, n, j);
  }
}
