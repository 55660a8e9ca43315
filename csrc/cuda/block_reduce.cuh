// Block-wide reductions for the CUDA wrappers: the glue between the partial_*
// steps of a csrc/nnlite/<family>.cuh and the next step that needs the total.
//
// Shared memory rather than warp shuffles: it works unchanged from compute
// capability 3.2 (TK1) upwards, and the tree's fixed order makes every result
// bit-for-bit reproducible run to run.
#ifndef NNLITE_CUDA_BLOCK_REDUCE_CUH
#define NNLITE_CUDA_BLOCK_REDUCE_CUH

#include "nnlite/portable.cuh"

struct nnl_sum_op {
  template <typename T>
  __device__ NNL_INLINE T operator()(T a, T b) const { return a + b; }
};

struct nnl_max_op {
  template <typename T>
  __device__ NNL_INLINE T operator()(T a, T b) const { return nnl_fmax(a, b); }
};

// The dynamic shared memory of the launch (blockDim.x elements of scalar_t,
// sized by the launcher). Every extern __shared__ array aliases the same bytes,
// so it is declared once, as double, which is aligned for float too.
template <typename scalar_t>
__device__ NNL_INLINE scalar_t* nnl_shared_scratch() {
  extern __shared__ double nnl_dynamic_shared[];
  return reinterpret_cast<scalar_t*>(nnl_dynamic_shared);
}

// Combines one value per thread; every thread receives the total.
// Requires blockDim.x to be a power of two (the launcher guarantees it).
template <typename scalar_t, typename op_t>
__device__ NNL_INLINE scalar_t block_reduce(scalar_t value, scalar_t* scratch, op_t op) {
  const int tid = threadIdx.x;
  scratch[tid] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (tid < stride) scratch[tid] = op(scratch[tid], scratch[tid + stride]);
    __syncthreads();
  }
  const scalar_t total = scratch[0];
  // The next reduction reuses scratch: nobody may overwrite scratch[0] before
  // every thread has read it.
  __syncthreads();
  return total;
}

#endif  // NNLITE_CUDA_BLOCK_REDUCE_CUH
