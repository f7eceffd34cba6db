// Fused recurrent layer: one forward and one backward pass through time, per step the product
// W_rec S(t-1) by at::matmul (BLAS) and the neuron's charge, fire and reset in one loop.
//
//   I(t) = (X(t) + W_rec S(t-1)) + b_rec      (all-to-all: S W^T; one-to-one: S * w)
//   S(-1) = 0 and V(-1) = v0, or a given state (V(-1), S(-1)) (a time segment's start)
//   H(t) = charge(V(t-1), I(t));  S(t) = Θ(H(t) - V_th);  V(t) = reset(H(t), S(t))
//
// The float operations mirror snnkit.components.functional.recurrent_input and the neuron step
// in the same order (the build disables FMA contraction), so spikes are bit-identical to the
// reference loop. Charge modes are the ChargeMode constants of constants.h. This file is the
// torch side (the time loop, tensors, the operators' registration); the element loops of a step
// are in recurrent_steps.cpp.
//
// Backward, t = T-1 ... 0, with gV the gradient reaching V(t) from step t+1 and
// gR(t) = dL/dI(t+1) W_rec (one-to-one: dL/dI(t+1) * w) the gradient reaching S(t) through the
// recurrence:
//   hard: gH_r = gV (1 - S); gS_r = gV V_reset - gV H     soft: gH_r = gV; gS_r = -gV V_th
//   (gS_r = 0 with detach_reset)
//   gS = grad_out(t) + gR(t) + gS_r;  gH = gS g'(H - V_th) + gH_r
//   dL/dI(t) = gH dH/dI;  gV(t-1) = gH dH/dV;  PLIF: dL/dk += gH dH/dk
// g'(H - V_th) is passed in (the surrogate's derivative evaluated once over all steps in
// PyTorch); dL/dX = dL/dI, and dL/dW_rec, dL/db_rec are one product / sum over all steps,
// formed by the caller from dL/dI and the spikes. From a given state, gV starts at dL/dV(T-1)
// (the gradient of the end V, from after the segment; that of S(T-1) arrives in grad_out) and
// the returned gV is dL/dV(-1); the caller forms dL/dS(-1) = dL/dI(0) W_rec.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstdint>
#include <vector>

#include "constants.h"
#include "recurrent_steps.h"

namespace snnkit {
namespace {

struct Consts {
  double a, rest, vth, vr, v0;
};

// The time loop with its tensor operations is compiled once per dtype; only the element loop of
// a step (forward_step, backward_step) once per (charge, reset): build time.
template <typename S>
std::vector<at::Tensor> forward_typed(RecurrentForwardStep<S> step, bool learns_k, const at::Tensor& x,
                                      const at::Tensor& w, const at::Tensor& b, const Consts& c,
                                      bool save, const at::Tensor& v_init,
                                      const at::Tensor& s_init) {
  const int64_t T = x.size(0), M = x.size(1), N = x.size(2);
  const bool all = w.dim() == 2;
  auto spk = at::empty_like(x);
  auto hs = save ? at::empty_like(x) : at::Tensor();
  auto is = save && learns_k ? at::empty_like(x) : at::Tensor();
  auto v = v_init.defined() ? v_init.clone() : at::full({M, N}, c.v0, x.options());
  auto zeros = s_init.defined() ? s_init : at::zeros({M, N}, x.options());
  const at::Tensor wt = all ? w.t() : w;
  for (int64_t t = 0; t < T; ++t) {
    const at::Tensor sprev = t == 0 ? zeros : spk[t - 1];
    at::Tensor fed;
    if (all) fed = at::matmul(sprev, wt).contiguous();
    step(x[t].data_ptr<S>(), all ? fed.data_ptr<S>() : nullptr, sprev.data_ptr<S>(),
         all ? nullptr : w.data_ptr<S>(), b.defined() ? b.data_ptr<S>() : nullptr,
         v.data_ptr<S>(), spk[t].data_ptr<S>(), save ? hs[t].data_ptr<S>() : nullptr,
         is.defined() ? is[t].data_ptr<S>() : nullptr, M, N, S(c.a), S(c.rest), S(c.vth),
         S(c.vr));
  }
  return {spk, hs, is, v_init.defined() ? v : at::Tensor()};
}

template <typename S>
std::vector<at::Tensor> backward_typed(RecurrentBackwardStep<S> step, const at::Tensor& gout,
                                       const at::Tensor& hs, const at::Tensor& spk,
                                       const at::Tensor& gpre, const at::Tensor& is,
                                       const at::Tensor& w, bool detach, const Consts& c,
                                       const at::Tensor& v_init, const at::Tensor& gv_end) {
  const int64_t T = hs.size(0), M = hs.size(1), N = hs.size(2);
  const bool all = w.dim() == 2;
  auto gin = at::empty_like(hs);
  auto gv = gv_end.defined() ? gv_end.clone() : at::zeros({M, N}, hs.options());
  auto gk = at::zeros({M, N}, hs.options().dtype(at::kDouble));
  for (int64_t t = T - 1; t >= 0; --t) {
    at::Tensor grec;
    if (all && t < T - 1) grec = at::matmul(gin[t + 1], w).contiguous();
    step(gout[t].data_ptr<S>(), grec.defined() ? grec.data_ptr<S>() : nullptr,
         (!all && t < T - 1) ? gin[t + 1].data_ptr<S>() : nullptr,
         all ? nullptr : w.data_ptr<S>(), hs[t].data_ptr<S>(), spk[t].data_ptr<S>(),
         gpre[t].data_ptr<S>(), t > 0 ? hs[t - 1].data_ptr<S>() : nullptr,
         t > 0 ? spk[t - 1].data_ptr<S>() : nullptr, is.defined() ? is[t].data_ptr<S>() : nullptr,
         v_init.defined() ? v_init.data_ptr<S>() : nullptr, gin[t].data_ptr<S>(),
         gv.data_ptr<S>(), gk.data_ptr<double>(), detach, M, N, S(c.a), S(c.rest), S(c.vth),
         S(c.vr), S(c.v0));
  }
  return {gin, gk.sum(), v_init.defined() ? gv : at::Tensor()};
}

void check(const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "snnkit recurrent kernel: ", what,
              " must be a contiguous CPU tensor");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "snnkit recurrent kernel: ", what,
              " must have the input's dtype");
}

// An optional [M, N] state argument (undefined when absent), checked against the [T, M, N] input.
at::Tensor state_arg(const c10::optional<at::Tensor>& st, const at::Tensor& like, const char* what) {
  if (!st.has_value()) return at::Tensor();
  check(*st, like, what);
  TORCH_CHECK(st->dim() == 2 && st->size(0) == like.size(1) && st->size(1) == like.size(2),
              "snnkit recurrent kernel: ", what, " must be [M, N]");
  return *st;
}

void check_charge(int64_t charge_mode) {
  TORCH_CHECK(charge_mode >= kChargeIf && charge_mode <= kChargeMulNodecay,
              "snnkit: unknown charge mode ", charge_mode);
}

}  // namespace

// The operators. x: [T, M, N]; w: [N, N] (all-to-all) or [N] (one-to-one); b: [N] or None;
// v_init, s_init: the state V(-1), S(-1) [M, N] (None: v0, 0). Returns [spikes, H (or
// undefined), I (PLIF with save only), V(T-1) (with v_init only)].
std::vector<at::Tensor> recurrent_forward(at::Tensor x, at::Tensor w, c10::optional<at::Tensor> b,
                                          int64_t charge_mode, bool hard, double a, double rest,
                                          double vth, double vr, double v0, bool save,
                                          c10::optional<at::Tensor> v_init,
                                          c10::optional<at::Tensor> s_init) {
  TORCH_CHECK(x.dim() == 3, "snnkit recurrent kernel: x must be [T, M, N]");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "snnkit recurrent kernel: x must be float32 or float64");
  check(x, x, "x");
  check(w, x, "w_rec");
  at::Tensor bias = b.has_value() ? *b : at::Tensor();
  if (bias.defined()) check(bias, x, "b_rec");
  const at::Tensor vi = state_arg(v_init, x, "initial V");
  const at::Tensor si = state_arg(s_init, x, "initial spikes");
  check_charge(charge_mode);
  const bool k = charge_learns_k(charge_mode);
  const Consts c{a, rest, vth, vr, v0};
  if (x.scalar_type() == at::kDouble)
    return forward_typed<double>(recurrent_forward_step<double>(charge_mode, hard), k, x, w, bias, c,
                                 save, vi, si);
  return forward_typed<float>(recurrent_forward_step<float>(charge_mode, hard), k, x, w, bias, c, save,
                              vi, si);
}

// gpre: g'(H - V_th) over all steps; gv_end: dL/dV(T-1) from after the sequence (None: 0; that
// of S(T-1) is part of gout). Returns [dL/dI [T, M, N], dL/dk (PLIF; else 0) float64,
// dL/dV(-1) (with v_init only)].
std::vector<at::Tensor> recurrent_backward(at::Tensor gout, at::Tensor h, at::Tensor spk,
                                           at::Tensor gpre, c10::optional<at::Tensor> i,
                                           at::Tensor w, int64_t charge_mode, bool hard,
                                           bool detach, double a, double rest, double vth,
                                           double vr, double v0, c10::optional<at::Tensor> v_init,
                                           c10::optional<at::Tensor> gv_end) {
  for (const at::Tensor* t : {&gout, &spk, &gpre, &w}) check(*t, h, "a saved tensor");
  const at::Tensor vi = state_arg(v_init, h, "initial V");
  const at::Tensor gve = state_arg(gv_end, h, "gradient of the last V");
  at::Tensor is = i.has_value() ? *i : at::Tensor();
  TORCH_CHECK(!charge_learns_k(charge_mode) || is.defined(),
              "snnkit recurrent kernel: PLIF needs the saved input");
  check_charge(charge_mode);
  const Consts c{a, rest, vth, vr, v0};
  if (h.scalar_type() == at::kDouble)
    return backward_typed<double>(recurrent_backward_step<double>(charge_mode, hard), gout, h,
                                  spk, gpre, is, w, detach, c, vi, gve);
  return backward_typed<float>(recurrent_backward_step<float>(charge_mode, hard), gout, h, spk,
                               gpre, is, w, detach, c, vi, gve);
}

}  // namespace snnkit

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {
  m.def("recurrent_forward", &snnkit::recurrent_forward);
  m.def("recurrent_backward", &snnkit::recurrent_backward);
}
