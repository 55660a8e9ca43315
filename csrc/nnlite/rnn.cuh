// Fused LSTM and GRU cells, forward and backward: the per-element math only.
//
// Each function handles one hidden unit (row n, column j) of one time step; the
// launchers run them over every (n, j) of a (N, H) step. The GEMMs (input
// projection for all steps, the recurrent projection of each step, the weight
// gradients) stay in BLAS / cuBLAS; these functions do the elementwise rest.
//
// Layouts follow PyTorch. LSTM gates i, f, g, o and GRU gates r, z, n are
// contiguous blocks of a row: a gate row of width G*H holds gate k of unit j
// at column k*H + j.
//
//   LSTM   gx = x W_ih^T + b_ih + b_hh, gh = h W_hh^T (a step's two projections)
//          i, f, o = act(gx + gh), g = tanh(gx + gh)
//          c' = f c + i g,  h' = o tanh(c')
//   GRU    gx = x W_ih^T + b_ih + [b_hr, b_hz, 0]
//     reset_after=1 (PyTorch):   gh = h W_hh^T (3H columns)
//          r, z = act(gx + gh),  n = tanh(gx_n + r (gh_n + b_hn))
//     reset_after=0 (TensorFlow GRUCell, Keras reset_after=False): two phases,
//          with a GEMM between them because the recurrent matmul of n comes
//          after the reset:
//          gru_reset_gate_forward:  r, z = act(gx + gh_rz), rh = r h
//          (caller: gh_n = rh W_hn^T, an (N, H) array)
//          gru_cell_forward:        n = tanh(gx_n + gh_n + b_hn)
//          h' = (1 - z) n + z h   (both variants)
//   act    sigmoid, or Keras 2's hard_sigmoid clip(0.2 x + 0.5, 0, 1) when
//          hard_sigmoid != 0. Its derivative is taken as 0.2 where the output is
//          strictly inside (0, 1) and 0 where it is clipped, the boundary points
//          x = +-2.5 included.
//
// Padded batches: a step t with t >= lengths[n] is skipped for row n: its state
// passes through unchanged (forward) and its gradient passes back unchanged
// with zero gate gradients (backward). The reverse direction walks t downward,
// so each sample starts at its own last valid step with the initial state.
//
// Forward saves the activated gates in place of the pre-activations (gx), so
// backward needs no transcendental except tanh(c') for the LSTM.
#ifndef NNLITE_RNN_CUH
#define NNLITE_RNN_CUH

#include "nnlite/portable.cuh"

// Float exp and tanh for the cells in plain arithmetic (Cephes' expf and tanhf
// polynomials, within a few ulp), so the host compiler can vectorise the loop
// over hidden units: a libm call per element blocks that and made the cell
// several times slower than the step's GEMM. The same code runs on the GPU, so
// both builds compute the same float math. Double keeps the library functions:
// float64 exists for gradient checks, not speed.
NNL_HD NNL_INLINE float rnn_exp(float x) {
  // Clamped so that 2^n below stays a normal float: exp(-87) ~ 1.6e-38 and
  // exp(88) ~ 1.7e38 act as 0 and infinity in every gate formula.
  x = nnl_min(nnl_max(x, -87.0f), 88.0f);
  // Round t to the nearest integer without a branch or a library call: adding
  // and subtracting 1.5 * 2^23 leaves the rounded value (|t| < 2^22 here).
  const float t = x * 1.44269504088896341f;
  const float rounded = (t + 12582912.0f) - 12582912.0f;
  const int n = (int)rounded;
  const float r = x - rounded * 0.693359375f + rounded * 2.12194440e-4f;
  const float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                    4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  union { int i; float f; } scale;
  scale.i = (n + 127) << 23;
  return (p * r * r + r + 1.0f) * scale.f;
}
NNL_HD NNL_INLINE double rnn_exp(double x) { return nnl_exp(x); }

NNL_HD NNL_INLINE float rnn_tanh(float x) {
  const float a = x < 0.0f ? -x : x;
  // Small |x|: the odd polynomial (1 - 2 / (e^2x + 1) would cancel badly).
  const float z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z -
                         5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
                       3.33332819422e-1f) * z * x + x;
  const float large = 1.0f - 2.0f / (rnn_exp(2.0f * a) + 1.0f);
  return a < 0.625f ? small : (x < 0.0f ? -large : large);
}
NNL_HD NNL_INLINE double rnn_tanh(double x) { return NNL_MATH(tanh)(x); }

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t rnn_gate_activation(scalar_t x, int hard_sigmoid) {
  if (hard_sigmoid) {
    const scalar_t y = (scalar_t)0.2 * x + (scalar_t)0.5;
    return nnl_min(nnl_max(y, (scalar_t)0), (scalar_t)1);
  }
  // exp(-x) overflows to inf for very negative x, and 1 / (1 + inf) = 0: no NaN.
  return (scalar_t)1 / ((scalar_t)1 + rnn_exp(-x));
}

// d act / d x expressed through the activation's output y.
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t rnn_gate_derivative(scalar_t y, int hard_sigmoid) {
  if (hard_sigmoid) return (y > (scalar_t)0 && y < (scalar_t)1) ? (scalar_t)0.2 : (scalar_t)0;
  return y * ((scalar_t)1 - y);
}

// Row n takes step t when t < lengths[n]. The element functions below get the
// answer as `live` so the host launcher can branch once per row and keep the
// loop over hidden units branch-free (vectorisable).
NNL_HD NNL_INLINE int rnn_step_is_live(const int* lengths, long long n, int t) {
  return t < lengths[n];
}

// gx (N, 4H) pre-activations in, activated gates out; gh (N, 4H); c_prev,
// h_prev, c, h (N, H).
template <typename scalar_t>
NNL_HD NNL_INLINE void lstm_cell_forward_element(scalar_t* gx, const scalar_t* gh,
                                                 const scalar_t* c_prev, const scalar_t* h_prev,
                                                 scalar_t* c, scalar_t* h, int live, int hidden, int hard_sigmoid,
                                                 long long n, int j) {
  const long long state = n * hidden + j;
  if (!live) {
    c[state] = c_prev[state];
    h[state] = h_prev[state];
    return;
  }
  const long long row = n * 4 * hidden;
  scalar_t* gates = gx + row;
  const scalar_t* rec = gh + row;
  const scalar_t i = rnn_gate_activation(gates[j] + rec[j], hard_sigmoid);
  const scalar_t f = rnn_gate_activation(gates[hidden + j] + rec[hidden + j], hard_sigmoid);
  const scalar_t g = rnn_tanh(gates[2 * hidden + j] + rec[2 * hidden + j]);
  const scalar_t o = rnn_gate_activation(gates[3 * hidden + j] + rec[3 * hidden + j],
                                         hard_sigmoid);
  const scalar_t c_new = f * c_prev[state] + i * g;
  gates[j] = i;
  gates[hidden + j] = f;
  gates[2 * hidden + j] = g;
  gates[3 * hidden + j] = o;
  c[state] = c_new;
  h[state] = o * rnn_tanh(c_new);
}

// gates (N, 4H): the activations saved by forward. dh, dc: gradients w.r.t.
// this step's h' and c'. Writes d_gates (N, 4H), the gradient w.r.t. the gate
// pre-activations (so also w.r.t. gx and gh), dc_prev, and dh_prev's part that
// does not go through W_hh (zero for a live row, dh for a skipped one); the
// caller adds d_gates W_hh. dc_prev may alias dc and dh_prev may alias dh.
template <typename scalar_t>
NNL_HD NNL_INLINE void lstm_cell_backward_element(const scalar_t* gates, const scalar_t* c_prev,
                                                  const scalar_t* c, const scalar_t* dh,
                                                  const scalar_t* dc, scalar_t* d_gates,
                                                  scalar_t* dc_prev, scalar_t* dh_prev,
                                                  int live, int hidden,
                                                  int hard_sigmoid, long long n, int j) {
  const long long state = n * hidden + j;
  const long long row = n * 4 * hidden;
  scalar_t* d_row = d_gates + row;
  const scalar_t dh_in = dh[state];
  const scalar_t dc_in = dc[state];
  if (!live) {
    d_row[j] = d_row[hidden + j] = d_row[2 * hidden + j] = d_row[3 * hidden + j] = 0;
    dc_prev[state] = dc_in;
    dh_prev[state] = dh_in;
    return;
  }
  const scalar_t* a = gates + row;
  const scalar_t i = a[j], f = a[hidden + j], g = a[2 * hidden + j], o = a[3 * hidden + j];
  const scalar_t tanh_c = rnn_tanh(c[state]);
  const scalar_t dc_total = dc_in + dh_in * o * ((scalar_t)1 - tanh_c * tanh_c);
  d_row[j] = dc_total * g * rnn_gate_derivative(i, hard_sigmoid);
  d_row[hidden + j] = dc_total * c_prev[state] * rnn_gate_derivative(f, hard_sigmoid);
  d_row[2 * hidden + j] = dc_total * i * ((scalar_t)1 - g * g);
  d_row[3 * hidden + j] = dh_in * tanh_c * rnn_gate_derivative(o, hard_sigmoid);
  dc_prev[state] = dc_total * f;
  dh_prev[state] = 0;
}

// reset_after=0, phase 1: gx (N, 3H) in; its r, z columns become activations;
// gh_rz (N, 2H) = h W_hr,z^T; rh (N, H) = r * h_prev, the next GEMM's input.
template <typename scalar_t>
NNL_HD NNL_INLINE void gru_reset_gate_forward_element(scalar_t* gx, const scalar_t* gh_rz,
                                                      const scalar_t* h_prev, scalar_t* rh,
                                                      int hidden, int hard_sigmoid, long long n,
                                                      int j) {
  scalar_t* gates = gx + n * 3 * hidden;
  const scalar_t* rec = gh_rz + n * 2 * hidden;
  const scalar_t r = rnn_gate_activation(gates[j] + rec[j], hard_sigmoid);
  gates[j] = r;
  gates[hidden + j] = rnn_gate_activation(gates[hidden + j] + rec[hidden + j], hard_sigmoid);
  rh[n * hidden + j] = r * h_prev[n * hidden + j];
}

// gx (N, 3H): pre-activations in (reset_after=1) or r, z already activated by
// gru_reset_gate_forward (reset_after=0); activations r, z, n out.
// gh: (N, 3H) = h W_hh^T when reset_after=1, (N, H) = (r h) W_hn^T otherwise.
// b_hn (H): the recurrent bias of n (zeros when the layer has no bias).
template <typename scalar_t>
NNL_HD NNL_INLINE void gru_cell_forward_element(scalar_t* gx, const scalar_t* gh,
                                                const scalar_t* b_hn, const scalar_t* h_prev,
                                                scalar_t* h, int live,
                                                int hidden, int hard_sigmoid, int reset_after,
                                                long long n, int j) {
  const long long state = n * hidden + j;
  if (!live) {
    h[state] = h_prev[state];
    return;
  }
  scalar_t* gates = gx + n * 3 * hidden;
  scalar_t r, z, candidate;
  if (reset_after) {
    const scalar_t* rec = gh + n * 3 * hidden;
    r = rnn_gate_activation(gates[j] + rec[j], hard_sigmoid);
    z = rnn_gate_activation(gates[hidden + j] + rec[hidden + j], hard_sigmoid);
    candidate = gates[2 * hidden + j] + r * (rec[2 * hidden + j] + b_hn[j]);
    gates[j] = r;
    gates[hidden + j] = z;
  } else {
    z = gates[hidden + j];
    candidate = gates[2 * hidden + j] + gh[state] + b_hn[j];
  }
  const scalar_t new_gate = rnn_tanh(candidate);
  gates[2 * hidden + j] = new_gate;
  h[state] = ((scalar_t)1 - z) * new_gate + z * h_prev[state];
}

// gates (N, 3H): r, z, n saved by forward; dh: gradient w.r.t. h'.
// reset_after=1: gh (N, 3H) as in forward; writes d_gx (N, 3H) and d_gh (N, 3H),
//   the gradients w.r.t. gx and gh (they differ in the n block by the factor r).
// reset_after=0: gh and d_gh are not read; writes the z and n blocks of d_gx
//   (the n block is also the gradient w.r.t. gh_n and b_hn); the caller forms
//   d_rh = d_gx_n W_hn and finishes with gru_reset_gate_backward.
// dh_prev gets the part of dh_prev that does not go through W_hh (dh * z for a
// live row, dh for a skipped one); it may alias dh.
template <typename scalar_t>
NNL_HD NNL_INLINE void gru_cell_backward_element(const scalar_t* gates, const scalar_t* gh,
                                                 const scalar_t* b_hn, const scalar_t* h_prev,
                                                 const scalar_t* dh, scalar_t* d_gx,
                                                 scalar_t* d_gh, scalar_t* dh_prev,
                                                 int live, int hidden,
                                                 int hard_sigmoid, int reset_after, long long n,
                                                 int j) {
  const long long state = n * hidden + j;
  const long long row = n * 3 * hidden;
  scalar_t* dx_row = d_gx + row;
  const scalar_t dh_in = dh[state];
  if (!live) {
    dx_row[j] = dx_row[hidden + j] = dx_row[2 * hidden + j] = 0;
    if (reset_after) d_gh[row + j] = d_gh[row + hidden + j] = d_gh[row + 2 * hidden + j] = 0;
    dh_prev[state] = dh_in;
    return;
  }
  const scalar_t* a = gates + row;
  const scalar_t r = a[j], z = a[hidden + j], new_gate = a[2 * hidden + j];
  const scalar_t h_old = h_prev[state];
  const scalar_t d_candidate = dh_in * ((scalar_t)1 - z) * ((scalar_t)1 - new_gate * new_gate);
  const scalar_t d_z = dh_in * (h_old - new_gate) * rnn_gate_derivative(z, hard_sigmoid);
  dx_row[hidden + j] = d_z;
  dx_row[2 * hidden + j] = d_candidate;
  if (reset_after) {
    const scalar_t gh_n = gh[row + 2 * hidden + j] + b_hn[j];
    const scalar_t d_r = d_candidate * gh_n * rnn_gate_derivative(r, hard_sigmoid);
    dx_row[j] = d_r;
    d_gh[row + j] = d_r;
    d_gh[row + hidden + j] = d_z;
    d_gh[row + 2 * hidden + j] = d_candidate * r;
  }
  dh_prev[state] = dh_in * z;
}

// reset_after=0, phase 2: d_rh (N, H) = d_gx_n W_hn, the gradient w.r.t. r * h.
// Writes the r block of d_gx and adds d_rh * r to dh_prev.
template <typename scalar_t>
NNL_HD NNL_INLINE void gru_reset_gate_backward_element(const scalar_t* gates,
                                                       const scalar_t* h_prev,
                                                       const scalar_t* d_rh, scalar_t* d_gx,
                                                       scalar_t* dh_prev, int live, int hidden, int hard_sigmoid,
                                                       long long n, int j) {
  const long long state = n * hidden + j;
  const long long row = n * 3 * hidden;
  if (!live) {
    d_gx[row + j] = 0;
    return;
  }
  const scalar_t r = gates[row + j];
  const scalar_t d = d_rh[state];
  d_gx[row + j] = d * h_prev[state] * rnn_gate_derivative(r, hard_sigmoid);
  dh_prev[state] += d * r;
}

#endif  // NNLITE_RNN_CUH
