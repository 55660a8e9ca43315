// Building blocks shared by every kernel family and by both builds of it:
// CUDA (nvcc or NVRTC, C++03) and host (g++/clang++, C++11, via nnlite._C).
//
// No standard header may be included here or anywhere under csrc/nnlite/:
// NVRTC ships none, so limits and math come from this file instead of
// <cfloat>/<cmath>. The host build gets its math from compiler builtins for the
// same reason (one file, one rule).
#ifndef NNLITE_PORTABLE_CUH
#define NNLITE_PORTABLE_CUH

#if defined(__CUDACC__)
#define NNL_HD __host__ __device__
// Step functions run inside block-wide loops; a real call would cost registers
// that the 63-per-thread TK1 budget cannot spare.
#define NNL_INLINE __forceinline__
#define NNL_MATH(fn) fn
#else
#define NNL_HD
#define NNL_INLINE inline
#define NNL_MATH(fn) __builtin_##fn
#endif

// The TK1 (compute capability 3.2) launch limits; nnlite/kernels/nvrtc.py keeps
// the same numbers and a test checks that they agree.
#define NNL_MAX_THREADS_PER_BLOCK 1024
#define NNL_MAX_SHARED_BYTES (48 * 1024)

// The one launch shape of the element-wise kernels (conv, pool, rnn, the CTC
// gradient): NNL_GRID_THREADS threads per block, at most NNL_MAX_GRID_BLOCKS
// blocks, and a grid-stride loop that covers whatever the grid does not. The
// index is 64-bit: N * C * H * W may pass 2^31 while each extent fits an int.
// nnlite/kernels/nvrtc.py launches with the same numbers (a test checks them).
// Their __launch_bounds__ stay NNL_MAX_THREADS_PER_BLOCK: that bound is what
// holds the compiler to the TK1's 63 registers per thread on newer GPUs too.
#define NNL_GRID_THREADS 256
#define NNL_MAX_GRID_BLOCKS 65535
#define NNL_GRID_STRIDE_LOOP(index, total) NNL_GRID_STRIDE_LOOP_AS(long long, index, total)
#define NNL_GRID_STRIDE_LOOP_AS(index_t, index, total)                                \
  for (index_t index = (index_t)blockIdx.x * blockDim.x + threadIdx.x;              \
       index < (index_t)(total); index += (index_t)blockDim.x * gridDim.x)

// Kernels whose index arithmetic is division-heavy (im2col, col2im, pooling)
// run their loop in `unsigned int` when every index and offset of the launch
// is at most NNL_NARROW_INDEX_LIMIT: a GPU divides 32-bit integers several
// times faster than 64-bit ones, which it emulates (im2col ran at about a
// quarter of copy bandwidth on an H100 with 64-bit indices). Unsigned, so that
// index + grid stride (< 2^31 + 2^26) cannot overflow. Tests define the limit
// as 0 to run the 64-bit path on small arrays.
#ifndef NNL_NARROW_INDEX_LIMIT
#define NNL_NARROW_INDEX_LIMIT 2147483647LL
#endif
NNL_HD NNL_INLINE bool nnl_narrow_index(long long largest) {
  return largest <= NNL_NARROW_INDEX_LIMIT;
}

template <typename T>
struct nnl_limits;

template <>
struct nnl_limits<float> {
  static NNL_HD NNL_INLINE float max() { return 3.402823466e+38f; }
  static NNL_HD NNL_INLINE float lowest() { return -3.402823466e+38f; }
};

template <>
struct nnl_limits<double> {
  static NNL_HD NNL_INLINE double max() { return 1.7976931348623158e+308; }
  static NNL_HD NNL_INLINE double lowest() { return -1.7976931348623158e+308; }
};

// Overloads rather than templates so a call on scalar_t picks the float form
// (expf) for float: exp() on a float would silently compute in double.
NNL_HD NNL_INLINE float nnl_exp(float x) { return NNL_MATH(expf)(x); }
NNL_HD NNL_INLINE double nnl_exp(double x) { return NNL_MATH(exp)(x); }
NNL_HD NNL_INLINE float nnl_log(float x) { return NNL_MATH(logf)(x); }
NNL_HD NNL_INLINE double nnl_log(double x) { return NNL_MATH(log)(x); }
NNL_HD NNL_INLINE float nnl_log1p(float x) { return NNL_MATH(log1pf)(x); }
NNL_HD NNL_INLINE double nnl_log1p(double x) { return NNL_MATH(log1p)(x); }
// fmax ignores a NaN operand, so a max-reduction gives the same answer in any
// order (serial on the host, a tree on the GPU).
NNL_HD NNL_INLINE float nnl_fmax(float a, float b) { return NNL_MATH(fmaxf)(a, b); }
NNL_HD NNL_INLINE double nnl_fmax(double a, double b) { return NNL_MATH(fmax)(a, b); }

template <typename T>
NNL_HD NNL_INLINE T nnl_max(T a, T b) { return a > b ? a : b; }

template <typename T>
NNL_HD NNL_INLINE T nnl_min(T a, T b) { return a < b ? a : b; }

// log(exp(a) + exp(b)) without overflow; log-space recursions (CTC) are built
// on it. Both -inf (an impossible path) must stay -inf, not -inf - -inf = NaN.
// A NaN operand gives NaN: a NaN loses every comparison, so one selection
// (not nnl_max and nnl_min, which would both pick the other operand) puts it
// in hi or lo, and both returns below carry it; for other operands hi + lo is
// exactly -inf where hi alone was.
template <typename T>
NNL_HD NNL_INLINE T nnl_log_add_exp(T a, T b) {
  const bool a_larger = a > b;
  const T hi = a_larger ? a : b;
  const T lo = a_larger ? b : a;
  if (hi < nnl_limits<T>::lowest()) return hi + lo;
  return hi + nnl_log1p(nnl_exp(lo - hi));
}

#endif  // NNLITE_PORTABLE_CUH
