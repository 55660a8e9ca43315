// Host launcher of csrc/nnlite/activation.cuh: the same element functions and
// arguments as csrc/cuda/activation.cu, the elements split into fixed blocks,
// OpenMP across the blocks, each block's loop vectorised (an AVX2 copy beside
// the baseline one, host/vectorize.h).
#include "nnlite/activation.cuh"

#include "host/checks.h"
#include "host/families.h"
#include "host/vectorize.h"

namespace py = pybind11;

namespace {

// One worker's share: 64 Ki elements (256 KiB of float32), large enough that
// scheduling costs nothing beside the loop, small enough that a 13M-element
// activation splits evenly across a few threads.
const long long kBlockElements = 1 << 16;

// The outputs are checked disjoint from the inputs, so the pointers may be
// declared unaliased: the loops vectorise without a run-time overlap test.
template <typename scalar_t>
NNL_HOST_VECTOR_CLONES void relu_forward_range(const scalar_t* __restrict__ x,
                                               scalar_t* __restrict__ y,
                                               unsigned char* __restrict__ mask, long long begin,
                                               long long end) {
  for (long long i = begin; i < end; ++i) relu_forward_element(x, y, mask, i);
}

template <typename scalar_t>
NNL_HOST_VECTOR_CLONES void relu_backward_range(const scalar_t* __restrict__ gy,
                                                const unsigned char* __restrict__ mask,
                                                scalar_t* __restrict__ gx, long long begin,
                                                long long end) {
  for (long long i = begin; i < end; ++i) relu_backward_element(gy, mask, gx, i);
}

// body(begin, end) over [0, count) in kBlockElements blocks, OpenMP across
// them when the count pays for a team.
template <typename Body>
void for_each_block(long long count, const Body& body) {
  const long long blocks = (count + kBlockElements - 1) / kBlockElements;
  for_each_plane(blocks, count, [&](long long block) {
    const long long begin = block * kBlockElements;
    const long long end = count - begin < kBlockElements ? count : begin + kBlockElements;
    body(begin, end);
  });
}

template <typename scalar_t>
void relu_forward(host_array<scalar_t> x, host_array<scalar_t> y, host_array<unsigned char> mask,
                  long long count) {
  const char* op = "relu_forward";
  require_range(op, "count", count, 0, LLONG_MAX);
  require_elements(op, "x", x, count, "count");
  require_elements(op, "y", y, count, "count");
  require_elements(op, "mask", mask, count, "count");
  require_writable(op, "y", y);
  require_writable(op, "mask", mask);
  require_disjoint(op, "y", y, "x", x);
  require_disjoint(op, "mask", mask, "x", x);
  require_disjoint(op, "mask", mask, "y", y);
  const scalar_t* x_data = x.data();
  scalar_t* y_data = y.mutable_data();
  unsigned char* mask_data = mask.mutable_data();
  py::gil_scoped_release no_gil;
  for_each_block(count, [&](long long begin, long long end) {
    relu_forward_range(x_data, y_data, mask_data, begin, end);
  });
}

template <typename scalar_t>
void relu_backward(host_array<scalar_t> gy, host_array<unsigned char> mask,
                   host_array<scalar_t> gx, long long count) {
  const char* op = "relu_backward";
  require_range(op, "count", count, 0, LLONG_MAX);
  require_elements(op, "gy", gy, count, "count");
  require_elements(op, "mask", mask, count, "count");
  require_elements(op, "gx", gx, count, "count");
  require_writable(op, "gx", gx);
  require_disjoint(op, "gx", gx, "gy", gy);
  require_disjoint(op, "gx", gx, "mask", mask);
  const scalar_t* gy_data = gy.data();
  const unsigned char* mask_data = mask.data();
  scalar_t* gx_data = gx.mutable_data();
  py::gil_scoped_release no_gil;
  for_each_block(count, [&](long long begin, long long end) {
    relu_backward_range(gy_data, mask_data, gx_data, begin, end);
  });
}

template <typename scalar_t>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("relu_forward_" + suffix).c_str(), &relu_forward<scalar_t>, py::arg("x").noconvert(),
        py::arg("y").noconvert(), py::arg("mask").noconvert(), py::arg("count"),
        "y = x * (x > 0) and mask = (x > 0) as uint8, over count elements.");
  m.def(("relu_backward_" + suffix).c_str(), &relu_backward<scalar_t>,
        py::arg("gy").noconvert(), py::arg("mask").noconvert(), py::arg("gx").noconvert(),
        py::arg("count"), "gx = gy * (mask != 0), over count elements.");
}

}  // namespace

void register_activation(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}
