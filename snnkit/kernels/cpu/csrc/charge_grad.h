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

// Backward of the reset V = reset(H, S): given gV = dL/dV(t), the gradients reaching H(t)
// directly (gh_r) and through S(t) (gs_r; 0 with detach_reset):
//   hard: gH_r = gV (1 - S); gS_r = gV V_reset - gV H      soft: gH_r = gV; gS_r = -gV V_th
template <bool HARD, typename S>
inline void reset_backward(S g_v, S h, S s, S vth, S vr, bool detach, S& gh_r, S& gs_r) {
  if constexpr (HARD) {
    gh_r = g_v * (S(1) - s);
    gs_r = detach ? S(0) : g_v * vr - g_v * h;
  } else {
    gh_r = g_v;
    gs_r = detach ? S(0) : -(g_v * vth);
  }
}

}  // namespace snnkit
