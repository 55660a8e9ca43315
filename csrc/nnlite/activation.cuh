// Element-wise activations, forward and backward: the math only.
//
//   ReLU forward    mask_i = x_i > 0          (one byte per element, all that
//                                              backward needs)
//                   y_i    = x_i * mask_i
//   ReLU backward   gx_i   = gy_i * mask_i
//
// The mask multiplies instead of selecting so that the results are those of
// NumPy's `x * (x > 0)` and `gy * mask` bit for bit: a negative x gives -0.0,
// a NaN stays NaN (x > 0 is false, and NaN * 0 is NaN), -inf gives NaN.
// Without -ffast-math no compiler may fold v * 0 to 0. Each function reads and
// writes element i only.
#ifndef NNLITE_ACTIVATION_CUH
#define NNLITE_ACTIVATION_CUH

#include "nnlite/portable.cuh"

template <typename scalar_t>
NNL_HD NNL_INLINE unsigned char relu_mask(scalar_t x) {
  return x > (scalar_t)0 ? 1 : 0;
}

// v times 1 where the mask is set, times 0 where it is not; any non-zero mask
// byte counts as set (a bool array's bytes are 0 or 1, a user's uint8 may not be).
template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t relu_pass(scalar_t v, unsigned char mask) {
  return v * (mask != 0 ? (scalar_t)1 : (scalar_t)0);
}

template <typename scalar_t>
NNL_HD NNL_INLINE void relu_forward_element(const scalar_t* x, scalar_t* y, unsigned char* mask,
                                            long long i) {
  const scalar_t value = x[i];
  const unsigned char keep = relu_mask(value);
  mask[i] = keep;
  y[i] = relu_pass(value, keep);
}

template <typename scalar_t>
NNL_HD NNL_INLINE void relu_backward_element(const scalar_t* gy, const unsigned char* mask,
                                             scalar_t* gx, long long i) {
  gx[i] = relu_pass(gy[i], mask[i]);
}

#endif  // NNLITE_ACTIVATION_CUH
