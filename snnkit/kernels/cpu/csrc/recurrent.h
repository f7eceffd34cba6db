// The entry points of snnkit's recurrent CPU extension (bound to Python in
// recurrent_bindings.cpp; built apart from the core kernels, on first use of a recurrent layer).
#pragma once

#include <ATen/core/Tensor.h>  // the Tensor class only: not all of ATen.h (compile time)

#include <cstdint>
#include <vector>

namespace snnkit {

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
