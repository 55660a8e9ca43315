// Argument checks of the host entry points (nnlite._C).
//
// Each entry point takes exactly the arguments of the CUDA extern "C" entry
// point of the same name: flat buffers plus the integer geometry. nnlite._C is
// importable, so an entry point never trusts its caller: every integer is
// range-checked, every buffer's element count is compared with the count the
// integers imply (64-bit, overflow-checked), and only then does a loop run.
// A failed check throws std::invalid_argument (Python's ValueError) naming the
// entry point, the argument, what was given and what was expected.
#ifndef NNLITE_HOST_CHECKS_H
#define NNLITE_HOST_CHECKS_H

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cstdint>
#include <exception>
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

[[noreturn]] inline void argument_error(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

// lo <= value <= hi, else an error naming the argument.
inline void require_range(const char* op, const char* name, long long value, long long lo,
                          long long hi) {
  if (value < lo || value > hi) {
    argument_error(op, std::string(name) + " = " + std::to_string(value) +
                           "; expected a value in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
  }
}

inline void require_positive_int(const char* op, const char* name, long long value) {
  require_range(op, name, value, 1, INT_MAX);
}

inline void require_count(const char* op, const char* name, long long value) {
  require_range(op, name, value, 0, INT_MAX);
}

// a * b for non-negative sizes, or an error when it passes LLONG_MAX.
inline long long checked_product(const char* op, const char* what, long long a, long long b) {
  if (a != 0 && b > LLONG_MAX / a) {
    argument_error(op, std::string(what) + " = " + std::to_string(a) + " * " +
                           std::to_string(b) + " overflows 64 bits");
  }
  return a * b;
}

// The buffer must hold exactly `expected` elements (its shape is the caller's).
inline void require_elements(const char* op, const char* name, const pybind11::array& a,
                             long long expected, const char* described) {
  if ((long long)a.size() != expected) {
    argument_error(op, std::string(name) + " has shape " + shape_string(a) + " (" +
                           std::to_string(a.size()) + " elements); expected " +
                           std::to_string(expected) + " elements, " + described);
  }
}

// An output must be writable: the loop writes through its pointer regardless.
inline void require_writable(const char* op, const char* name, const pybind11::array& a) {
  if (!a.writeable()) {
    argument_error(op, std::string(name) + " is read-only; expected a writable array");
  }
}

// An output must not share memory with another argument: writing it while the
// other is read would change values after they were checked (a label turned
// into an out-of-bounds index) or corrupt results.
inline void require_disjoint(const char* op, const char* name, const pybind11::array& a,
                             const char* other_name, const pybind11::array& other) {
  const std::uintptr_t a0 = reinterpret_cast<std::uintptr_t>(a.data());
  const std::uintptr_t b0 = reinterpret_cast<std::uintptr_t>(other.data());
  const std::uintptr_t a_bytes = (std::uintptr_t)a.nbytes();
  const std::uintptr_t b_bytes = (std::uintptr_t)other.nbytes();
  if (a_bytes && b_bytes && a0 < b0 + b_bytes && b0 < a0 + a_bytes) {
    argument_error(op, std::string(name) + " shares memory with " + other_name +
                           "; expected separate arrays");
  }
}

// The scalar geometry arguments shared by the convolution entry points (im2col,
// col2im, the direct convolution): sizes and paddings counts, kernel, stride
// and dilation positive ints, each named in the error.
inline void require_conv_geometry(const char* op, long long height, long long width,
                                  long long kernel_h, long long kernel_w, long long stride_h,
                                  long long stride_w, long long pad_top, long long pad_left,
                                  long long dilation_h, long long dilation_w, long long out_h,
                                  long long out_w) {
  require_count(op, "height", height);
  require_count(op, "width", width);
  require_positive_int(op, "kernel_h", kernel_h);
  require_positive_int(op, "kernel_w", kernel_w);
  require_positive_int(op, "stride_h", stride_h);
  require_positive_int(op, "stride_w", stride_w);
  require_count(op, "pad_top", pad_top);
  require_count(op, "pad_left", pad_left);
  require_positive_int(op, "dilation_h", dilation_h);
  require_positive_int(op, "dilation_w", dilation_w);
  require_count(op, "out_h", out_h);
  require_count(op, "out_w", out_w);
}

// body(plane) for plane in [0, planes): OpenMP over the planes when the work is
// large enough to pay for waking a team, serially otherwise. The GIL is
// released by the caller around it. An exception thrown by a body (a worker's
// std::vector that cannot be allocated) must not leave an OpenMP region,
// which would terminate the process: the first one is kept and rethrown after
// the region (pybind11 turns std::bad_alloc into MemoryError).
template <typename Body>
inline void for_each_plane(long long planes, long long work, const Body& body) {
  const long long kMinParallelElements = 1 << 15;
  if (work >= kMinParallelElements) {
    std::exception_ptr failure;
#pragma omp parallel for schedule(static)
    for (long long plane = 0; plane < planes; ++plane) {
      try {
        body(plane);
      } catch (...) {
#pragma omp critical(nnl_for_each_plane_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
  } else {
    for (long long plane = 0; plane < planes; ++plane) body(plane);
  }
}

#endif  // NNLITE_HOST_CHECKS_H
