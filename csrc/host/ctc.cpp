// Host launcher of csrc/nnlite/ctc.cuh: the same steps as csrc/cuda/ctc.cu with
// one worker per sequence (tid = 0, nthreads = 1), OpenMP across the batch.
//
// The backward pass is fused per sample: beta goes to a per-sample scratch
// buffer, then each frame's class occupancies are accumulated in increasing s,
// the order in which ctc_class_occupancy gathers them on the GPU, so the same
// log-adds happen in the same order on both devices.
#include "nnlite/ctc.cuh"

#include <vector>

#include "host/arrays.h"
#include "host/families.h"

namespace py = pybind11;

namespace {

struct ctc_dims {
  int batch, classes, max_time, max_length;
};

// Below this many (frame, extended position) cells a batch runs serially: the
// work (~5 us per 1000 cells) is then smaller than what a parallel region can
// cost. A CRNN batch (32 x 31 x ~21 = 21k cells) still goes parallel.
const long long kMinParallelCells = 1 << 14;

long long recursion_cells(const int* input_lengths, const int* target_lengths,
                          const ctc_dims& d) {
  long long cells = 0;
  for (int n = 0; n < d.batch; ++n)
    cells += (long long)input_lengths[n] * (2 * target_lengths[n] + 1);
  return cells;
}

void require_ctc_shapes(const char* op, const py::array& log_probs, const py::array& targets,
                        const py::array& input_lengths, const py::array& target_lengths,
                        const py::array& workspace) {
  if (log_probs.ndim() != 3) {
    throw std::invalid_argument(std::string(op) + ": log_probs has shape " +
                                shape_string(log_probs) + "; expected (T, N, C)");
  }
  const py::ssize_t batch = log_probs.shape(1);
  if (targets.ndim() != 2 || targets.shape(0) != batch || input_lengths.ndim() != 1 ||
      input_lengths.shape(0) != batch || target_lengths.ndim() != 1 ||
      target_lengths.shape(0) != batch) {
    throw std::invalid_argument(std::string(op) + ": targets " + shape_string(targets) +
                                ", input_lengths " + shape_string(input_lengths) +
                                ", target_lengths " + shape_string(target_lengths) +
                                " do not match log_probs " + shape_string(log_probs));
  }
  if (workspace.ndim() != 3 || workspace.shape(0) != batch ||
      workspace.shape(1) != log_probs.shape(0) || workspace.shape(2) != 2 * targets.shape(1) + 1) {
    throw std::invalid_argument(std::string(op) + ": alpha has shape " +
                                shape_string(workspace) + "; expected (N, T, 2 L_max + 1)");
  }
}

// Lengths are validated in Python (nnlite/functional/ctc.py); these bounds
// keep a call around the facade from reading out of bounds.
void require_lengths(const char* op, const int* input_lengths, const int* target_lengths,
                     const ctc_dims& d) {
  for (int n = 0; n < d.batch; ++n) {
    if (input_lengths[n] < 0 || input_lengths[n] > d.max_time || target_lengths[n] < 0 ||
        target_lengths[n] > d.max_length) {
      throw std::invalid_argument(std::string(op) + ": sample " + std::to_string(n) +
                                  " has input length " + std::to_string(input_lengths[n]) +
                                  " and target length " + std::to_string(target_lengths[n]) +
                                  "; expected within [0, T] and [0, L_max]");
    }
  }
}

void require_labels(const char* op, const int* targets, const int* target_lengths,
                    const ctc_dims& d) {
  for (int n = 0; n < d.batch; ++n) {
    for (int i = 0; i < target_lengths[n]; ++i) {
      const int label = targets[(long long)n * d.max_length + i];
      if (label < 0 || label >= d.classes) {
        throw std::invalid_argument(std::string(op) + ": sample " + std::to_string(n) +
                                    " has label " + std::to_string(label) +
                                    "; expected within [0, " + std::to_string(d.classes) + ")");
      }
    }
  }
}

template <typename scalar_t>
void alpha_one_sample(const scalar_t* log_probs, const int* targets, const int* input_lengths,
                      const int* target_lengths, scalar_t* alpha, scalar_t* nll,
                      const ctc_dims& d, int blank, int n) {
  const int frames = input_lengths[n];
  const int ext_len = 2 * target_lengths[n] + 1;
  const long long ext_stride = 2 * d.max_length + 1;
  const int* tgt = targets + (long long)n * d.max_length;
  scalar_t* alpha_n = alpha + (long long)n * d.max_time * ext_stride;
  const long long frame_stride = (long long)d.batch * d.classes;
  const scalar_t* lp = log_probs + (long long)n * d.classes;
  if (frames > 0) {
    ctc_alpha_init(lp, tgt, ext_len, blank, alpha_n, 0, 1);
    for (int t = 1; t < frames; ++t) {
      ctc_alpha_step(lp + t * frame_stride, tgt, ext_len, blank, frames - t,
                     alpha_n + (t - 1) * ext_stride, alpha_n + t * ext_stride, 0, 1);
    }
  }
  nll[n] = ctc_neg_log_likelihood(alpha_n + (frames > 0 ? frames - 1 : 0) * ext_stride, ext_len,
                                  frames);
}

template <typename scalar_t>
void grad_one_sample(const scalar_t* log_probs, const int* targets, const int* input_lengths,
                     const int* target_lengths, const scalar_t* alpha, const scalar_t* nll,
                     const scalar_t* grad_scale, scalar_t* grad, const ctc_dims& d, int blank,
                     int n, std::vector<scalar_t>& beta, std::vector<scalar_t>& occupancy) {
  const int frames = input_lengths[n];
  const scalar_t sample_nll = nll[n];
  // grad is zero-filled by the caller: padded frames and samples without a
  // valid path (nll = +inf) keep exactly 0, as on the GPU.
  if (frames == 0 || !ctc_has_gradient(sample_nll)) return;
  const int length = target_lengths[n];
  const int ext_len = 2 * length + 1;
  const long long ext_stride = 2 * d.max_length + 1;
  const int* tgt = targets + (long long)n * d.max_length;
  const scalar_t* alpha_n = alpha + (long long)n * d.max_time * ext_stride;
  const long long frame_stride = (long long)d.batch * d.classes;
  const scalar_t* lp = log_probs + (long long)n * d.classes;
  scalar_t* grad_n = grad + (long long)n * d.classes;

  beta.resize((size_t)frames * ext_len);
  ctc_beta_init(lp + (frames - 1) * frame_stride, tgt, ext_len, blank,
                &beta[(size_t)(frames - 1) * ext_len], 0, 1);
  for (int t = frames - 2; t >= 0; --t) {
    ctc_beta_step(lp + t * frame_stride, tgt, ext_len, blank, t, frames - t,
                  &beta[(size_t)(t + 1) * ext_len], &beta[(size_t)t * ext_len], 0, 1);
  }

  occupancy.resize(d.classes);
  for (int t = 0; t < frames; ++t) {
    const scalar_t* alpha_t = alpha_n + t * ext_stride;
    const scalar_t* beta_t = &beta[(size_t)t * ext_len];
    for (int c = 0; c < d.classes; ++c) occupancy[c] = ctc_neg_inf<scalar_t>();
    // Adding an impossible (-inf) term leaves a log-sum bit-identical, so the
    // frame's unreachable positions are skipped without changing the result.
    int first, last;
    ctc_frame_window(ext_len, frames, t, &first, &last);
    for (int s = first; s <= last; ++s) {
      const scalar_t through = alpha_t[s] + beta_t[s];
      if (through < nnl_limits<scalar_t>::lowest()) continue;
      scalar_t& slot = occupancy[ctc_extended_label(tgt, s, blank)];
      slot = nnl_log_add_exp(slot, through);
    }
    const scalar_t* lp_t = lp + t * frame_stride;
    scalar_t* grad_t = grad_n + t * frame_stride;
    for (int c = 0; c < d.classes; ++c) {
      grad_t[c] = ctc_grad_value(occupancy[c], lp_t[c], sample_nll, grad_scale[n]);
    }
  }
}

template <typename scalar_t>
void ctc_alpha(host_array<scalar_t> log_probs, host_array<int> targets,
               host_array<int> input_lengths, host_array<int> target_lengths,
               host_array<scalar_t> alpha, host_array<scalar_t> nll, int blank) {
  require_ctc_shapes("ctc_alpha", log_probs, targets, input_lengths, target_lengths, alpha);
  const ctc_dims d = {(int)log_probs.shape(1), (int)log_probs.shape(2),
                      (int)log_probs.shape(0), (int)targets.shape(1)};
  require_same_shape("ctc_alpha", "nll", nll, "input_lengths", input_lengths);
  require_lengths("ctc_alpha", input_lengths.data(), target_lengths.data(), d);
  require_labels("ctc_alpha", targets.data(), target_lengths.data(), d);
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
    alpha_one_sample(lp, tgt, in_len, tgt_len, alpha_data, nll_data, d, blank, n);
  }
}

template <typename scalar_t>
void ctc_backward(host_array<scalar_t> log_probs, host_array<int> targets,
                  host_array<int> input_lengths, host_array<int> target_lengths,
                  host_array<scalar_t> alpha, host_array<scalar_t> nll,
                  host_array<scalar_t> grad_scale, host_array<scalar_t> grad, int blank) {
  require_ctc_shapes("ctc_backward", log_probs, targets, input_lengths, target_lengths, alpha);
  require_same_shape("ctc_backward", "nll", nll, "input_lengths", input_lengths);
  require_same_shape("ctc_backward", "grad_scale", grad_scale, "input_lengths", input_lengths);
  require_same_shape("ctc_backward", "grad", grad, "log_probs", log_probs);
  const ctc_dims d = {(int)log_probs.shape(1), (int)log_probs.shape(2),
                      (int)log_probs.shape(0), (int)targets.shape(1)};
  require_lengths("ctc_backward", input_lengths.data(), target_lengths.data(), d);
  require_labels("ctc_backward", targets.data(), target_lengths.data(), d);
  const scalar_t* lp = log_probs.data();
  const int* tgt = targets.data();
  const int* in_len = input_lengths.data();
  const int* tgt_len = target_lengths.data();
  const scalar_t* alpha_data = alpha.data();
  const scalar_t* nll_data = nll.data();
  const scalar_t* scale = grad_scale.data();
  scalar_t* grad_data = grad.mutable_data();
  // The backward pass does about three times the forward's work per cell.
  const bool parallel = 3 * recursion_cells(in_len, tgt_len, d) >= kMinParallelCells;
  py::gil_scoped_release no_gil;
#pragma omp parallel if (parallel)
  {
    std::vector<scalar_t> beta, occupancy;
#pragma omp for schedule(dynamic, 1)
    for (int n = 0; n < d.batch; ++n) {
      grad_one_sample(lp, tgt, in_len, tgt_len, alpha_data, nll_data, scale, grad_data, d,
                      blank, n, beta, occupancy);
    }
  }
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const char* suffix) {
  m.def((std::string("ctc_alpha_") + suffix).c_str(), &ctc_alpha<scalar_t>,
        py::arg("log_probs").noconvert(), py::arg("targets").noconvert(),
        py::arg("input_lengths").noconvert(), py::arg("target_lengths").noconvert(),
        py::arg("alpha").noconvert(), py::arg("nll").noconvert(), py::arg("blank"),
        "CTC forward: log-space alpha (N, T, 2 L_max + 1) and -log p(target) per sample.");
  m.def((std::string("ctc_backward_") + suffix).c_str(), &ctc_backward<scalar_t>,
        py::arg("log_probs").noconvert(), py::arg("targets").noconvert(),
        py::arg("input_lengths").noconvert(), py::arg("target_lengths").noconvert(),
        py::arg("alpha").noconvert(), py::arg("nll").noconvert(),
        py::arg("grad_scale").noconvert(), py::arg("grad").noconvert(), py::arg("blank"),
        "CTC backward: grad_scale[n] * d(-log p)/d log_probs into a zero-filled grad "
        "(T, N, C), via beta.");
}

}  // namespace

void register_ctc(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
