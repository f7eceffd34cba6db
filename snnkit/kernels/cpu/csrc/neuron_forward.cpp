// Fused neuron loop, forward: H = charge(V, X); S = Θ(H − V_th); V = reset(H, S), per block of
// elements over t (see neuron_common.h).
#include <algorithm>
#include <cstdint>

#include "constants.h"
#include "kernels.h"
#include "neuron_common.h"

namespace snnkit {
namespace {

using namespace neuron_detail;

// H and the reset V of a block are kept in local arrays and copied out only when asked for
// (hs: H for a generic surrogate's backward; vrec: the V trace), so those options cost no
// extra instantiations (build time) and nothing when off. st.v_init: V(−1) per element (null:
// the scalar v0); st.v_end: where V(T−1) goes (null: not kept). xs: the step stride of x (N, or
// 0 for one input row repeated at every step).
template <int64_t CH, bool HARD, typename S>
void forward_range(const S* __restrict x, int64_t xs, S* __restrict spk, S* __restrict hs,
                   S* __restrict vrec, int64_t T, int64_t N, S a, S rest, S vth, S vr, S v0,
                   ForwardState<S> st, int64_t begin, int64_t end) {
  S v[BLK], h[BLK];
  for (int64_t i0 = begin; i0 < end; i0 += BLK) {
    const int64_t n = std::min<int64_t>(BLK, end - i0);
    init_block(v, st.v_init, v0, i0, n);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t off = t * N + i0;
      const S* xt = x + t * xs + i0;
      S* sp = spk + off;
      for (int64_t j = 0; j < n; ++j) {
        const S hh = charge<CH, S>(v[j], xt[j], a, rest);
        const S s = (hh - vth) >= S(0) ? S(1) : S(0);
        sp[j] = s;
        h[j] = hh;
        v[j] = reset_v<HARD, S>(hh, s, vth, vr);
      }
      if (hs != nullptr) std::copy(h, h + n, hs + off);
      if (vrec != nullptr) std::copy(v, v + n, vrec + off);
    }
    if (st.v_end != nullptr) std::copy(v, v + n, st.v_end + i0);
  }
}

template <int64_t CH, bool HARD, typename S>
void forward_impl(const NeuronConsts<S>& c, const NeuronForwardArgs<S>& p) {
  const ForwardState<S> st{p.v_init, p.v_end};
  const S* x = p.x;
  const int64_t xs = p.x_step, T = p.T, N = p.N;
  S *spk = p.spikes, *hs = p.h, *vrec = p.v_trace;
  const S a = c.a, rest = c.rest, vth = c.vth, vr = c.vr, v0 = c.v0;
  for_blocks(N, T, [=](int64_t begin, int64_t end) {
    forward_range<CH, HARD, S>(x, xs, spk, hs, vrec, T, N, a, rest, vth, vr, v0, st, begin, end);
  });
}

}  // namespace

// The caller (bindings.cpp) has checked that c.charge is a ChargeMode.
template <typename S>
void neuron_forward_raw(const NeuronConsts<S>& c, const NeuronForwardArgs<S>& p) {
#define SNN_FWD(CH)                       \
  if (c.hard) forward_impl<CH, true, S>(c, p); \
  else forward_impl<CH, false, S>(c, p);
  // PLIF charges as the multiplying modes do (a = k): only its backward differs.
  switch (c.charge) {
    case kChargeIf: SNN_FWD(kChargeIf) break;
    case kChargeLif: SNN_FWD(kChargeLif) break;
    case kChargeLifNodecay: SNN_FWD(kChargeLifNodecay) break;
    case kChargePlif:
    case kChargeMul: SNN_FWD(kChargeMul) break;
    case kChargePlifNodecay:
    case kChargeMulNodecay: SNN_FWD(kChargeMulNodecay) break;
    default: break;
  }
#undef SNN_FWD
}

template void neuron_forward_raw<float>(const NeuronConsts<float>&, const NeuronForwardArgs<float>&);
template void neuron_forward_raw<double>(const NeuronConsts<double>&,
                                         const NeuronForwardArgs<double>&);

}  // namespace snnkit
