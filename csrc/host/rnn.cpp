// Host launcher of csrc/nnlite/rnn.cuh: the same per-unit functions as
// csrc/cuda/rnn.cu, OpenMP across the batch rows, the hidden units of a row in
// an inner serial loop.
//
// Each entry point <name>_f32 / _f64 takes exactly the arguments of the CUDA
// entry point of the same name, in the same order: the step's arrays as flat
// buffers, then t (where the step has lengths), units = N * H, hidden = H and
// the flags. It checks all of them (host/checks.h) before touching memory.
#include "nnlite/rnn.cuh"

#include "host/checks.h"
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

// "<name>_f32" or "<name>_f64", the entry point's name in its errors.
template <typename scalar_t>
std::string entry_name(const char* name);
template <>
std::string entry_name<float>(const char* name) { return std::string(name) + "_f32"; }
template <>
std::string entry_name<double>(const char* name) { return std::string(name) + "_f64"; }

// The checked geometry of one step: N rows of H hidden units.
struct step_shape {
  long long units;  // N * H
  long long rows;   // N
  int hidden;       // H
};

// units >= 0; 1 <= hidden unless units == 0; units a multiple of hidden.
// `gates` is the widest array's width in H (LSTM 4, GRU 3): rnn.cuh indexes a
// row of gates with int columns k * H + j, so gates * H must fit an int.
step_shape checked_step(const char* op, long long units, long long hidden, int gates) {
  require_range(op, "units", units, 0, LLONG_MAX);
  require_range(op, "hidden", hidden, units == 0 ? 0 : 1, INT_MAX / gates);
  if (hidden != 0 && units % hidden != 0) {
    argument_error(op, "units = " + std::to_string(units) + " is not a multiple of hidden = " +
                           std::to_string(hidden) + " (units = N * H)");
  }
  step_shape s;
  s.units = units;
  s.rows = hidden == 0 ? 0 : units / hidden;
  s.hidden = static_cast<int>(hidden);
  return s;
}

// `a` is an (N, width * H) array: width * units elements. The messages are
// built only on failure: these checks sit in front of a step that may take
// microseconds.
void require_step_array(const char* op, const char* name, const py::array& a,
                        const step_shape& s, int width) {
  const long long expected = checked_product(op, "width * units", width, s.units);
  if ((long long)a.size() == expected) return;
  const std::string columns = width == 1 ? "H" : std::to_string(width) + "H";
  require_elements(op, name, a, expected,
                   ("(N, " + columns + ") with N = " + std::to_string(s.rows) +
                    ", H = " + std::to_string(s.hidden)).c_str());
}

// b_hn: one recurrent bias per hidden unit.
void require_bias(const char* op, const py::array& b_hn, const step_shape& s) {
  if ((long long)b_hn.size() == s.hidden) return;
  require_elements(op, "b_hn", b_hn, s.hidden,
                   ("(H,) with H = " + std::to_string(s.hidden)).c_str());
}

// lengths: one int32 per row; t: the step, in [0, INT_MAX].
void require_lengths(const char* op, const py::array& lengths, long long t,
                     const step_shape& s) {
  require_count(op, "t", t);
  if ((long long)lengths.size() == s.rows) return;
  require_elements(op, "lengths", lengths, s.rows,
                   ("(N,) with N = units / hidden = " + std::to_string(s.rows)).c_str());
}

void require_flag(const char* op, const char* name, long long value) {
  require_range(op, name, value, 0, 1);
}

// The data of an array the step writes (after its size was checked).
template <typename scalar_t>
scalar_t* output_data(const char* op, const char* name, host_array<scalar_t>& a) {
  require_writable(op, name, a);
  return a.mutable_data();
}

template <typename scalar_t>
void lstm_cell_forward(host_array<scalar_t> gx, host_array<scalar_t> gh,
                       host_array<scalar_t> c_prev, host_array<scalar_t> h_prev,
                       host_array<scalar_t> c, host_array<scalar_t> h, host_array<int> lengths,
                       long long t, long long units, long long hidden_units,
                       long long hard_sigmoid) {
  const std::string name = entry_name<scalar_t>("lstm_cell_forward");
  const char* op = name.c_str();
  const step_shape s = checked_step(op, units, hidden_units, 4);
  require_flag(op, "hard_sigmoid", hard_sigmoid);
  require_step_array(op, "gx", gx, s, 4);
  require_step_array(op, "gh", gh, s, 4);
  require_step_array(op, "c_prev", c_prev, s, 1);
  require_step_array(op, "h_prev", h_prev, s, 1);
  require_step_array(op, "c", c, s, 1);
  require_step_array(op, "h", h, s, 1);
  require_lengths(op, lengths, t, s);
  scalar_t* gx_data = output_data(op, "gx", gx);
  const scalar_t* gh_data = gh.data();
  const scalar_t* c_prev_data = c_prev.data();
  const scalar_t* h_prev_data = h_prev.data();
  scalar_t* c_data = output_data(op, "c", c);
  scalar_t* h_data = output_data(op, "h", h);
  const int* length_data = lengths.data();
  if (s.rows == 0) return;
  const int step = static_cast<int>(t);
  const int hidden = s.hidden;
  const int flags = hard_sigmoid ? kHardSigmoid : 0;
  py::gil_scoped_release no_gil;
  run_rows(s.rows, hidden, [=](long long n) {
    for_each_unit(hidden, step < length_data[n], flags, [=](int j, int live, int f) {
      lstm_cell_forward_element(gx_data, gh_data, c_prev_data, h_prev_data, c_data, h_data,
                                live, hidden, f & kHardSigmoid, n, j);
    });
  });
}

template <typename scalar_t>
void lstm_cell_backward(host_array<scalar_t> gates, host_array<scalar_t> c_prev,
                        host_array<scalar_t> c, host_array<scalar_t> dh, host_array<scalar_t> dc,
                        host_array<scalar_t> d_gates, host_array<scalar_t> dc_prev,
                        host_array<scalar_t> dh_prev, host_array<int> lengths, long long t,
                        long long units, long long hidden_units, long long hard_sigmoid) {
  const std::string name = entry_name<scalar_t>("lstm_cell_backward");
  const char* op = name.c_str();
  const step_shape s = checked_step(op, units, hidden_units, 4);
  require_flag(op, "hard_sigmoid", hard_sigmoid);
  require_step_array(op, "gates", gates, s, 4);
  require_step_array(op, "c_prev", c_prev, s, 1);
  require_step_array(op, "c", c, s, 1);
  require_step_array(op, "dh", dh, s, 1);
  require_step_array(op, "dc", dc, s, 1);
  require_step_array(op, "d_gates", d_gates, s, 4);
  require_step_array(op, "dc_prev", dc_prev, s, 1);
  require_step_array(op, "dh_prev", dh_prev, s, 1);
  require_lengths(op, lengths, t, s);
  const scalar_t* gates_data = gates.data();
  const scalar_t* c_prev_data = c_prev.data();
  const scalar_t* c_data = c.data();
  const scalar_t* dh_data = dh.data();
  const scalar_t* dc_data = dc.data();
  scalar_t* d_gates_data = output_data(op, "d_gates", d_gates);
  scalar_t* dc_prev_data = output_data(op, "dc_prev", dc_prev);
  scalar_t* dh_prev_data = output_data(op, "dh_prev", dh_prev);
  const int* length_data = lengths.data();
  if (s.rows == 0) return;
  const int step = static_cast<int>(t);
  const int hidden = s.hidden;
  const int flags = hard_sigmoid ? kHardSigmoid : 0;
  py::gil_scoped_release no_gil;
  run_rows(s.rows, hidden, [=](long long n) {
    for_each_unit(hidden, step < length_data[n], flags, [=](int j, int live, int f) {
      lstm_cell_backward_element(gates_data, c_prev_data, c_data, dh_data, dc_data, d_gates_data,
                                 dc_prev_data, dh_prev_data, live, hidden, f & kHardSigmoid, n,
                                 j);
    });
  });
}

template <typename scalar_t>
void gru_reset_gate_forward(host_array<scalar_t> gx, host_array<scalar_t> gh_rz,
                            host_array<scalar_t> h_prev, host_array<scalar_t> rh,
                            long long units, long long hidden_units, long long hard_sigmoid) {
  const std::string name = entry_name<scalar_t>("gru_reset_gate_forward");
  const char* op = name.c_str();
  const step_shape s = checked_step(op, units, hidden_units, 3);
  require_flag(op, "hard_sigmoid", hard_sigmoid);
  require_step_array(op, "gx", gx, s, 3);
  require_step_array(op, "gh_rz", gh_rz, s, 2);
  require_step_array(op, "h_prev", h_prev, s, 1);
  require_step_array(op, "rh", rh, s, 1);
  scalar_t* gx_data = output_data(op, "gx", gx);
  const scalar_t* gh_data = gh_rz.data();
  const scalar_t* h_prev_data = h_prev.data();
  scalar_t* rh_data = output_data(op, "rh", rh);
  if (s.rows == 0) return;
  const int hidden = s.hidden;
  const int flags = hard_sigmoid ? kHardSigmoid : 0;
  py::gil_scoped_release no_gil;
  run_rows(s.rows, hidden, [=](long long n) {
    for_each_unit(hidden, true, flags, [=](int j, int, int f) {
      gru_reset_gate_forward_element(gx_data, gh_data, h_prev_data, rh_data, hidden,
                                     f & kHardSigmoid, n, j);
    });
  });
}

template <typename scalar_t>
void gru_cell_forward(host_array<scalar_t> gx, host_array<scalar_t> gh, host_array<scalar_t> b_hn,
                      host_array<scalar_t> h_prev, host_array<scalar_t> h,
                      host_array<int> lengths, long long t, long long units,
                      long long hidden_units, long long hard_sigmoid, long long reset_after) {
  const std::string name = entry_name<scalar_t>("gru_cell_forward");
  const char* op = name.c_str();
  const step_shape s = checked_step(op, units, hidden_units, 3);
  require_flag(op, "hard_sigmoid", hard_sigmoid);
  require_flag(op, "reset_after", reset_after);
  require_step_array(op, "gx", gx, s, 3);
  require_step_array(op, "gh", gh, s, reset_after ? 3 : 1);
  require_bias(op, b_hn, s);
  require_step_array(op, "h_prev", h_prev, s, 1);
  require_step_array(op, "h", h, s, 1);
  require_lengths(op, lengths, t, s);
  scalar_t* gx_data = output_data(op, "gx", gx);
  const scalar_t* gh_data = gh.data();
  const scalar_t* b_data = b_hn.data();
  const scalar_t* h_prev_data = h_prev.data();
  scalar_t* h_data = output_data(op, "h", h);
  const int* length_data = lengths.data();
  if (s.rows == 0) return;
  const int step = static_cast<int>(t);
  const int hidden = s.hidden;
  const int flags = gru_flags(static_cast<int>(hard_sigmoid), static_cast<int>(reset_after));
  py::gil_scoped_release no_gil;
  run_rows(s.rows, hidden, [=](long long n) {
    for_each_unit(hidden, step < length_data[n], flags, [=](int j, int live, int f) {
      gru_cell_forward_element(gx_data, gh_data, b_data, h_prev_data, h_data, live, hidden,
                               f & kHardSigmoid, (f & kResetAfter) != 0, n, j);
    });
  });
}

// With reset_after = 0, gh and d_gh are neither read nor written (rnn.cuh), so
// their sizes are not checked: any array of the dtype will do.
template <typename scalar_t>
void gru_cell_backward(host_array<scalar_t> gates, host_array<scalar_t> gh,
                       host_array<scalar_t> b_hn, host_array<scalar_t> h_prev,
                       host_array<scalar_t> dh, host_array<scalar_t> d_gx,
                       host_array<scalar_t> d_gh, host_array<scalar_t> dh_prev,
                       host_array<int> lengths, long long t, long long units,
                       long long hidden_units, long long hard_sigmoid, long long reset_after) {
  const std::string name = entry_name<scalar_t>("gru_cell_backward");
  const char* op = name.c_str();
  const step_shape s = checked_step(op, units, hidden_units, 3);
  require_flag(op, "hard_sigmoid", hard_sigmoid);
  require_flag(op, "reset_after", reset_after);
  require_step_array(op, "gates", gates, s, 3);
  if (reset_after) require_step_array(op, "gh", gh, s, 3);
  require_bias(op, b_hn, s);
  require_step_array(op, "h_prev", h_prev, s, 1);
  require_step_array(op, "dh", dh, s, 1);
  require_step_array(op, "d_gx", d_gx, s, 3);
  if (reset_after) require_step_array(op, "d_gh", d_gh, s, 3);
  require_step_array(op, "dh_prev", dh_prev, s, 1);
  require_lengths(op, lengths, t, s);
  const scalar_t* gates_data = gates.data();
  const scalar_t* gh_data = gh.data();
  const scalar_t* b_data = b_hn.data();
  const scalar_t* h_prev_data = h_prev.data();
  const scalar_t* dh_data = dh.data();
  scalar_t* d_gx_data = output_data(op, "d_gx", d_gx);
  scalar_t* d_gh_data = reset_after ? output_data(op, "d_gh", d_gh) : nullptr;
  scalar_t* dh_prev_data = output_data(op, "dh_prev", dh_prev);
  const int* length_data = lengths.data();
  if (s.rows == 0) return;
  const int step = static_cast<int>(t);
  const int hidden = s.hidden;
  const int flags = gru_flags(static_cast<int>(hard_sigmoid), static_cast<int>(reset_after));
  py::gil_scoped_release no_gil;
  run_rows(s.rows, hidden, [=](long long n) {
    for_each_unit(hidden, step < length_data[n], flags, [=](int j, int live, int f) {
      gru_cell_backward_element(gates_data, gh_data, b_data, h_prev_data, dh_data, d_gx_data,
                                d_gh_data, dh_prev_data, live, hidden, f & kHardSigmoid,
                                (f & kResetAfter) != 0, n, j);
    });
  });
}

template <typename scalar_t>
void gru_reset_gate_backward(host_array<scalar_t> gates, host_array<scalar_t> h_prev,
                             host_array<scalar_t> d_rh, host_array<scalar_t> d_gx,
                             host_array<scalar_t> dh_prev, host_array<int> lengths, long long t,
                             long long units, long long hidden_units, long long hard_sigmoid) {
  const std::string name = entry_name<scalar_t>("gru_reset_gate_backward");
  const char* op = name.c_str();
  const step_shape s = checked_step(op, units, hidden_units, 3);
  require_flag(op, "hard_sigmoid", hard_sigmoid);
  require_step_array(op, "gates", gates, s, 3);
  require_step_array(op, "h_prev", h_prev, s, 1);
  require_step_array(op, "d_rh", d_rh, s, 1);
  require_step_array(op, "d_gx", d_gx, s, 3);
  require_step_array(op, "dh_prev", dh_prev, s, 1);
  require_lengths(op, lengths, t, s);
  const scalar_t* gates_data = gates.data();
  const scalar_t* h_prev_data = h_prev.data();
  const scalar_t* d_rh_data = d_rh.data();
  scalar_t* d_gx_data = output_data(op, "d_gx", d_gx);
  scalar_t* dh_prev_data = output_data(op, "dh_prev", dh_prev);
  const int* length_data = lengths.data();
  if (s.rows == 0) return;
  const int step = static_cast<int>(t);
  const int hidden = s.hidden;
  const int flags = hard_sigmoid ? kHardSigmoid : 0;
  py::gil_scoped_release no_gil;
  run_rows(s.rows, hidden, [=](long long n) {
    for_each_unit(hidden, step < length_data[n], flags, [=](int j, int live, int f) {
      gru_reset_gate_backward_element(gates_data, h_prev_data, d_rh_data, d_gx_data,
                                      dh_prev_data, live, hidden, f & kHardSigmoid, n, j);
    });
  });
}

// The arguments after the arrays: t (steps that have lengths), units, hidden
// and the flags, named as in csrc/cuda/rnn.cu. Python ints; each is
// range-checked by the entry point, so an out-of-range value is a ValueError
// naming it rather than a failed conversion.
template <typename scalar_t>
void bind_dtype(py::module_& m, const char* suffix) {
  const std::string s = std::string("_") + suffix;
  m.def(("lstm_cell_forward" + s).c_str(), &lstm_cell_forward<scalar_t>,
        py::arg("gx").noconvert(), py::arg("gh").noconvert(), py::arg("c_prev").noconvert(),
        py::arg("h_prev").noconvert(), py::arg("c").noconvert(), py::arg("h").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("units"), py::arg("hidden"),
        py::arg("hard_sigmoid"),
        "One LSTM step over units = N * H hidden units: gx (N, 4H) pre-activations become "
        "activations; writes c, h (N, H). gh (N, 4H); c_prev, h_prev (N, H); lengths (N,) "
        "int32: row n takes step t when t < lengths[n].");
  m.def(("lstm_cell_backward" + s).c_str(), &lstm_cell_backward<scalar_t>,
        py::arg("gates").noconvert(), py::arg("c_prev").noconvert(), py::arg("c").noconvert(),
        py::arg("dh").noconvert(), py::arg("dc").noconvert(), py::arg("d_gates").noconvert(),
        py::arg("dc_prev").noconvert(), py::arg("dh_prev").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("units"), py::arg("hidden"),
        py::arg("hard_sigmoid"),
        "Backward of one LSTM step from its saved gate activations: gates, d_gates (N, 4H); "
        "the others (N, H); lengths (N,) int32.");
  m.def(("gru_reset_gate_forward" + s).c_str(), &gru_reset_gate_forward<scalar_t>,
        py::arg("gx").noconvert(), py::arg("gh_rz").noconvert(), py::arg("h_prev").noconvert(),
        py::arg("rh").noconvert(), py::arg("units"), py::arg("hidden"),
        py::arg("hard_sigmoid"),
        "GRU reset_after=0, phase 1: activate r, z in gx (N, 3H); rh = r * h_prev (N, H); "
        "gh_rz (N, 2H).");
  m.def(("gru_cell_forward" + s).c_str(), &gru_cell_forward<scalar_t>,
        py::arg("gx").noconvert(), py::arg("gh").noconvert(), py::arg("b_hn").noconvert(),
        py::arg("h_prev").noconvert(), py::arg("h").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("units"), py::arg("hidden"),
        py::arg("hard_sigmoid"), py::arg("reset_after"),
        "One GRU step; gx (N, 3H) becomes the activations r, z, n. gh (N, 3H) when "
        "reset_after, else (N, H); b_hn (H,); h_prev, h (N, H); lengths (N,) int32.");
  m.def(("gru_cell_backward" + s).c_str(), &gru_cell_backward<scalar_t>,
        py::arg("gates").noconvert(), py::arg("gh").noconvert(), py::arg("b_hn").noconvert(),
        py::arg("h_prev").noconvert(), py::arg("dh").noconvert(), py::arg("d_gx").noconvert(),
        py::arg("d_gh").noconvert(), py::arg("dh_prev").noconvert(),
        py::arg("lengths").noconvert(), py::arg("t"), py::arg("units"), py::arg("hidden"),
        py::arg("hard_sigmoid"), py::arg("reset_after"),
        "Backward of one GRU step from its saved activations: gates, d_gx (N, 3H); gh, d_gh "
        "(N, 3H) when reset_after, else unused (any size); b_hn (H,); the others (N, H).");
  m.def(("gru_reset_gate_backward" + s).c_str(), &gru_reset_gate_backward<scalar_t>,
        py::arg("gates").noconvert(), py::arg("h_prev").noconvert(),
        py::arg("d_rh").noconvert(), py::arg("d_gx").noconvert(),
        py::arg("dh_prev").noconvert(), py::arg("lengths").noconvert(), py::arg("t"),
        py::arg("units"), py::arg("hidden"), py::arg("hard_sigmoid"),
        "GRU reset_after=0, phase 2 of backward: the r block of d_gx (N, 3H); adds d_rh * r "
        "to dh_prev (N, H).");
}

}  // namespace

void register_rnn(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
