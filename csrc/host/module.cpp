// nnlite._C: the host (CPU) build of the kernels in csrc/. Each family lives in
// csrc/host/<family>.cpp and registers its entry points here.
#include "host/families.h"

#include <stdexcept>
#include <string>

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

// Sets the team size of every later OpenMP loop in this module (nnlite's one
// thread setting, nnlite.set_num_threads, also sets the BLAS pool).
static void set_openmp_threads(long long threads) {
  if (threads < 1 || threads > 4096) {
    throw std::invalid_argument("set_openmp_threads: threads = " + std::to_string(threads) +
                                "; expected a value in [1, 4096]");
  }
#ifdef _OPENMP
  omp_set_num_threads((int)threads);
#endif
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "Host build of the nnlite kernels (csrc/nnlite/*.cuh); call through nnlite.kernels.";
  m.def("openmp_max_threads", &openmp_max_threads,
        "Threads an OpenMP-parallel host kernel may use (1 when built without OpenMP).");
  m.def("set_openmp_threads", &set_openmp_threads, pybind11::arg("threads"),
        "Threads every later OpenMP-parallel host kernel uses.");
  register_softmax(m);
  register_rnn(m);
  register_ctc(m);
  register_conv(m);
  register_pool(m);
  register_winograd(m);
  register_dequant(m);
  register_direct_conv(m);
  register_activation(m);
}
