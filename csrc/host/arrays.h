// Argument checks shared by the host wrappers.
//
// The Python facade (nnlite/kernels/_checks.py) already guarantees dtype,
// shape and contiguity; these checks stay because a wrong shape reaching a
// host loop is an out-of-bounds write, not an exception.
#ifndef NNLITE_HOST_ARRAYS_H
#define NNLITE_HOST_ARRAYS_H

#include "host/checks.h"

// `a` must be 2-D with an int-sized column count (the .cuh steps index with int).
inline void require_matrix(const char* op, const char* name, const pybind11::array& a) {
  if (a.ndim() != 2 || a.shape(1) > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                shape_string(a) + "; expected (rows, cols) with cols <= " +
                                std::to_string(INT_MAX));
  }
}

inline void require_same_shape(const char* op, const char* name, const pybind11::array& a,
                               const char* ref_name, const pybind11::array& ref) {
  bool same = a.ndim() == ref.ndim();
  for (pybind11::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == ref.shape(d);
  if (!same) {
    throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                shape_string(a) + "; expected the shape of " + ref_name + ", " +
                                shape_string(ref));
  }
}

#endif  // NNLITE_HOST_ARRAYS_H
