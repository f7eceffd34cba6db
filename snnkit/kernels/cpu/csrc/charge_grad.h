// Backward of the charge equation H = charge(V, X), shared by the neuron and recurrent kernels:
// given gH = dL/dH(t), the gradients reaching X(t) and V(t-1), for each charge mode (a = tau
// when the mode divides, k = sigmoid(w) or 1/tau when it multiplies). Same operation order as
// the autograd of snnkit.components.functional, so gradients agree to rounding.
#pragma once

#include "constants.h"

namespace snnkit {

template <int CH, typename S>
inline void charge_backward(S gh, S a, S& gxx, S& gvp) {
  if constexpr (CH == kChargeIf) {
    gxx = gh;
    gvp = gh;
  } else if constexpr (charge_divides(CH) && charge_decays_input(CH)) {
    const S gb = gh / a;
    gxx = gb;
    gvp = gh - gb;
  } else if constexpr (charge_divides(CH)) {
    gxx = gh;
    gvp = gh - gh / a;
  } else if constexpr (charge_decays_input(CH)) {
    const S gb = gh * a;
    gxx = gb;
    gvp = gh - gb;
  } else {
    gxx = gh;
    gvp = gh - gh * a;
  }
}

}  // namespace snnkit
