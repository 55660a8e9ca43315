// One register_<family>(m) per csrc/host/<family>.cpp; module.cpp calls each.
// A new kernel family adds its declaration here and one call in module.cpp.
#ifndef NNLITE_HOST_FAMILIES_H
#define NNLITE_HOST_FAMILIES_H

#include <pybind11/pybind11.h>

void register_softmax(pybind11::module_& m);
void register_rnn(pybind11::module_& m);
void register_ctc(pybind11::module_& m);
void register_conv(pybind11::module_& m);
void register_pool(pybind11::module_& m);
void register_winograd(pybind11::module_& m);
void register_dequant(pybind11::module_& m);
void register_direct_conv(pybind11::module_& m);
void register_activation(pybind11::module_& m);

#endif  // NNLITE_HOST_FAMILIES_H
