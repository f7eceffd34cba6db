// Fused recurrent layer: one forward and one backward pass through time, per step the product
// W_rec S(t-1) by at::matmul (BLAS) and the neuron's charge, fire and reset in one loop.
//
//   I(t) = (X(t) + W_rec S(t-1)) + b_rec      (all-to-all: S W^T; one-to-one: S * w)
//   S(-1) = 0 and V(-1) = v0, or a given state (V(-1), S(-1)) (a time segment's start)
//   H(t) = charge(V(t-1), I(t));  S(t) = Θ(H(t) - V_th);  V(t) = reset(H(t), S(t))
//
// The float operations mirror snnkit.components.functional.recurrent_input and the neuron step
// in the same order (the build disables FMA contraction), so spikes are bit-identical to the
// reference loop. Charge modes are the ChargeMode constants of constants.h; the charge and reset
// expressions are those of neuron.cpp (kept untouched there).
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
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>  // the Tensor class and its methods; the ops below one by one
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/zeros.h>

#include <cstdint>
#include <vector>

#include "charge_grad.h"
#include "constants.h"
#include "recurrent.h"

namespace snnkit {
namespace {

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

constexpr int64_t GRAIN = 4096;

struct Consts {
  double a, rest, vth, vr, v0;
};

// One forward step over the M*N elements of step t.
template <int64_t CH, bool HARD, typename S>
void forward_step(const S* __restrict x, const S* __restrict fed, const S* __restrict sprev,
                  const S* __restrict w1, const S* __restrict b, S* __restrict v,
                  S* __restrict spk, S* __restrict hs, S* __restrict is, int64_t M, int64_t N,
                  S a, S rest, S vth, S vr) {
  at::parallel_for(0, M * N, GRAIN, [=](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      const int64_t n = e % N;
      S i = x[e] + (fed != nullptr ? fed[e] : sprev[e] * w1[n]);
      if (b != nullptr) i = i + b[n];
      const S h = charge<CH, S>(v[e], i, a, rest);
      const S s = (h - vth) >= S(0) ? S(1) : S(0);
      spk[e] = s;
      if (hs != nullptr) hs[e] = h;
      if (is != nullptr) is[e] = i;
      v[e] = reset_v<HARD, S>(h, s, vth, vr);
    }
  });
}

template <int64_t CH, bool HARD, typename S>
std::vector<at::Tensor> forward_typed(const at::Tensor& x, const at::Tensor& w,
                                      const at::Tensor& b, const Consts& c, bool save,
                                      const at::Tensor& v_init, const at::Tensor& s_init) {
  const int64_t T = x.size(0), M = x.size(1), N = x.size(2);
  const bool all = w.dim() == 2;
  auto spk = at::empty_like(x);
  auto hs = save ? at::empty_like(x) : at::Tensor();
  auto is = save && charge_learns_k(CH) ? at::empty_like(x) : at::Tensor();
  auto v = v_init.defined() ? v_init.clone() : at::full({M, N}, c.v0, x.options());
  auto zeros = s_init.defined() ? s_init : at::zeros({M, N}, x.options());
  const at::Tensor wt = all ? w.t() : w;
  for (int64_t t = 0; t < T; ++t) {
    const at::Tensor sprev = t == 0 ? zeros : spk[t - 1];
    at::Tensor fed;
    if (all) fed = at::matmul(sprev, wt).contiguous();
    forward_step<CH, HARD, S>(x[t].data_ptr<S>(), all ? fed.data_ptr<S>() : nullptr,
                              sprev.data_ptr<S>(), all ? nullptr : w.data_ptr<S>(),
                              b.defined() ? b.data_ptr<S>() : nullptr, v.data_ptr<S>(),
                              spk[t].data_ptr<S>(), save ? hs[t].data_ptr<S>() : nullptr,
                              is.defined() ? is[t].data_ptr<S>() : nullptr, M, N, S(c.a),
                              S(c.rest), S(c.vth), S(c.vr));
  }
  return {spk, hs, is, v_init.defined() ? v : at::Tensor()};
}

// One backward step over the M*N elements of step t; writes dL/dI(t), updates gV and gk.
template <int64_t CH, bool HARD, typename S>
void backward_step(const S* __restrict gout, const S* __restrict grec, const S* __restrict gin_next,
                   const S* __restrict w1, const S* __restrict h, const S* __restrict spk,
                   const S* __restrict gpre, const S* __restrict hprev, const S* __restrict sprv,
                   const S* __restrict it, const S* __restrict vinit, S* __restrict gin,
                   S* __restrict gv, double* __restrict gk, bool detach, int64_t M, int64_t N, S a,
                   S rest, S vth, S vr, S v0) {
  at::parallel_for(0, M * N, GRAIN, [=](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      const S hh = h[e], s = spk[e], g_v = gv[e];
      S gh_r, gs_r;
      if constexpr (HARD) {
        gh_r = g_v * (S(1) - s);
        gs_r = detach ? S(0) : g_v * vr - g_v * hh;
      } else {
        gh_r = g_v;
        gs_r = detach ? S(0) : -(g_v * vth);
      }
      S gr = S(0);
      if (grec != nullptr) gr = grec[e];
      else if (gin_next != nullptr) gr = gin_next[e] * w1[e % N];
      const S gs = gout[e] + gr + gs_r;
      const S gh = gs * gpre[e] + gh_r;
      S gxx, gvp;
      charge_backward<CH>(gh, S(a), gxx, gvp);
      if constexpr (charge_learns_k(CH)) {
        const S vp = hprev != nullptr   ? reset_v<HARD, S>(hprev[e], sprv[e], vth, vr)
                     : vinit != nullptr ? vinit[e]
                                        : v0;
        if constexpr (charge_decays_input(CH)) gk[e] += static_cast<double>(gh * (it[e] - (vp - rest)));
        else gk[e] += static_cast<double>(-(gh * (vp - rest)));
      }
      gin[e] = gxx;
      gv[e] = gvp;
    }
  });
}

template <int64_t CH, bool HARD, typename S>
std::vector<at::Tensor> backward_typed(const at::Tensor& gout, const at::Tensor& hs,
                                       const at::Tensor& spk, const at::Tensor& gpre,
                                       const at::Tensor& is, const at::Tensor& w, bool detach,
                                       const Consts& c, const at::Tensor& v_init,
                                       const at::Tensor& gv_end) {
  const int64_t T = hs.size(0), M = hs.size(1), N = hs.size(2);
  const bool all = w.dim() == 2;
  auto gin = at::empty_like(hs);
  auto gv = gv_end.defined() ? gv_end.clone() : at::zeros({M, N}, hs.options());
  auto gk = at::zeros({M, N}, hs.options().dtype(at::kDouble));
  for (int64_t t = T - 1; t >= 0; --t) {
    at::Tensor grec;
    if (all && t < T - 1) grec = at::matmul(gin[t + 1], w).contiguous();
    backward_step<CH, HARD, S>(
        gout[t].data_ptr<S>(), grec.defined() ? grec.data_ptr<S>() : nullptr,
        (!all && t < T - 1) ? gin[t + 1].data_ptr<S>() : nullptr, all ? nullptr : w.data_ptr<S>(),
        hs[t].data_ptr<S>(), spk[t].data_ptr<S>(), gpre[t].data_ptr<S>(),
        t > 0 ? hs[t - 1].data_ptr<S>() : nullptr, t > 0 ? spk[t - 1].data_ptr<S>() : nullptr,
        is.defined() ? is[t].data_ptr<S>() : nullptr,
        v_init.defined() ? v_init.data_ptr<S>() : nullptr, gin[t].data_ptr<S>(), gv.data_ptr<S>(),
        gk.data_ptr<double>(), detach, M, N, S(c.a), S(c.rest), S(c.vth), S(c.vr), S(c.v0));
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

#define SNN_REC_DISPATCH(FN, ...)                                                          \
  switch (charge_mode) {                                                                 \
    case kChargeIf: SNN_REC_HARD(kChargeIf, FN, __VA_ARGS__)                             \
    case kChargeLif: SNN_REC_HARD(kChargeLif, FN, __VA_ARGS__)                           \
    case kChargeLifNodecay: SNN_REC_HARD(kChargeLifNodecay, FN, __VA_ARGS__)             \
    case kChargePlif: SNN_REC_HARD(kChargePlif, FN, __VA_ARGS__)                         \
    case kChargePlifNodecay: SNN_REC_HARD(kChargePlifNodecay, FN, __VA_ARGS__)           \
    case kChargeMul: SNN_REC_HARD(kChargeMul, FN, __VA_ARGS__)                           \
    case kChargeMulNodecay: SNN_REC_HARD(kChargeMulNodecay, FN, __VA_ARGS__)             \
    default: TORCH_CHECK(false, "snnkit: unknown charge mode ", charge_mode);            \
  }
#define SNN_REC_HARD(CH, FN, ...)                                                          \
  if (dbl) return hard ? FN<CH, true, double>(__VA_ARGS__) : FN<CH, false, double>(__VA_ARGS__); \
  return hard ? FN<CH, true, float>(__VA_ARGS__) : FN<CH, false, float>(__VA_ARGS__);

}  // namespace

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
  const bool dbl = x.scalar_type() == at::kDouble;
  const Consts c{a, rest, vth, vr, v0};
  SNN_REC_DISPATCH(forward_typed, x, w, bias, c, save, vi, si)
}

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
  const bool dbl = h.scalar_type() == at::kDouble;
  const Consts c{a, rest, vth, vr, v0};
  SNN_REC_DISPATCH(backward_typed, gout, h, spk, gpre, is, w, detach, c, vi, gve)
}

#undef SNN_REC_HARD
#undef SNN_REC_DISPATCH

}  // namespace snnkit
