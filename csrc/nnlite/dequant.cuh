// Dequantisation of stored weights into the compute dtype: the math only.
//
// A compressed Linear (nnlite/nn/compressed.py) keeps its weight in a storage
// format and, right before each GEMM, expands a chunk of rows of it into a
// bounded float32 workspace (float64 exists for gradient checks):
//
//   int8, one scale per output row   w[r][c] = q[r][c] * scale[r]
//   IEEE binary16 ("float16") bits   w[i]    = the value bits[i] encodes
//
// The binary16 decode is integer work on the bit pattern (sign, exponent,
// mantissa rebuilt as a binary32 pattern): the TK1 profile has no
// half-precision type or arithmetic, and none is needed. Every binary16 value
// is exactly representable in binary32, so the decode is exact: normal and
// subnormal numbers, signed zeros, infinities and NaNs (payload kept).
//
// Row steps are written for `nthreads` cooperating workers (worker `tid` owns
// columns tid, tid + nthreads, ...): one CUDA block per row, or one host
// worker per row with tid = 0, nthreads = 1.
#ifndef NNLITE_DEQUANT_CUH
#define NNLITE_DEQUANT_CUH

#include "nnlite/portable.cuh"

// The binary32 value of a binary16 bit pattern.
NNL_HD NNL_INLINE float binary16_to_float(unsigned short bits) {
  union {
    unsigned int u;
    float f;
  } out;
  const unsigned int sign = ((unsigned int)bits & 0x8000u) << 16;
  const unsigned int exponent = ((unsigned int)bits >> 10) & 0x1fu;
  const unsigned int mantissa = (unsigned int)bits & 0x3ffu;
  if (exponent == 0x1fu) {  // infinity (mantissa 0) or NaN
    out.u = sign | 0x7f800000u | (mantissa << 13);
    return out.f;
  }
  if (exponent == 0u) {  // zero or subnormal: mantissa * 2^-24, exact in binary32
    const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  // Normal: rebias the exponent (15 -> 127) and widen the mantissa (10 -> 23 bits).
  out.u = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  return out.f;
}

template <typename scalar_t>
NNL_HD NNL_INLINE scalar_t dequant_binary16_element(const unsigned short* bits,
                                                    long long index) {
  return (scalar_t)binary16_to_float(bits[index]);
}

// binary64 output: a NaN is built bit by bit, because the GPU's float -> double
// conversion returns the canonical NaN (sign and payload dropped; seen on an
// H100, where x86's conversion keeps both). Every other value converts exactly.
template <>
NNL_HD NNL_INLINE double dequant_binary16_element<double>(const unsigned short* bits,
                                                          long long index) {
  const unsigned int pattern = bits[index];
  if (((pattern >> 10) & 0x1fu) == 0x1fu && (pattern & 0x3ffu) != 0u) {
    union {
      unsigned long long u;
      double d;
    } out;
    out.u = ((unsigned long long)(pattern & 0x8000u) << 48) | 0x7ff0000000000000ULL |
            ((unsigned long long)(pattern & 0x3ffu) << 42);
    return out.d;
  }
  return (double)binary16_to_float(bits[index]);
}

// One row of int8 weights times its scale; the row pointers are the caller's.
template <typename scalar_t>
NNL_HD NNL_INLINE void dequant_int8_row(const signed char* q_row, scalar_t scale,
                                        scalar_t* w_row, int cols, int tid, int nthreads) {
  for (int c = tid; c < cols; c += nthreads) w_row[c] = (scalar_t)q_row[c] * scale;
}

#endif  // NNLITE_DEQUANT_CUH
