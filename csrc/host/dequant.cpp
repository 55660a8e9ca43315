// Host launcher of csrc/nnlite/dequant.cuh: the same steps and arguments as
// csrc/cuda/dequant.cu, one worker per weight row (int8) or per block of
// elements (binary16), OpenMP across them.
#include "nnlite/dequant.cuh"

#include "host/checks.h"
#include "host/families.h"

namespace py = pybind11;

namespace {

// The binary16 decode is split into blocks of this many elements, one per worker.
const long long kBinary16Block = 1 << 14;

template <typename scalar_t>
void dequant_int8(host_array<signed char> q, host_array<scalar_t> scale, host_array<scalar_t> w,
                  long long rows, long long cols) {
  const char* op = "dequant_int8";
  // rows is a CUDA grid dimension (one block per row): at most 2^31 - 1.
  require_count(op, "rows", rows);
  require_count(op, "cols", cols);
  const long long size = checked_product(op, "rows * cols", rows, cols);
  require_elements(op, "q", q, size, "rows * cols");
  require_elements(op, "scale", scale, rows, "rows");
  require_elements(op, "w", w, size, "rows * cols");
  require_writable(op, "w", w);
  require_disjoint(op, "w", w, "q", q);
  require_disjoint(op, "w", w, "scale", scale);
  const signed char* q_data = q.data();
  const scalar_t* scale_data = scale.data();
  scalar_t* w_data = w.mutable_data();
  const int width = (int)cols;
  py::gil_scoped_release no_gil;
  for_each_plane(rows, size, [&](long long row) {
    const long long offset = row * width;
    dequant_int8_row(q_data + offset, scale_data[row], w_data + offset, width, 0, 1);
  });
}

template <typename scalar_t>
void dequant_binary16(host_array<unsigned short> bits, host_array<scalar_t> w, long long count) {
  const char* op = "dequant_binary16";
  require_range(op, "count", count, 0, LLONG_MAX);
  require_elements(op, "bits", bits, count, "count");
  require_elements(op, "w", w, count, "count");
  require_writable(op, "w", w);
  require_disjoint(op, "w", w, "bits", bits);
  const unsigned short* bits_data = bits.data();
  scalar_t* w_data = w.mutable_data();
  const long long blocks = (count + kBinary16Block - 1) / kBinary16Block;
  py::gil_scoped_release no_gil;
  for_each_plane(blocks, count, [&](long long block) {
    const long long start = block * kBinary16Block;
    const long long stop = start + kBinary16Block < count ? start + kBinary16Block : count;
    for (long long i = start; i < stop; ++i) {
      w_data[i] = dequant_binary16_element<scalar_t>(bits_data, i);
    }
  });
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("dequant_int8_" + suffix).c_str(), &dequant_int8<scalar_t>, py::arg("q").noconvert(),
        py::arg("scale").noconvert(), py::arg("w").noconvert(), py::arg("rows"),
        py::arg("cols"),
        "w (rows, cols) = int8 q (rows, cols) times the per-row scale (rows,).");
  m.def(("dequant_binary16_" + suffix).c_str(), &dequant_binary16<scalar_t>,
        py::arg("bits").noconvert(), py::arg("w").noconvert(), py::arg("count"),
        "w (count,) = the values of the IEEE binary16 bit patterns bits (count,), exactly.");
}

}  // namespace

void register_dequant(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
