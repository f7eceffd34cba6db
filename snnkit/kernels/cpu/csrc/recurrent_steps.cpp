// The element loops of the fused recurrent layer, one step at a time (see recurrent.cpp for the
// equations and the time loop around them): raw pointers, no torch header but <ATen/Parallel.h>
// (build time); the charge and reset expressions are neuron_common.h's, the same as the neuron
// kernels'.
#include <cstdint>

#include "charge_grad.h"
#include "constants.h"
#include "neuron_common.h"
#include "recurrent_steps.h"

namespace snnkit {
namespace {

using neuron_detail::charge;
using neuron_detail::reset_v;

constexpr int64_t GRAIN = 4096;

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
      reset_backward<HARD, S>(g_v, hh, s, vth, vr, detach, gh_r, gs_r);
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

}  // namespace

// The step kernel for (charge, reset): STEP<CH, HARD, S> as a function pointer.
#define SNN_REC_PICK(STEP, NAME, TYPE)                                                \
  template <typename S>                                                           \
  TYPE<S> NAME(int64_t ch, bool hard) {                                        \
    switch (ch) {                                                                  \
      case kChargeIf: return hard ? &STEP<kChargeIf, true, S> : &STEP<kChargeIf, false, S>; \
      case kChargeLif: return hard ? &STEP<kChargeLif, true, S> : &STEP<kChargeLif, false, S>; \
      case kChargeLifNodecay:                                                      \
        return hard ? &STEP<kChargeLifNodecay, true, S> : &STEP<kChargeLifNodecay, false, S>; \
      case kChargePlif: return hard ? &STEP<kChargePlif, true, S> : &STEP<kChargePlif, false, S>; \
      case kChargePlifNodecay:                                                     \
        return hard ? &STEP<kChargePlifNodecay, true, S> : &STEP<kChargePlifNodecay, false, S>; \
      case kChargeMul: return hard ? &STEP<kChargeMul, true, S> : &STEP<kChargeMul, false, S>; \
      default:                                                                     \
        return hard ? &STEP<kChargeMulNodecay, true, S> : &STEP<kChargeMulNodecay, false, S>; \
    }                                                                              \
  }
SNN_REC_PICK(forward_step, recurrent_forward_step, RecurrentForwardStep)
SNN_REC_PICK(backward_step, recurrent_backward_step, RecurrentBackwardStep)
#undef SNN_REC_PICK

template RecurrentForwardStep<float> recurrent_forward_step<float>(int64_t, bool);
template RecurrentForwardStep<double> recurrent_forward_step<double>(int64_t, bool);
template RecurrentBackwardStep<float> recurrent_backward_step<float>(int64_t, bool);
template RecurrentBackwardStep<double> recurrent_backward_step<double>(int64_t, bool);

}  // namespace snnkit
