// Argument checks shared by the host wrappers.
//
// The Python facade (nnlite/kernels/_checks.py) already guarantees dtype,
// shape and contiguity; these checks stay because a wrong shape reaching a
// host loop is an out-of-bounds write, not an exception.
#ifndef NNLITE_HOST_ARRAYS_H
#define NNLITE_HOST_ARRAYS_H

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <sstream>
#include <stdexcept>
#include <string>

// Exact dtype, C order: bind with py::arg(...).noconvert() so pybind11 never
// substitutes a converted temporary for an output array.
template <typename scalar_t>
using host_array = pybind11::array_t<scalar_t, pybind11::array::c_style>;

inline std::string shape_string(const pybind11::array& a) {
  std::ostringstream out;
  out << "(";
  for (pybind11::ssize_t d = 0; d < a.ndim(); ++d) out << (d ? ", " : "") << a.shape(d);
  out << (a.ndim() == 1 ? ",)" : ")");
  return out.str();
}

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
