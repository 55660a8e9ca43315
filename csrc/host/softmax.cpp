// Host launcher of csrc/nnlite/softmax.cuh: the same steps and arguments as
// csrc/cuda/softmax.cu with one worker per row (tid = 0, nthreads = 1), OpenMP across rows.
#include "nnlite/softmax.cuh"

#include "host/checks.h"
#include "host/families.h"

namespace py = pybind11;

namespace {

// Below this many elements, starting a parallel region costs more than the work.
const long long kMinParallelElements = 1 << 15;

template <typename scalar_t>
void softmax_forward_rows(const scalar_t* x, scalar_t* y, long long rows, int cols,
                          int log_softmax) {
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
  for (long long r = 0; r < rows; ++r) {
    const scalar_t* x_row = x + r * cols;
    const scalar_t row_max = softmax_partial_max(x_row, cols, 0, 1);
    const scalar_t sum_exp = softmax_partial_sum_exp(x_row, cols, row_max, 0, 1);
    softmax_write(x_row, y + r * cols, cols, row_max, sum_exp, log_softmax, 0, 1);
  }
}

template <typename scalar_t>
void softmax_backward_rows(const scalar_t* y, const scalar_t* gy, scalar_t* gx, long long rows,
                           int cols, int log_softmax) {
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
  for (long long r = 0; r < rows; ++r) {
    const long long offset = r * cols;
    const scalar_t dot =
        softmax_backward_partial_dot(y + offset, gy + offset, cols, log_softmax, 0, 1);
    softmax_backward_write(y + offset, gy + offset, gx + offset, cols, dot, log_softmax, 0, 1);
  }
}

// rows x cols buffers, both counts checked (the .cuh steps index a row with int).
void check_rows(const char* op, long long rows, long long cols) {
  require_range(op, "rows", rows, 0, LLONG_MAX);
  require_count(op, "cols", cols);
}

template <typename scalar_t>
void softmax_forward(host_array<scalar_t> x, host_array<scalar_t> y, long long rows,
                     long long cols, long long log_softmax) {
  const char* op = "softmax_forward";
  check_rows(op, rows, cols);
  require_range(op, "log_softmax", log_softmax, 0, 1);
  const long long size = checked_product(op, "rows * cols", rows, cols);
  require_elements(op, "x", x, size, "rows * cols");
  require_elements(op, "y", y, size, "rows * cols");
  const scalar_t* x_data = x.data();
  scalar_t* y_data = y.mutable_data();
  py::gil_scoped_release no_gil;
  softmax_forward_rows(x_data, y_data, rows, (int)cols, (int)log_softmax);
}

template <typename scalar_t>
void softmax_backward(host_array<scalar_t> y, host_array<scalar_t> gy, host_array<scalar_t> gx,
                      long long rows, long long cols, long long log_softmax) {
  const char* op = "softmax_backward";
  check_rows(op, rows, cols);
  require_range(op, "log_softmax", log_softmax, 0, 1);
  const long long size = checked_product(op, "rows * cols", rows, cols);
  require_elements(op, "y", y, size, "rows * cols");
  require_elements(op, "gy", gy, size, "rows * cols");
  require_elements(op, "gx", gx, size, "rows * cols");
  const scalar_t* y_data = y.data();
  const scalar_t* gy_data = gy.data();
  scalar_t* gx_data = gx.mutable_data();
  py::gil_scoped_release no_gil;
  softmax_backward_rows(y_data, gy_data, gx_data, rows, (int)cols, (int)log_softmax);
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("softmax_forward_" + suffix).c_str(), &softmax_forward<scalar_t>,
        py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("rows"), py::arg("cols"),
        py::arg("log_softmax"),
        "Row-wise softmax (log_softmax=0) or log-softmax (1) of x (rows, cols) into y.");
  m.def(("softmax_backward_" + suffix).c_str(), &softmax_backward<scalar_t>,
        py::arg("y").noconvert(), py::arg("gy").noconvert(), py::arg("gx").noconvert(),
        py::arg("rows"), py::arg("cols"), py::arg("log_softmax"),
        "Gradient w.r.t. the softmax input into gx, from the forward output y and its "
        "gradient gy.");
}

}  // namespace

void register_softmax(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
