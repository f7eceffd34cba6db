// The raw kernels of snnkit's core CPU extension: plain pointers and sizes, no torch types, so
// that their translation units parse <ATen/Parallel.h> only (build time; the torch headers are
// most of it). bindings.cpp checks the tensors, allocates the outputs and calls these.
// Every kernel is instantiated for S = float and S = double.
#pragma once

#include <cstdint>

namespace snnkit {

// A fused neuron: charge mode (a ChargeMode of constants.h) and its constant a, reset kind and
// the scalars of neuron_common.h.
template <typename S>
struct NeuronConsts {
  int64_t charge;
  bool hard;
  S a, rest, vth, vr, v0;
};

// Forward over T steps of N elements. x_step: N (x is [T, N]) or 0 (x is one [N] row, the same
// input at every step). h, v_trace: [T, N] outputs or null (H for a generic surrogate, the V
// trace); v_init: V(-1) [N] or null (then v0); v_end: V(T-1) [N] out, or null.
template <typename S>
struct NeuronForwardArgs {
  const S* x;
  int64_t x_step;
  S* spikes;
  S* h;
  S* v_trace;
  const S* v_init;
  S* v_end;
  int64_t T, N;
};

// Backward through time. gx: dL/dX [T, N]; with x_step = 0, the sum over t of dL/dX(t), [N].
// gpre: g'(H - V_th) [T, N] for a generic surrogate, or null (then sur, c1..c3: a SurrogateKind
// of constants.h and its constants). v_init: as forward; gv_end: dL/dV(T-1) [N] or null (0);
// gv_init: dL/dV(-1) [N] out, or null. Returns dL/dk summed over every element (PLIF; else 0).
template <typename S>
struct NeuronBackwardArgs {
  const S* gout;
  const S* x;
  int64_t x_step;
  S* gx;
  const S* gpre;
  int64_t sur;
  S c1, c2, c3;
  bool detach;
  const S* v_init;
  const S* gv_end;
  S* gv_init;
  int64_t T, N;
};

template <typename S>
void neuron_forward_raw(const NeuronConsts<S>& c, const NeuronForwardArgs<S>& a);
template <typename S>
double neuron_backward_raw(const NeuronConsts<S>& c, const NeuronBackwardArgs<S>& a);

// Event-driven Poisson input layer (event_input.cpp). x: uint8 [B, D]; W: [C, D]; out: [T, B, C]
// (no bias); masks: [B, D, ceil(T/64)] fired-step bits, zeroed by the caller, or null.
template <typename S>
void event_forward_raw(const uint8_t* x, const S* W, S* out, uint64_t* masks, int64_t B,
                       int64_t D, int64_t C, int64_t T, uint64_t seed);
// g [T, B, C], masks [B, D, NW] -> gw [C, D] (sum of g over the fired events).
template <typename S>
void event_backward_raw(const S* g, const uint64_t* masks, S* gw, int64_t B, int64_t D,
                        int64_t C, int64_t T);
// Dense spikes of the same draws into out [T, B, D] (zeroed by the caller).
void event_spikes_raw(const uint8_t* x, float* out, int64_t B, int64_t D, int64_t T,
                      uint64_t seed);

// Max pooling, kernel 2, stride 2, no padding, of channels-last maps (spike_pool.cpp).
// x: [M, H, W, C]; y: [M, H/2, W/2, C] (floor); idx: the window position of each maximum
// (0..3 = 2 dh + dw), the first in (dh, dw) order, a NaN winning as in torch's max_pool2d.
template <typename S>
void maxpool2_forward_raw(const S* x, S* y, uint8_t* idx, int64_t M, int64_t H, int64_t W,
                          int64_t C);
// gx [M, H, W, C] = gy at each window's maximum, 0 elsewhere (every element written once).
template <typename S>
void maxpool2_backward_raw(const S* gy, const uint8_t* idx, S* gx, int64_t M, int64_t H,
                           int64_t W, int64_t C);

// 1-bit storage (bitpack.cpp): bits[i] bit j = (x[8i + j] != 0), ceil(n/8) bytes; and back.
template <typename S>
void pack_bits_raw(const S* x, uint8_t* bits, int64_t n);
template <typename S>
void unpack_bits_raw(const uint8_t* bits, S* x, int64_t n);

}  // namespace snnkit
