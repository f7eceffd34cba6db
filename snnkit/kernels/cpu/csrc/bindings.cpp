// Python bindings of snnkit's CPU extension: the entry points of entry_points.h, by name.
// Only pybind11 with torch's tensor casters and wrap_pybind_function: torch/extension.h would
// parse all of the C++ frontend (about 5x the compile time of this file).
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/utils/pybind.h>

#include "entry_points.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("neuron_forward", torch::wrap_pybind_function(snnkit::neuron_forward), "neuron_forward");
  m.def("neuron_backward", torch::wrap_pybind_function(snnkit::neuron_backward),
        "neuron_backward");
  m.def("event_forward", torch::wrap_pybind_function(snnkit::event_forward), "event_forward");
  m.def("event_backward", torch::wrap_pybind_function(snnkit::event_backward), "event_backward");
  m.def("recurrent_forward", torch::wrap_pybind_function(snnkit::recurrent_forward),
        "recurrent_forward");
  m.def("recurrent_backward", torch::wrap_pybind_function(snnkit::recurrent_backward),
        "recurrent_backward");
  m.def("event_spikes", torch::wrap_pybind_function(snnkit::event_spikes), "event_spikes");
}
