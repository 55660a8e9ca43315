// nnlite._C: the host (CPU) build of the kernels in csrc/. Each family lives in
// csrc/host/<family>.cpp and registers its entry points here.
#include "host/families.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int openmp_max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "Host build of the nnlite kernels (csrc/nnlite/*.cuh); call through nnlite.kernels.";
  m.def("openmp_max_threads", &openmp_max_threads,
        "Threads an OpenMP-parallel host kernel may use (1 when built without OpenMP).");
  register_softmax(m);
  register_rnn(m);
  register_ctc(m);
  register_conv(m);
  register_pool(m);
}
