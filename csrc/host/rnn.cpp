// Host launcher of csrc/nnlite/rnn.cuh: the same per-unit functions as
// csrc/cuda/rnn.cu, OpenMP across the batch rows, the hidden units of a row in
// an inner serial loop.
#include "nnlite/rnn.cuh"

#include "host/arrays.h"
#include "host/families.h"
#include "host/vectorize.h"

namespace py = pybind11;

namespace {

// A step's elementwise work is small and sits between two BLAS calls whose
// threads are still spinning when it starts; an OpenMP team here competes with
// them for the cores (measured: a 5-step GRU cell 1024->576, N=50, took 200 ms
// instead of 19 ms on 2 loaded cores). So the cell runs on one core, vectorised,
// unless a step is large enough to pay for waking a second team.
const long long kMinParallelUnits = 1 << 20;

// row(n) over every row: one core below kMinParallelUnits, OpenMP above.
template <typename RowFn>
void run_rows(long long rows, int hidden, const RowFn& row) {
  if (rows * hidden >= kMinParallelUnits) {
#pragma omp parallel for schedule(static)
    for (long long n = 0; n < rows; ++n) run_row_range(n, n + 1, row);
  } else {
    run_row_range(0, rows, row);
  }
}

// The kernels' two flags, as bits of one int.
const int kHardSigmoid = 1;
const int kResetAfter = 2;

inline int gru_flags(int hard_sigmoid, int reset_after) {
  return (hard_sigmoid ? kHardSigmoid : 0) | (reset_after ? kResetAfter : 0);
}

// unit(j, live, flags) for every hidden unit j of one row. `live` and `flags`
// reach `unit` as literals, one loop per combination, so once unit is inlined
// the compiler drops the branches they guard and the live loop is branch-free
// and vectorises. A padded row (live = 0) only copies state: no simd needed.
template <typename Unit>
inline void for_each_unit(int hidden, bool live, int flags, const Unit& unit) {
  if (!live) {
    for (int j = 0; j < hidden; ++j) unit(j, 0, flags);
    return;
  }
  switch (flags) {
    case 0:
#pragma omp simd
      for (int j = 0; j < hidden; ++j) unit(j, 1, 0);
      break;
    case kHardSigmoid:
#pragma omp simd
      for (int j = 0; j < hidden; ++j) unit(j, 1, kHardSigmoid);
      break;
    case kResetAfter:
#pragma omp simd
      for (int j = 0; j < hidden; ++j) unit(j, 1, kResetAfter);
      break;
    default:
#pragma omp simd
      for (int j = 0; j < hidden; ++j) unit(j, 1, kHardSigmoid | kResetAfter);
      break;
  }
}

// The facade (nnlite/kernels/rnn_checks.py) checks shapes with friendlier
// messages; this stays because a wrong extent here is an out-of-bounds write.
void require_shape(const char* op, const char* name, const py::array& a, long long rows,
                   long long cols) {
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols) {
    throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                shape_string(a) + "; expected (" + std::to_string(rows) +
                                ", " + std::to_string(cols) + ")");
  }
}

void require_vector(const char* op, const char* name, const py::array& a, long long size) {
  if (a.ndim() != 1 || a.shape(0) != size) {
    throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                shape_string(a) + "; expected (" + std::to_string(size) + ",)");
  }
}

void require_lengths(const char* op, const py::array& lengths, long long rows) {
  require_vector(op, "lengths", lengths, rows);
}

template <typename scalar_t>
void lstm_cell_forward(host_array<scalar_t> gx, host_array<scalar_t> gh,
                       host_array<scalar_t> c_prev, host_array<scalar_t> h_prev,
                       host_array<scalar_t> c, host_array<scalar_t> h, host_array<int> lengths,
                       int t, int hard_sigmoid) {
  const char* op = "lstm_cell_forward";
  const long long rows = h_prev.ndim() == 2 ? h_prev.shape(0) : -1;
  const int hidden = h_prev.ndim() == 2 ? static_cast<int>(h_prev.shape(1)) : -1;
  require_matrix(op, "h_prev", h_prev);
  require_shape(op, "gx", gx, rows, 4LL * hidden);
  require_shape(op, "gh", gh, rows, 4LL * hidden);
  require_shape(op, "c_prev", c_prev, rows, hidden);
  require_shape(op, "c", c, rows, hidden);
  require_shape(op, "h", h, rows, hidden);
  require_lengths(op, lengths, rows);
  scalar_t* gx_data = gx.mutable_data();
  const scalar_t* gh_data = gh.data();
  const scalar_t* c_prev_data = c_prev.data();
  const scalar_t* h_prev_data = h_prev.data();
  scalar_t* c_data = c.mutable_data();
  scalar_t* h_data = h.mutable_data();
  const int* length_data = lengths.data();
  py::gil_scoped_release no_gil;
  run_rows(rows, hidden, [=](long long n) {
    for_each_unit(hidden, t < length_data[n], hard_sigmoid ? 1 : 0, [=](int j, int live, int flags) {
      lstm_cell_forward_element(gx_data, gh_data, c_prev_data, h_prev_data, c_data, h_data,
                                live, hidden, flags & kHardSigmoid, n, j);
    });
  });
}

template <typename scalar_t>
void lstm_cell_backward(host_array<scalar_t> gates, host_array<scalar_t> c_prev,
                        host_array<scalar_t> c, host_array<scalar_t> dh, host_array<scalar_t> dc,
                        host_array<scalar_t> d_gates, host_array<scalar_t> dc_prev,
                        host_array<scalar_t> dh_prev, host_array<int> lengths, int t,
                        int hard_sigmoid) {
  const char* op = "lstm_cell_backward";
  const long long rows = c.ndim() == 2 ? c.shape(0) : -1;
  const int hidden = c.ndim() == 2 ? static_cast<int>(c.shape(1)) : -1;
  require_matrix(op, "c", c);
  require_shape(op, "gates", gates, rows, 4LL * hidden);
  require_shape(op, "d_gates", d_gates, rows, 4LL * hidden);
  require_shape(op, "c_prev", c_prev, rows, hidden);
  require_shape(op, "dh", dh, rows, hidden);
  require_shape(op, "dc", dc, rows, hidden);
  require_shape(op, "dc_prev", dc_prev, rows, hidden);
  require_shape(op, "dh_prev", dh_prev, rows, hidden);
  require_lengths(op, lengths, rows);
  const scalar_t* gates_data = gates.data();
  const scalar_t* c_prev_data = c_prev.data();
  const scalar_t* c_data = c.data();
  const scalar_t* dh_data = dh.data();
  const scalar_t* dc_data = dc.data();
  scalar_t* d_gates_data = d_gates.mutable_data();
  scalar_t* dc_prev_data = dc_prev.mutable_data();
  scalar_t* dh_prev_data = dh_prev.mutable_data();
  const int* length_data = lengths.data();
  py::gil_scoped_release no_gil;
  run_rows(rows, hidden, [=](long long n) {
    for_each_unit(hidden, t < length_data[n], hard_sigmoid ? 1 : 0, [=](int j, int live, int flags) {
      lstm_cell_backward_element(gates_data, c_prev_data, c_data, dh_data, dc_data, d_gates_data,
                                 dc_prev_data, dh_prev_data, live, hidden,
                                 flags & kHardSigmoid, n, j);
    });
  });
}

template <typename scalar_t>
void gru_reset_gate_forward(host_array<scalar_t> gx, host_array<scalar_t> gh_rz,
                            host_array<scalar_t> h_prev, host_array<scalar_t> rh,
                            int hard_sigmoid) {
  const char* op = "gru_reset_gate_forward";
  const long long rows = h_prev.ndim() == 2 ? h_prev.shape(0) : -1;
  const int hidden = h_prev.ndim() == 2 ? static_cast<int>(h_prev.shape(1)) : -1;
  require_matrix(op, "h_prev", h_prev);
  require_shape(op, "gx", gx, rows, 3LL * hidden);
  require_shape(op, "gh_rz", gh_rz, rows, 2LL * hidden);
  require_shape(op, "rh", rh, rows, hidden);
  scalar_t* gx_data = gx.mutable_data();
  const scalar_t* gh_data = gh_rz.data();
  const scalar_t* h_prev_data = h_prev.data();
  scalar_t* rh_data = rh.mutable_data();
  py::gil_scoped_release no_gil;
  run_rows(rows, hidden, [=](long long n) {
    for_each_unit(hidden, true, hard_sigmoid ? 1 : 0, [=](int j, int, int flags) {
      gru_reset_gate_forward_element(gx_data, gh_data, h_prev_data, rh_data, hidden,
                                     flags & kHardSigmoid, n, j);
    });
  });
}

template <typename scalar_t>
void gru_cell_forward(host_array<scalar_t> gx, host_array<scalar_t> gh, host_array<scalar_t> b_hn,
                      host_array<scalar_t> h_prev, host_array<scalar_t> h,
                      host_array<int> lengths, int t, int hard_sigmoid, int reset_after) {
  const char* op = "gru_cell_forward";
  const long long rows = h_prev.ndim() == 2 ? h_prev.shape(0) : -1;
  const int hidden = h_prev.ndim() == 2 ? static_cast<int>(h_prev.shape(1)) : -1;
  require_matrix(op, "h_prev", h_prev);
  require_shape(op, "gx", gx, rows, 3LL * hidden);
  require_shape(op, "gh", gh, rows, (reset_after ? 3LL : 1LL) * hidden);
  require_shape(op, "h", h, rows, hidden);
  require_vector(op, "b_hn", b_hn, hidden);
  require_lengths(op, lengths, rows);
  scalar_t* gx_data = gx.mutable_data();
  const scalar_t* gh_data = gh.data();
  const scalar_t* b_data = b_hn.data();
  const scalar_t* h_prev_data = h_prev.data();
  scalar_t* h_data = h.mutable_data();
  const int* length_data = lengths.data();
  py::gil_scoped_release no_gil;
  const int flags = gru_flags(hard_sigmoid, reset_after);
  run_rows(rows, hidden, [=](long long n) {
    for_each_unit(hidden, t < length_data[n], flags, [=](int j, int live, int f) {
      gru_cell_forward_element(gx_data, gh_data, b_data, h_prev_data, h_data, live, hidden,
                               f & kHardSigmoid, (f & kResetAfter) != 0, n, j);
    });
  });
}

template <typename scalar_t>
void gru_cell_backward(host_array<scalar_t> gates, host_array<scalar_t> gh,
                       host_array<scalar_t> b_hn, host_array<scalar_t> h_prev,
                       host_array<scalar_t> dh, host_array<scalar_t> d_gx,
                       host_array<scalar_t> d_gh, host_array<scalar_t> dh_prev,
                       host_array<int> lengths, int t, int hard_sigmoid, int reset_after) {
  const char* op = "gru_cell_backward";
  const long long rows = h_prev.ndim() == 2 ? h_prev.shape(0) : -1;
  const int hidden = h_prev.ndim() == 2 ? static_cast<int>(h_prev.shape(1)) : -1;
  require_matrix(op, "h_prev", h_prev);
  require_shape(op, "gates", gates, rows, 3LL * hidden);
  require_shape(op, "d_gx", d_gx, rows, 3LL * hidden);
  if (reset_after) {
    require_shape(op, "gh", gh, rows, 3LL * hidden);
    require_shape(op, "d_gh", d_gh, rows, 3LL * hidden);
  }
  require_vector(op, "b_hn", b_hn, hidden);
  require_shape(op, "dh", dh, rows, hidden);
  require_shape(op, "dh_prev", dh_prev, rows, hidden);
  require_lengths(op, lengths, rows);
  const scalar_t* gates_data = gates.data();
  const scalar_t* gh_data = gh.data();
  const scalar_t* b_data = b_hn.data();
  const scalar_t* h_prev_data = h_prev.data();
  const scalar_t* dh_data = dh.data();
  scalar_t* d_gx_data = d_gx.mutable_data();
  scalar_t* d_gh_data = d_gh.mutable_data();
  scalar_t* dh_prev_data = dh_prev.mutable_data();
  const int* length_data = lengths.data();
  py::gil_scoped_release no_gil;
  const int flags = gru_flags(hard_sigmoid, reset_after);
  run_rows(rows, hidden, [=](long long n) {
    for_each_unit(hidden, t < length_data[n], flags, [=](int j, int live, int f) {
      gru_cell_backward_element(gates_data, gh_data, b_data, h_prev_data, dh_data, d_gx_data,
                                d_gh_data, dh_prev_data, live, hidden, f & kHardSigmoid,
                                (f & kResetAfter) != 0, n, j);
    });
  });
}

template <typename scalar_t>
void gru_reset_gate_backward(host_array<scalar_t> gates, host_array<scalar_t> h_prev,
                             host_array<scalar_t> d_rh, host_array<scalar_t> d_gx,
                             host_array<scalar_t> dh_prev, host_array<int> lengths, int t,
                             int hard_sigmoid) {
  const char* op = "gru_reset_gate_backward";
  const long long rows = h_prev.ndim() == 2 ? h_prev.shape(0) : -1;
  const int hidden = h_prev.ndim() == 2 ? static_cast<int>(h_prev.shape(1)) : -1;
  require_matrix(op, "h_prev", h_prev);
  require_shape(op, "gates", gates, rows, 3LL * hidden);
  require_shape(op, "d_gx", d_gx, rows, 3LL * hidden);
  require_shape(op, "d_rh", d_rh, rows, hidden);
  require_shape(op, "dh_prev", dh_prev, rows, hidden);
  require_lengths(op, lengths, rows);
  const scalar_t* gates_data = gates.data();
  const scalar_t* h_prev_data = h_prev.data();
  const scalar_t* d_rh_data = d_rh.data();
  scalar_t* d_gx_data = d_gx.mutable_data();
  scalar_t* dh_prev_data = dh_prev.mutable_data();
  const int* length_data = lengths.data();
  py::gil_scoped_release no_gil;
  run_rows(rows, hidden, [=](long long n) {
    for_each_unit(hidden, t < length_data[n], hard_sigmoid ? 1 : 0, [=](int j, int live, int flags) {
      gru_reset_gate_backward_element(gates_data, h_prev_data, d_rh_data, d_gx_data,
                                      dh_prev_data, live, hidden, flags & kHardSigmoid, n, j);
    });
  });
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const char* suffix) {
  const std::string s = std::string("_") + suffix;
  m.def(("lstm_cell_forward" + s).c_str(), &lstm_cell_forward<scalar_t>,
        py::arg("gx").noconvert(), py::arg("gh").noconvert(), py::arg("c_prev").noconvert(),
        py::arg("h_prev").noconvert(), py::arg("c").noconvert(), py::arg("h").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("hard_sigmoid"),
        "One LSTM step: gx (N, 4H) pre-activations become activations; writes c, h.");
  m.def(("lstm_cell_backward" + s).c_str(), &lstm_cell_backward<scalar_t>,
        py::arg("gates").noconvert(), py::arg("c_prev").noconvert(), py::arg("c").noconvert(),
        py::arg("dh").noconvert(), py::arg("dc").noconvert(), py::arg("d_gates").noconvert(),
        py::arg("dc_prev").noconvert(), py::arg("dh_prev").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("hard_sigmoid"),
        "Backward of one LSTM step from its saved gate activations.");
  m.def(("gru_reset_gate_forward" + s).c_str(), &gru_reset_gate_forward<scalar_t>,
        py::arg("gx").noconvert(), py::arg("gh_rz").noconvert(), py::arg("h_prev").noconvert(),
        py::arg("rh").noconvert(), py::arg("hard_sigmoid"),
        "GRU reset_after=False, phase 1: activate r, z in gx; rh = r * h_prev.");
  m.def(("gru_cell_forward" + s).c_str(), &gru_cell_forward<scalar_t>,
        py::arg("gx").noconvert(), py::arg("gh").noconvert(), py::arg("b_hn").noconvert(),
        py::arg("h_prev").noconvert(), py::arg("h").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("hard_sigmoid"),
        py::arg("reset_after"), "One GRU step; gx (N, 3H) becomes the activations r, z, n.");
  m.def(("gru_cell_backward" + s).c_str(), &gru_cell_backward<scalar_t>,
        py::arg("gates").noconvert(), py::arg("gh").noconvert(), py::arg("b_hn").noconvert(),
        py::arg("h_prev").noconvert(), py::arg("dh").noconvert(), py::arg("d_gx").noconvert(),
        py::arg("d_gh").noconvert(), py::arg("dh_prev").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("hard_sigmoid"),
        py::arg("reset_after"), "Backward of one GRU step from its saved activations.");
  m.def(("gru_reset_gate_backward" + s).c_str(), &gru_reset_gate_backward<scalar_t>,
        py::arg("gates").noconvert(), py::arg("h_prev").noconvert(),
        py::arg("d_rh").noconvert(), py::arg("d_gx").noconvert(),
        py::arg("dh_prev").noconvert(), py::arg("lengths").noconvert(), py::arg("t"),
        py::arg("hard_sigmoid"), "GRU reset_after=False, phase 2 of backward: the r block.");
}

}  // namespace

void register_rnn(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
