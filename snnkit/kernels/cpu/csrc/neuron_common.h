// Shared pieces of the fused neuron kernels (neuron_forward.cpp, neuron_backward.cpp), kept in
// two translation units so that the first build compiles them in parallel.
//
// Fused neuron loop: one forward pass and one backward pass through time, per block of elements.
//
// Every float operation mirrors the PyTorch expression of snnkit.components.functional in the
// same order (the build disables FMA contraction), so spikes are bit-identical to the reference
// loop; gradients agree to rounding. Charge modes and surrogate kinds are the generated
// constants of constants.h (snnkit.kernels.forms): a ChargeMode's `a` is tau (dividing modes),
// 1/tau or k = sigmoid(w) (multiplying modes); a SurrogateKind's c1, c2 are precomputed in
// Python exactly as the PyTorch formula forms its scalar constants.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "constants.h"

namespace snnkit {
namespace neuron_detail {

constexpr int64_t BLK = 256;

template <int64_t CH, typename S>
inline S charge(S v, S x, S a, S rest) {
  if constexpr (CH == kChargeIf) return v + x;
  else if constexpr (charge_divides(CH) && charge_decays_input(CH)) return v + (x - (v - rest)) / a;
  else if constexpr (charge_divides(CH)) return v - (v - rest) / a + x;
  else if constexpr (charge_decays_input(CH)) return v + (x - (v - rest)) * a;
  else return v - (v - rest) * a + x;
}

template <bool HARD, typename S>
inline S reset_v(S h, S s, S vth, S vr) {
  if constexpr (HARD) return h * (S(1) - s) + vr * s;
  else return h - vth * s;
}

// A segment's state, for running a neuron from a given V and handing its last V on (all null:
// V starts at the scalar v0 and nothing is kept). Element i of the [N] state belongs to
// column i of the [T, N] sequence.
template <typename S>
struct ForwardState {
  const S* v_init;  // V(−1) per element, or null
  S* v_end;         // V(T−1) out, or null
};
template <typename S>
struct BackwardState {
  const S* v_init;  // V(−1) per element, or null
  const S* gv_end;  // dL/dV(T−1) from after the sequence, or null (0)
  S* gv_init;       // dL/dV(−1) out, or null
};

// v[0:n) = v_init[i0:i0+n), or the scalar v0 when there is no initial state.
template <typename S>
inline void init_block(S* v, const S* v_init, S v0, int64_t i0, int64_t n) {
  if (v_init != nullptr) std::copy(v_init + i0, v_init + i0 + n, v);
  else for (int64_t j = 0; j < n; ++j) v[j] = v0;
}

// Work is split in whole BLK-element blocks (about 32k element-steps per task at least), so
// block b always covers elements [b*BLK, (b+1)*BLK) whatever the thread count.
template <typename F>
void for_blocks(int64_t N, int64_t T, const F& body) {
  const int64_t nblocks = (N + BLK - 1) / BLK;
  const int64_t grain = std::max<int64_t>(1, 32768 / (BLK * std::max<int64_t>(T, 1)));
  at::parallel_for(0, nblocks, grain, [&](int64_t b0, int64_t b1) {
    body(b0 * BLK, std::min(b1 * BLK, N));
  });
}

// The per-thread bodies take every scalar by value: inside a capturing lambda, stores through
// S* could alias the captured S constants, which forces reloads and blocks vectorization.

}  // namespace neuron_detail
}  // namespace snnkit
