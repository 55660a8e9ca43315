// Connectionist temporal classification (CTC), log space: the math only.
//
// One sample: log_probs y[t][c] for t < T (its input length), labels
// l_1..l_L, and the extended label l' = (blank, l_1, blank, l_2, ..., l_L,
// blank) of length S = 2L + 1. A path pi (one class per frame) collapses to l
// when merging repeats and dropping blanks gives l; p(l) = sum over those
// paths of prod_t exp(y[t][pi_t]). The recursions (Graves et al. 2006):
//
//   alpha_t(s) = y[t][l'_s] + logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1),
//                                       alpha_{t-1}(s-2) if l'_s != blank
//                                                        and l'_s != l'_{s-2})
//   beta_t(s)  = y[t][l'_s] + logsumexp(beta_{t+1}(s), beta_{t+1}(s+1),
//                                       beta_{t+1}(s+2) if l'_s != blank
//                                                       and l'_s != l'_{s+2})
//   log p(l)   = logsumexp(alpha_{T-1}(S-1), alpha_{T-1}(S-2))
//
// Both alpha and beta include the frame's own y[t][l'_s], so alpha_t(s) +
// beta_t(s) - y[t][l'_s] is the log mass of the paths through (t, s). Since
// d p(l) / d y[t][c] sums p(pi) over the paths with pi_t = c, the TRUE
// derivative of the loss -log p(l) with respect to y[t][c] is
//
//   d(-log p)/dy[t][c] = -exp(logsumexp_{s: l'_s = c}(alpha_t(s) + beta_t(s))
//                             - y[t][c] - log p(l)).
//
// It holds for any y, normalised or not, so a gradcheck on log_probs passes
// directly. (PyTorch returns exp(y) minus this, the gradient folded through a
// log_softmax it assumes was applied.) A class no path uses at t, or a sample
// with p(l) = 0, gets exactly 0: never -inf - -inf = NaN.
//
// A path through (t, s) needs s >= S - 2 (frames left) to still reach the end
// and s <= 2 t + 1 to have been reached from the start: the frame's window.
// Outside it the recursions write -inf without arithmetic, and the gradient
// gathers only inside it; alpha alone is also computed above 2 t + 1, see NaN.
//
// NaN in, NaN out, as in PyTorch: a NaN in y at a position (t, s) from which
// the end can still be reached makes alpha there NaN and so -log p(l) (PyTorch
// computes every position, so this holds above 2 t + 1 too, where alpha is -inf
// for any other y), and the gradient of that sample is then NaN at every frame
// it has. The log-sum-exp helpers pass a NaN operand through (a comparison
// alone would drop it). A NaN that cannot reach the end leaves the loss finite
// and makes NaN only the gradient entries whose window positions it reaches.
//
// Layouts: log_probs and its gradient are (T_max, N, C); alpha and beta are
// (N, T_max, S_max) with S_max = 2 L_max + 1; targets are padded (N, L_max).
// A cooperative worker `tid` of `nthreads` owns extended positions tid,
// tid + nthreads, ...; the launcher puts a barrier between time steps.
#ifndef NNLITE_CTC_CUH
#define NNLITE_CTC_CUH

#include "nnlite/portable.cuh"

// l'_s: blank at even s, the label l_{(s+1)/2} (targets[(s-1)/2]) at odd s.
NNL_HD NNL_INLINE int ctc_extended_label(const int* targets, int s, int blank) {
  return (s & 1) ? targets[s >> 1] : blank;
}

// Whether the path may skip from s-2 to s: only onto a label that differs
// from the previous label (a repeat needs a blank between its copies).
NNL_HD NNL_INLINE bool ctc_can_skip(const int* targets, int s) {
  return (s & 1) && s >= 3 && targets[s >> 1] != targets[(s >> 1) - 1];
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t ctc_neg_inf() {
  return -nnl_limits<scalar_t>::max() * 2;  // overflows to -inf without <cmath>
}

// log(exp(a) + exp(b) + exp(c)) with one log instead of two log1p's. The
// maximum contributes exp(0) = 1 exactly and impossible (-inf) terms nothing,
// so neither costs an exp: half the positions (blanks) never have a skip term.
// A NaN never wins a comparison, so it may end up in any of m, x, y; every
// return below lets it through (m + x + y is -inf exactly when all are -inf).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t ctc_log_sum_exp3(scalar_t a, scalar_t b, scalar_t c) {
  const scalar_t lowest = nnl_limits<scalar_t>::lowest();
  scalar_t m = a, x = b, y = c;  // m: the maximum; x, y: the other two
  if (b > m) { x = m; m = b; }
  if (c > m) { y = m; m = c; }
  if (m < lowest) return m + x + y;
  scalar_t sum = 1;
  if (!(x < lowest)) sum += nnl_exp(x - m);
  if (!(y < lowest)) sum += nnl_exp(y - m);
  return m + nnl_log(sum);
}

// Fewest frames that can emit `length` labels: one per label plus a blank
// between each pair of equal neighbours.
NNL_HD NNL_INLINE int ctc_frames_required(const int* targets, int length) {
  int required = length;
  for (int i = 1; i < length; ++i) required += targets[i] == targets[i - 1];
  return required;
}

// alpha_0(s) for the worker's positions; alpha_row is alpha_0 (S_max entries).
// lp_t points at y[0][.] of this sample.
template <typename scalar_t>
NNL_HD NNL_INLINE void ctc_alpha_init(const scalar_t* lp_t, const int* targets, int ext_len,
                                      int blank, scalar_t* alpha_row, int tid, int nthreads) {
  for (int s = tid; s < ext_len; s += nthreads) {
    alpha_row[s] = s < 2 ? lp_t[ctc_extended_label(targets, s, blank)] : ctc_neg_inf<scalar_t>();
  }
}

// alpha_t(s) for the worker's positions from alpha_{t-1} (prev) into cur.
// Positions s < ext_len - 2 (frames_left) cannot reach the end any more: they
// are -inf without arithmetic. Those above 2 t + 1, not reached yet, are -inf
// too, but computed (cheaply: every term is -inf), so that a NaN there reaches
// the loss as in PyTorch.
template <typename scalar_t>
NNL_HD NNL_INLINE void ctc_alpha_step(const scalar_t* lp_t, const int* targets, int ext_len,
                                      int blank, int frames_left, const scalar_t* prev,
                                      scalar_t* cur, int tid, int nthreads) {
  const int first = ext_len - 2 * frames_left;
  for (int s = tid; s < ext_len; s += nthreads) {
    if (s < first) {
      cur[s] = ctc_neg_inf<scalar_t>();
      continue;
    }
    const scalar_t stay = prev[s];
    const scalar_t from_prev = s >= 1 ? prev[s - 1] : ctc_neg_inf<scalar_t>();
    const scalar_t skip = ctc_can_skip(targets, s) ? prev[s - 2] : ctc_neg_inf<scalar_t>();
    cur[s] = lp_t[ctc_extended_label(targets, s, blank)] +
             ctc_log_sum_exp3(stay, from_prev, skip);
  }
}

// beta_{T-1}(s): only the last blank and the last label may end a path.
template <typename scalar_t>
NNL_HD NNL_INLINE void ctc_beta_init(const scalar_t* lp_t, const int* targets, int ext_len,
                                     int blank, scalar_t* beta_row, int tid, int nthreads) {
  for (int s = tid; s < ext_len; s += nthreads) {
    beta_row[s] = s >= ext_len - 2 ? lp_t[ctc_extended_label(targets, s, blank)]
                                   : ctc_neg_inf<scalar_t>();
  }
}

// beta_t(s) from beta_{t+1} (next) into cur; `t` frames precede this one.
// Outside the frame's window (ctc_frame_window) beta is -inf without
// arithmetic: it only ever meets alpha inside it.
template <typename scalar_t>
NNL_HD NNL_INLINE void ctc_beta_step(const scalar_t* lp_t, const int* targets, int ext_len,
                                     int blank, int t, int frames_left, const scalar_t* next,
                                     scalar_t* cur, int tid, int nthreads) {
  const int first = ext_len - 2 * frames_left;
  const int last = 2 * t + 1;
  for (int s = tid; s < ext_len; s += nthreads) {
    if (s < first || s > last) {
      cur[s] = ctc_neg_inf<scalar_t>();
      continue;
    }
    const scalar_t stay = next[s];
    const scalar_t to_next = s + 1 < ext_len ? next[s + 1] : ctc_neg_inf<scalar_t>();
    const scalar_t skip =
        s + 2 < ext_len && ctc_can_skip(targets, s + 2) ? next[s + 2] : ctc_neg_inf<scalar_t>();
    cur[s] = lp_t[ctc_extended_label(targets, s, blank)] +
             ctc_log_sum_exp3(stay, to_next, skip);
  }
}

// -log p(l) from the last alpha row (ext_len >= 1). An input of length 0
// emits only the empty labelling.
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t ctc_neg_log_likelihood(const scalar_t* last_alpha, int ext_len,
                                                  int input_length) {
  if (input_length == 0) return ext_len == 1 ? scalar_t(0) : -ctc_neg_inf<scalar_t>();
  const scalar_t end_blank = last_alpha[ext_len - 1];
  const scalar_t end_label = ext_len >= 2 ? last_alpha[ext_len - 2] : ctc_neg_inf<scalar_t>();
  return -nnl_log_add_exp(end_blank, end_label);
}

// Whether a sample has a gradient at all: not when p(l) = 0 (nll = +inf; its
// gradient is exactly 0), but when its loss is NaN (the gradient is NaN).
template <typename scalar_t>
NNL_HD NNL_INLINE bool ctc_has_gradient(scalar_t nll) {
  return !(nll > nnl_limits<scalar_t>::max());
}

// grad_scale * d(-log p)/dy[t][c] from the log mass of the paths through class
// c at t (occupancy = logsumexp of alpha + beta over the s with l'_s = c).
// A class no path uses gets exactly 0, or NaN when nll or grad_scale is NaN.
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t ctc_grad_value(scalar_t occupancy, scalar_t lp, scalar_t nll,
                                          scalar_t grad_scale) {
  if (occupancy < nnl_limits<scalar_t>::lowest()) {
    if (nll != nll) return nll;
    return grad_scale != grad_scale ? grad_scale : scalar_t(0);
  }
  return -grad_scale * nnl_exp(occupancy - lp + nll);
}

// The positions [*first, *last] of frame t (of `frames`) that a complete path
// can pass through; empty (first > last) when none can.
NNL_HD NNL_INLINE void ctc_frame_window(int ext_len, int frames, int t, int* first, int* last) {
  *first = nnl_max(0, ext_len - 2 * (frames - t));
  *last = nnl_min(ext_len - 1, 2 * t + 1);
}

// The occupancy of class c at frame t, gathered over the s with l'_s = c in the
// frame's window, in increasing s (the host twin accumulates in the same order,
// so both agree).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t ctc_class_occupancy(const scalar_t* alpha_t, const scalar_t* beta_t,
                                               const int* targets, int length, int blank,
                                               int c, int first, int last) {
  scalar_t total = ctc_neg_inf<scalar_t>();
  if (c == blank) {
    for (int s = first + (first & 1); s <= last; s += 2)
      total = nnl_log_add_exp(total, alpha_t[s] + beta_t[s]);
  } else {
    for (int i = first >> 1; 2 * i + 1 <= last && i < length; ++i) {
      if (targets[i] == c) total = nnl_log_add_exp(total, alpha_t[2 * i + 1] + beta_t[2 * i + 1]);
    }
  }
  return total;
}

#endif  // NNLITE_CTC_CUH
