// The entry points of snnkit's CPU extension (bound to Python in bindings.cpp).
#pragma once

#include <ATen/core/Tensor.h>  // the Tensor class only: not all of ATen.h (compile time)

#include <cstdint>
#include <vector>

namespace snnkit {

// Fused neuron loop (neuron_forward.cpp, neuron_backward.cpp). charge_mode: a ChargeMode of
// constants.h; a: its constant; v_init: V(-1) per element of a step (None: the scalar v0).
// Returns [spikes, H (or undefined), V trace (or undefined), V(T-1) (undefined without v_init)].
std::vector<at::Tensor> neuron_forward(at::Tensor x, int64_t charge_mode, bool hard, double a,
                                       double rest, double vth, double vr, double v0, bool save,
                                       bool record, c10::optional<at::Tensor> v_init);

// Returns [dL/dX, sum over all elements of dL/dk (PLIF only; 0 otherwise) as a float64
// scalar, dL/dV(-1) (undefined without v_init)]. sur: a SurrogateKind of constants.h with its
// constants c1, c2, c3; gpre: precomputed g'(H - V_th) for generic surrogates, or None;
// v_init: as for neuron_forward; gv_end: dL/dV(T-1) from after the sequence (None: 0).
std::vector<at::Tensor> neuron_backward(at::Tensor gout, at::Tensor x,
                                        c10::optional<at::Tensor> gpre, int64_t charge_mode,
                                        bool hard, bool detach, int64_t sur, double c1, double c2,
                                        double c3, double a, double rest, double vth, double vr,
                                        double v0, c10::optional<at::Tensor> v_init,
                                        c10::optional<at::Tensor> gv_end);

// Event-driven Poisson input layer (event_input.cpp). x: uint8 [B, D]; W: [C, D]. Returns
// [out [T, B, C] (no bias), masks int64 [B, D, ceil(T/64)] (undefined unless save)].
std::vector<at::Tensor> event_forward(at::Tensor x, at::Tensor W, int64_t T, int64_t seed,
                                      bool save);

// grad_out [T, B, C], masks [B, D, NW] -> grad_W [C, D] (sum of grad_out over fired events).
at::Tensor event_backward(at::Tensor g, at::Tensor masks, int64_t D);

// Dense spikes [T, B, D] of the same draws (for tests and the dense equivalent).
at::Tensor event_spikes(at::Tensor x, int64_t T, int64_t seed);

// Fused recurrent layer (recurrent.cpp). x: [T, M, N]; w: [N, N] (all-to-all) or [N]
// (one-to-one); b: [N] or None; v_init, s_init: the state V(-1), S(-1) [M, N] (None: v0, 0).
// Returns [spikes, H (or undefined), I (PLIF with save only), V(T-1) (with v_init only)].
std::vector<at::Tensor> recurrent_forward(at::Tensor x, at::Tensor w, c10::optional<at::Tensor> b,
                                          int64_t charge_mode, bool hard, double a, double rest,
                                          double vth, double vr, double v0, bool save,
                                          c10::optional<at::Tensor> v_init,
                                          c10::optional<at::Tensor> s_init);

// gpre: g'(H - V_th) over all steps; gv_end: dL/dV(T-1) from after the sequence (None: 0; that
// of S(T-1) is part of gout). Returns [dL/dI [T, M, N], dL/dk (PLIF; else 0) float64, dL/dV(-1) (with
// v_init only)].
std::vector<at::Tensor> recurrent_backward(at::Tensor gout, at::Tensor h, at::Tensor spk,
                                           at::Tensor gpre, c10::optional<at::Tensor> i,
                                           at::Tensor w, int64_t charge_mode, bool hard,
                                           bool detach, double a, double rest, double vth,
                                           double vr, double v0, c10::optional<at::Tensor> v_init,
                                           c10::optional<at::Tensor> gv_end);

}  // namespace snnkit
