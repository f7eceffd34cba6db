// The operators of snnkit's recurrent CPU extension: the entry points of recurrent.h, registered as
// torch.ops.<extension name>.<entry point> (a translation unit of its own, compiled beside
// recurrent.cpp; <torch/library.h>, not pybind11: see bindings.cpp).
#include <torch/library.h>

#include "recurrent.h"

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {
  m.def("recurrent_forward", &snnkit::recurrent_forward);
  m.def("recurrent_backward", &snnkit::recurrent_backward);
}
