// One step of the fused recurrent layer's element loops (recurrent_steps.cpp), for the time loop
// of recurrent.cpp: a function pointer per (charge mode, reset), picked once per call.
#pragma once

#include <cstdint>

namespace snnkit {

// x, fed (W_rec S(t-1) or null), sprev, w1 (one-to-one weights, or null), b (or null); v
// updated in place; spikes, h (or null), i (PLIF's input, or null) of step t; M, N; a, rest,
// vth, vr.
template <typename S>
using RecurrentForwardStep = void (*)(const S*, const S*, const S*, const S*, const S*, S*, S*,
                                      S*, S*, int64_t, int64_t, S, S, S, S);

// gout, grec (dL/dI(t+1) W_rec, or null), gin_next (one-to-one, or null), w1, h, spikes, gpre,
// hprev, sprev (or null at t = 0), i, v_init (or null), gin out, gv in/out, gk (+=), detach,
// M, N, a, rest, vth, vr, v0.
template <typename S>
using RecurrentBackwardStep = void (*)(const S*, const S*, const S*, const S*, const S*,
                                       const S*, const S*, const S*, const S*, const S*,
                                       const S*, S*, S*, double*, bool, int64_t, int64_t, S, S, S,
                                       S, S);

// The step for a ChargeMode of constants.h (checked by the caller) and a reset kind.
template <typename S>
RecurrentForwardStep<S> recurrent_forward_step(int64_t charge_mode, bool hard);
template <typename S>
RecurrentBackwardStep<S> recurrent_backward_step(int64_t charge_mode, bool hard);

}  // namespace snnkit
