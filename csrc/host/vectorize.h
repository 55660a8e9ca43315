// Runtime-dispatched AVX2 copies of vectorisable host loops.
//
// The extension is built for the baseline x86-64 ISA (SSE2), so that one build
// runs on any x86-64 machine. Loops whose vector form matters (the fused RNN
// cells: a polynomial exp over every gate) get a second, AVX2 copy through
// GCC's target_clones; the dynamic loader picks it when the CPU has AVX2.
// Only AVX2 is enabled, not FMA, so both copies round identically and results
// do not depend on the machine.
#ifndef NNLITE_HOST_VECTORIZE_H
#define NNLITE_HOST_VECTORIZE_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NNL_HOST_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NNL_HOST_VECTOR_CLONES
#endif

// GCC inlines by a budget for the whole translation unit (--param
// inline-unit-growth), so whether a cell's rnn_tanh was inlined, and its loop
// vectorised, depended on how much other code the file held (measured: the
// LSTM forward step ran 5x slower when rnn.cpp grew its argument checks).
// flatten inlines everything a row calls, whatever the budget.
#if defined(__GNUC__)
#define NNL_HOST_FLATTEN __attribute__((flatten))
#else
#define NNL_HOST_FLATTEN
#endif

// Calls row(n) for n in [begin, end). The clone attribute sits here, on a
// function that is not an OpenMP region, because GCC does not pass it on to
// the outlined body of a parallel loop; row's body is inlined into each copy.
template <typename RowFn>
NNL_HOST_VECTOR_CLONES NNL_HOST_FLATTEN void run_row_range(long long begin, long long end,
                                                          const RowFn& row) {
  for (long long n = begin; n < end; ++n) row(n);
}

#endif  // NNLITE_HOST_VECTORIZE_H
