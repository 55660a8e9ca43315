// Host launcher of csrc/nnlite/ctc.cuh: the entry points of csrc/cuda/ctc.cu,
// with the same arguments in the same order.
//
// ctc_alpha / ctc_beta: one worker per sequence (tid = 0, nthreads = 1), the
// same steps as the CUDA block runs, OpenMP across the batch.
// ctc_grad: OpenMP over the (t, n) frames. Each frame's class occupancies are
// accumulated in the frame's gradient row, in increasing s: the order in which
// ctc_class_occupancy gathers them on the GPU, so the same log-adds happen in
// the same order on both devices (the host skips the -inf terms, which leave a
// log-sum-exp bit-identical).
//
// nnlite._C is importable, so every argument is checked here (csrc/host/checks.h)
// before a loop runs: the integers against their ranges, each buffer's element
// count against the integers, and then the lengths and labels it would index with.
#include "nnlite/ctc.cuh"

#include <initializer_list>
#include <string>
#include <utility>

#include "host/checks.h"
#include "host/families.h"

namespace py = pybind11;

namespace {

// 2 T + 1 and 2 L_max + 1 must fit the int arithmetic of ctc.cuh.
const long long kMaxExtent = (INT_MAX - 1) / 2;

// Below this many (frame, extended position) cells a batch runs serially: the
// work (~5 us per 1000 cells) is then smaller than what a parallel region can
// cost. A CRNN batch (32 x 31 x ~21 = 21k cells) still goes parallel.
const long long kMinParallelCells = 1 << 14;

struct ctc_dims {
  int batch, classes, max_time, max_length, blank;
  long long ext_stride;  // 2 max_length + 1
};

template <typename scalar_t>
const char* dtype_suffix();
template <>
const char* dtype_suffix<float>() { return "f32"; }
template <>
const char* dtype_suffix<double>() { return "f64"; }

template <typename scalar_t>
std::string entry_name(const char* family_op) {
  return std::string(family_op) + "_" + dtype_suffix<scalar_t>();
}

std::string dims_text(const char* names, long long a, long long b, long long c = -1) {
  std::string text = std::string(names) + " = (" + std::to_string(a) + ", " + std::to_string(b);
  if (c >= 0) text += ", " + std::to_string(c);
  return text + ")";
}

// "name[n]" or "name[n][i]", for messages.
std::string indexed(const char* name, int n, int i = -1) {
  std::string text = std::string(name) + "[" + std::to_string(n) + "]";
  return i < 0 ? text : text + "[" + std::to_string(i) + "]";
}

// The scalars, the four inputs every entry point shares, and the values it
// indexes with: lengths within the padded extents, labels within the classes.
ctc_dims check_problem(const char* op, const py::array& log_probs, const py::array& targets,
                       const py::array& input_lengths, const py::array& target_lengths,
                       int batch, int classes, int max_time, int max_length, int blank) {
  require_count(op, "batch", batch);
  require_positive_int(op, "classes", classes);
  require_range(op, "max_time", max_time, 0, kMaxExtent);
  require_range(op, "max_length", max_length, 0, kMaxExtent);
  require_range(op, "blank", blank, 0, (long long)classes - 1);
  const long long frame_size = checked_product(op, "batch * classes", batch, classes);
  require_elements(op, "log_probs", log_probs,
                   checked_product(op, "max_time * batch * classes", max_time, frame_size),
                   dims_text("(max_time, batch, classes)", max_time, batch, classes).c_str());
  require_elements(op, "targets", targets, checked_product(op, "batch * max_length", batch,
                                                           max_length),
                   dims_text("(batch, max_length)", batch, max_length).c_str());
  const std::string per_sample = "batch = " + std::to_string(batch);
  require_elements(op, "input_lengths", input_lengths, batch, per_sample.c_str());
  require_elements(op, "target_lengths", target_lengths, batch, per_sample.c_str());

  const int* in_len = static_cast<const int*>(input_lengths.data());
  const int* tgt_len = static_cast<const int*>(target_lengths.data());
  const int* tgt = static_cast<const int*>(targets.data());
  for (int n = 0; n < batch; ++n) {
    if (in_len[n] < 0 || in_len[n] > max_time) {
      require_range(op, indexed("input_lengths", n).c_str(), in_len[n], 0, max_time);
    }
    if (tgt_len[n] < 0 || tgt_len[n] > max_length) {
      require_range(op, indexed("target_lengths", n).c_str(), tgt_len[n], 0, max_length);
    }
    const int* labels = tgt + (long long)n * max_length;
    for (int i = 0; i < tgt_len[n]; ++i) {
      if (labels[i] >= 0 && labels[i] < classes && labels[i] != blank) continue;
      const std::string name = indexed("targets", n, i);
      require_range(op, name.c_str(), labels[i], 0, (long long)classes - 1);
      // In range, so it is the blank: the GPU gather would not count it as a
      // label, and PyTorch's recursion would let paths skip onto it.
      argument_error(op, name + " = " + std::to_string(labels[i]) + " = blank; expected a label "
                             "other than the blank (PyTorch documents a blank target as "
                             "invalid, and nnlite.functional.ctc_loss refuses it)");
    }
  }
  const ctc_dims d = {batch, classes, max_time, max_length, blank, 2LL * max_length + 1};
  return d;
}

// alpha or beta: (batch, max_time, 2 max_length + 1).
void check_workspace(const char* op, const char* name, const py::array& workspace,
                     const ctc_dims& d) {
  const long long rows = checked_product(op, "batch * max_time", d.batch, d.max_time);
  require_elements(op, name, workspace,
                   checked_product(op, "batch * max_time * (2 max_length + 1)", rows,
                                   d.ext_stride),
                   dims_text("(batch, max_time, 2 max_length + 1)", d.batch, d.max_time,
                             d.ext_stride).c_str());
}

void check_per_sample(const char* op, const char* name, const py::array& a, const ctc_dims& d) {
  require_elements(op, name, a, d.batch, ("batch = " + std::to_string(d.batch)).c_str());
}

// Each output writable and apart from every other argument.
typedef std::initializer_list<std::pair<const char*, py::array>> named_arrays;

void check_outputs(const char* op, named_arrays outputs, named_arrays inputs) {
  for (const auto& out : outputs) {
    require_writable(op, out.first, out.second);
    for (const auto& in : inputs) require_disjoint(op, out.first, out.second, in.first, in.second);
    for (const auto& other : outputs) {
      if (&other != &out) require_disjoint(op, out.first, out.second, other.first, other.second);
    }
  }
}

long long recursion_cells(const int* input_lengths, const int* target_lengths,
                          const ctc_dims& d) {
  long long cells = 0;
  for (int n = 0; n < d.batch; ++n)
    cells += (long long)input_lengths[n] * (2 * target_lengths[n] + 1);
  return cells;
}

template <typename scalar_t>
void alpha_one_sample(const scalar_t* log_probs, const int* targets, const int* input_lengths,
                      const int* target_lengths, scalar_t* alpha, scalar_t* nll,
                      const ctc_dims& d, int n) {
  const int frames = input_lengths[n];
  const int ext_len = 2 * target_lengths[n] + 1;
  const int* tgt = targets + (long long)n * d.max_length;
  scalar_t* alpha_n = alpha + (long long)n * d.max_time * d.ext_stride;
  const long long frame_stride = (long long)d.batch * d.classes;
  const scalar_t* lp = log_probs + (long long)n * d.classes;
  if (frames > 0) {
    ctc_alpha_init(lp, tgt, ext_len, d.blank, alpha_n, 0, 1);
    for (int t = 1; t < frames; ++t) {
      ctc_alpha_step(lp + t * frame_stride, tgt, ext_len, d.blank, frames - t,
                     alpha_n + (t - 1) * d.ext_stride, alpha_n + t * d.ext_stride, 0, 1);
    }
  }
  nll[n] = ctc_neg_log_likelihood(alpha_n + (frames > 0 ? frames - 1 : 0) * d.ext_stride,
                                  ext_len, frames);
}

template <typename scalar_t>
void beta_one_sample(const scalar_t* log_probs, const int* targets, const int* input_lengths,
                     const int* target_lengths, scalar_t* beta, const ctc_dims& d, int n) {
  const int frames = input_lengths[n];
  if (frames == 0) return;
  const int ext_len = 2 * target_lengths[n] + 1;
  const int* tgt = targets + (long long)n * d.max_length;
  scalar_t* beta_n = beta + (long long)n * d.max_time * d.ext_stride;
  const long long frame_stride = (long long)d.batch * d.classes;
  const scalar_t* lp = log_probs + (long long)n * d.classes;
  ctc_beta_init(lp + (frames - 1) * frame_stride, tgt, ext_len, d.blank,
                beta_n + (frames - 1) * d.ext_stride, 0, 1);
  for (int t = frames - 2; t >= 0; --t) {
    ctc_beta_step(lp + t * frame_stride, tgt, ext_len, d.blank, t, frames - t,
                  beta_n + (t + 1) * d.ext_stride, beta_n + t * d.ext_stride, 0, 1);
  }
}

// The gradient row (t, n) of (T, N, C) for frame = n * max_time + t: sample by
// sample, so that the rows of alpha and beta are read in order.
template <typename scalar_t>
void grad_one_frame(const scalar_t* log_probs, const int* targets, const int* input_lengths,
                    const int* target_lengths, const scalar_t* alpha, const scalar_t* beta,
                    const scalar_t* nll, const scalar_t* grad_scale, scalar_t* grad,
                    const ctc_dims& d, long long frame) {
  const int n = (int)(frame / d.max_time);
  const int t = (int)(frame % d.max_time);
  const long long plane = (long long)t * d.batch + n;
  scalar_t* grad_t = grad + plane * d.classes;
  const scalar_t sample_nll = nll[n];
  // Padded frames and samples without a valid path (nll = +inf) get exactly 0.
  if (t >= input_lengths[n] || !ctc_has_gradient(sample_nll)) {
    for (int c = 0; c < d.classes; ++c) grad_t[c] = scalar_t(0);
    return;
  }
  const int* tgt = targets + (long long)n * d.max_length;
  const long long row = frame * d.ext_stride;
  const scalar_t* alpha_t = alpha + row;
  const scalar_t* beta_t = beta + row;
  int first, last;
  ctc_frame_window(2 * target_lengths[n] + 1, input_lengths[n], t, &first, &last);
  // grad_t holds the occupancies first, then the gradient computed from them.
  for (int c = 0; c < d.classes; ++c) grad_t[c] = ctc_neg_inf<scalar_t>();
  for (int s = first; s <= last; ++s) {
    const scalar_t through = alpha_t[s] + beta_t[s];
    if (through < nnl_limits<scalar_t>::lowest()) continue;  // -inf: leaves the sum as is
    scalar_t& slot = grad_t[ctc_extended_label(tgt, s, d.blank)];
    slot = nnl_log_add_exp(slot, through);
  }
  const scalar_t* lp_t = log_probs + plane * d.classes;
  for (int c = 0; c < d.classes; ++c) {
    grad_t[c] = ctc_grad_value(grad_t[c], lp_t[c], sample_nll, grad_scale[n]);
  }
}

template <typename scalar_t>
void ctc_alpha(host_array<scalar_t> log_probs, host_array<int> targets,
               host_array<int> input_lengths, host_array<int> target_lengths,
               host_array<scalar_t> alpha, host_array<scalar_t> nll, int batch, int classes,
               int max_time, int max_length, int blank) {
  const std::string name = entry_name<scalar_t>("ctc_alpha");
  const char* op = name.c_str();
  const ctc_dims d = check_problem(op, log_probs, targets, input_lengths, target_lengths, batch,
                                   classes, max_time, max_length, blank);
  check_workspace(op, "alpha", alpha, d);
  check_per_sample(op, "nll", nll, d);
  check_outputs(op, {{"alpha", alpha}, {"nll", nll}},
                {{"log_probs", log_probs}, {"targets", targets},
                 {"input_lengths", input_lengths}, {"target_lengths", target_lengths}});
  const scalar_t* lp = log_probs.data();
  const int* tgt = targets.data();
  const int* in_len = input_lengths.data();
  const int* tgt_len = target_lengths.data();
  scalar_t* alpha_data = alpha.mutable_data();
  scalar_t* nll_data = nll.mutable_data();
  const bool parallel = recursion_cells(in_len, tgt_len, d) >= kMinParallelCells;
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int n = 0; n < d.batch; ++n) {
    alpha_one_sample(lp, tgt, in_len, tgt_len, alpha_data, nll_data, d, n);
  }
}

template <typename scalar_t>
void ctc_beta(host_array<scalar_t> log_probs, host_array<int> targets,
              host_array<int> input_lengths, host_array<int> target_lengths,
              host_array<scalar_t> beta, int batch, int classes, int max_time, int max_length,
              int blank) {
  const std::string name = entry_name<scalar_t>("ctc_beta");
  const char* op = name.c_str();
  const ctc_dims d = check_problem(op, log_probs, targets, input_lengths, target_lengths, batch,
                                   classes, max_time, max_length, blank);
  check_workspace(op, "beta", beta, d);
  check_outputs(op, {{"beta", beta}},
                {{"log_probs", log_probs}, {"targets", targets},
                 {"input_lengths", input_lengths}, {"target_lengths", target_lengths}});
  const scalar_t* lp = log_probs.data();
  const int* tgt = targets.data();
  const int* in_len = input_lengths.data();
  const int* tgt_len = target_lengths.data();
  scalar_t* beta_data = beta.mutable_data();
  const bool parallel = recursion_cells(in_len, tgt_len, d) >= kMinParallelCells;
  py::gil_scoped_release no_gil;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int n = 0; n < d.batch; ++n) {
    beta_one_sample(lp, tgt, in_len, tgt_len, beta_data, d, n);
  }
}

template <typename scalar_t>
void ctc_grad(host_array<scalar_t> log_probs, host_array<int> targets,
              host_array<int> input_lengths, host_array<int> target_lengths,
              host_array<scalar_t> alpha, host_array<scalar_t> beta, host_array<scalar_t> nll,
              host_array<scalar_t> grad_scale, host_array<scalar_t> grad, int batch,
              int classes, int max_time, int max_length, int blank) {
  const std::string name = entry_name<scalar_t>("ctc_grad");
  const char* op = name.c_str();
  const ctc_dims d = check_problem(op, log_probs, targets, input_lengths, target_lengths, batch,
                                   classes, max_time, max_length, blank);
  check_workspace(op, "alpha", alpha, d);
  check_workspace(op, "beta", beta, d);
  check_per_sample(op, "nll", nll, d);
  check_per_sample(op, "grad_scale", grad_scale, d);
  require_elements(op, "grad", grad, (long long)log_probs.size(),
                   dims_text("(max_time, batch, classes)", max_time, batch, classes).c_str());
  check_outputs(op, {{"grad", grad}},
                {{"log_probs", log_probs}, {"targets", targets},
                 {"input_lengths", input_lengths}, {"target_lengths", target_lengths},
                 {"alpha", alpha}, {"beta", beta}, {"nll", nll}, {"grad_scale", grad_scale}});
  const scalar_t* lp = log_probs.data();
  const int* tgt = targets.data();
  const int* in_len = input_lengths.data();
  const int* tgt_len = target_lengths.data();
  const scalar_t* alpha_data = alpha.data();
  const scalar_t* beta_data = beta.data();
  const scalar_t* nll_data = nll.data();
  const scalar_t* scale = grad_scale.data();
  scalar_t* grad_data = grad.mutable_data();
  const long long frames = (long long)d.batch * d.max_time;
  py::gil_scoped_release no_gil;
  for_each_plane(frames, frames * (d.classes + d.ext_stride), [&](long long frame) {
    grad_one_frame(lp, tgt, in_len, tgt_len, alpha_data, beta_data, nll_data, scale, grad_data,
                   d, frame);
  });
}

template <typename scalar_t>
void bind_dtype(py::module_& m) {
  m.def(entry_name<scalar_t>("ctc_alpha").c_str(), &ctc_alpha<scalar_t>,
        py::arg("log_probs").noconvert(), py::arg("targets").noconvert(),
        py::arg("input_lengths").noconvert(), py::arg("target_lengths").noconvert(),
        py::arg("alpha").noconvert(), py::arg("nll").noconvert(), py::arg("batch"),
        py::arg("classes"), py::arg("max_time"), py::arg("max_length"), py::arg("blank"),
        "CTC forward: log-space alpha (batch, max_time, 2 max_length + 1) and -log p(target) "
        "per sample into nll (batch,); log_probs (max_time, batch, classes), targets padded "
        "(batch, max_length). Only frames t < input_length, positions s < 2 L + 1 are written.");
  m.def(entry_name<scalar_t>("ctc_beta").c_str(), &ctc_beta<scalar_t>,
        py::arg("log_probs").noconvert(), py::arg("targets").noconvert(),
        py::arg("input_lengths").noconvert(), py::arg("target_lengths").noconvert(),
        py::arg("beta").noconvert(), py::arg("batch"), py::arg("classes"), py::arg("max_time"),
        py::arg("max_length"), py::arg("blank"),
        "CTC backward recursion: log-space beta (batch, max_time, 2 max_length + 1); only "
        "frames t < input_length, positions s < 2 L + 1 are written.");
  m.def(entry_name<scalar_t>("ctc_grad").c_str(), &ctc_grad<scalar_t>,
        py::arg("log_probs").noconvert(), py::arg("targets").noconvert(),
        py::arg("input_lengths").noconvert(), py::arg("target_lengths").noconvert(),
        py::arg("alpha").noconvert(), py::arg("beta").noconvert(), py::arg("nll").noconvert(),
        py::arg("grad_scale").noconvert(), py::arg("grad").noconvert(), py::arg("batch"),
        py::arg("classes"), py::arg("max_time"), py::arg("max_length"), py::arg("blank"),
        "CTC gradient: grad_scale[n] * d(-log p_n)/d log_probs into every element of grad "
        "(max_time, batch, classes), gathered from alpha and beta; 0 on padded frames and "
        "for samples with nll = +inf.");
}

}  // namespace

void register_ctc(py::module_& m) {
  bind_dtype<float>(m);
  bind_dtype<double>(m);
}
