// Checks of the integer geometry that the conv and pool host wrappers receive
// as one tuple. A zero stride would divide by zero and a negative size would
// index out of bounds, so they are refused here even though the Python facade
// (nnlite/kernels/shapes.py) already validates them.
#ifndef NNLITE_HOST_GEOMETRY_H
#define NNLITE_HOST_GEOMETRY_H

#include <pybind11/pybind11.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "host/arrays.h"

inline void require_ndim(const char* op, const char* name, const pybind11::array& a, int ndim) {
  if (a.ndim() != ndim) {
    throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                shape_string(a) + "; expected " + std::to_string(ndim) +
                                " dimensions");
  }
}

inline void unpack_ints(const char* op, const pybind11::tuple& params, int* out, int count) {
  if ((int)params.size() != count) {
    throw std::invalid_argument(std::string(op) + ": params has " +
                                std::to_string(params.size()) + " entries; expected " +
                                std::to_string(count));
  }
  for (int k = 0; k < count; ++k) {
    const long long v = params[k].cast<long long>();
    if (v < INT_MIN || v > INT_MAX) {
      throw std::invalid_argument(std::string(op) + ": params entry " + std::to_string(k) +
                                  " = " + std::to_string(v) + " does not fit an int");
    }
    out[k] = static_cast<int>(v);
  }
}

inline void require_positive(const char* op, const char* what, const int* values, int count) {
  for (int k = 0; k < count; ++k) {
    if (values[k] <= 0) {
      throw std::invalid_argument(std::string(op) + ": " + what + " must be positive; got " +
                                  std::to_string(values[k]));
    }
  }
}

inline void require_non_negative(const char* op, const char* what, const int* values,
                                 int count) {
  for (int k = 0; k < count; ++k) {
    if (values[k] < 0) {
      throw std::invalid_argument(std::string(op) + ": " + what + " must be >= 0; got " +
                                  std::to_string(values[k]));
    }
  }
}

#endif  // NNLITE_HOST_GEOMETRY_H
