// Fused neuron loop, backward through time (see neuron_common.h and snnkit.kernels.cpu.neuron
// for the equations).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "charge_grad.h"
#include "constants.h"
#include "kernels.h"
#include "neuron_common.h"

namespace snnkit {
namespace {

using namespace neuron_detail;

// e^x for float: Cody-Waite reduction + degree-6 polynomial (about 1 ulp), branch-free so the
// surrogate loops vectorize. Inputs are clamped to [-87.3, 88]: outside, the result saturates
// near FLT_MIN / 1.6e38 instead of 0 / inf, which changes no surrogate value measurably.
inline float exp_(float x) {
  x = std::min(std::max(x, -87.3f), 88.0f);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
inline double exp_(double x) { return std::exp(x); }

// g'(d) for n values; d = H - V_th.
// Not inlined: one copy per dtype instead of one per (charge, reset) instantiation (build time).
template <typename S>
__attribute__((noinline)) void surrogate_block(int64_t sur, S c1, S c2, const S* __restrict d,
                                               S* __restrict g, int64_t n) {
  const S one = S(1);
  switch (sur) {
    case kSurrogateSigmoid:  // s = 1/(1 + e^(-a d)); g = a s (1 - s)
      for (int64_t j = 0; j < n; ++j) {
        S s = one / (one + exp_(-(c1 * d[j])));
        g[j] = c1 * s * (one - s);
      }
      break;
    case kSurrogateAtan:  // (a/2) / (1 + (pi/2 a d)^2)
      for (int64_t j = 0; j < n; ++j) { S z = c2 * d[j]; g[j] = c1 / (one + z * z); }
      break;
    case kSurrogatePiecewiseQuadratic:  // relu(a - a^2 |d|)
      for (int64_t j = 0; j < n; ++j) { S z = c1 - c2 * std::abs(d[j]); g[j] = z > S(0) ? z : S(0); }
      break;
    case kSurrogatePiecewiseExp:  // (a/2) e^(-a |d|)
      for (int64_t j = 0; j < n; ++j) g[j] = c1 * exp_(c2 * std::abs(d[j]));
      break;
    case kSurrogateSoftsign:  // (a/2) / (1 + |a d|)^2
      for (int64_t j = 0; j < n; ++j) { S u = one + std::abs(c2 * d[j]); g[j] = c1 / (u * u); }
      break;
    case kSurrogateErf:  // (a/sqrt(pi)) e^(-(a d)^2)
      for (int64_t j = 0; j < n; ++j) { S z = c2 * d[j]; g[j] = c1 * exp_(-(z * z)); }
      break;
    case kSurrogateSuperspike:  // a / (1 + |d|)^2
      for (int64_t j = 0; j < n; ++j) { S u = one + std::abs(d[j]); g[j] = c1 / (u * u); }
      break;
    case kSurrogateFastSigmoid:  // 1 / (slope |d| + 1)^2
      for (int64_t j = 0; j < n; ++j) { S u = c1 * std::abs(d[j]) + one; g[j] = one / (u * u); }
      break;
    case kSurrogatePiecewiseLeakyRelu:  // |d| < w ? 1/(2w) : c (three constants: backward_range)
      break;
    case kSurrogateRect:  // a * (|d| < 0.5/a)
      for (int64_t j = 0; j < n; ++j) g[j] = std::abs(d[j]) < c2 ? c1 : S(0);
      break;
    case kSurrogateQPseudoSpike:  // (1 + 2/(a-1) |d|)^(-a)
      for (int64_t j = 0; j < n; ++j) g[j] = std::pow(one + c1 * std::abs(d[j]), c2);
      break;
    case kSurrogateStraightThrough:
      for (int64_t j = 0; j < n; ++j) g[j] = one;
      break;
    default:  // the caller (bindings.cpp) checked the kind
      break;
  }
}

// detach is a run-time flag (it only zeroes gS_r): half the instantiations (build time). xs: the
// step stride of x (N, or 0 for one row repeated at every step; then gx[0:N) is the sum over t).
template <int64_t CH, bool HARD, typename S>
void backward_range(const S* __restrict gout, const S* __restrict x, int64_t xs,
                    S* __restrict gx, const S* __restrict gpre, int64_t sur, S c1, S c2, S c3,
                    bool detach, int64_t T, int64_t N, S a, S rest, S vth, S vr, S v0,
                    double* gk_blocks, BackwardState<S> st, int64_t begin, int64_t end) {
  constexpr bool PLIF = charge_learns_k(CH);  // accumulates dL/dk
    std::vector<S> hbuf(static_cast<size_t>(T * BLK));
    S* hb = hbuf.data();
    S gv[BLK], d[BLK], sg[BLK], v[BLK], vp[BLK], gkl[BLK], gsum[BLK], gxb[BLK];
    const bool summed = xs == 0;
    for (int64_t i0 = begin; i0 < end; i0 += BLK) {
      const int64_t n = std::min<int64_t>(BLK, end - i0);
      init_block(v, st.v_init, v0, i0, n);
      for (int64_t t = 0; t < T; ++t) {
        const S* xt = x + t * xs + i0;
        S* ht = hb + t * BLK;
        for (int64_t j = 0; j < n; ++j) {
          const S h = charge<CH, S>(v[j], xt[j], a, rest);
          const S s = (h - vth) >= S(0) ? S(1) : S(0);
          ht[j] = h;
          v[j] = reset_v<HARD, S>(h, s, vth, vr);
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        gv[j] = st.gv_end != nullptr ? st.gv_end[i0 + j] : S(0);
        gkl[j] = S(0);
        gsum[j] = S(0);
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t off = t * N + i0;
        const S* ht = hb + t * BLK;
        if (gpre != nullptr) {
          for (int64_t j = 0; j < n; ++j) sg[j] = gpre[off + j];
        } else if (sur == kSurrogatePiecewiseLeakyRelu) {
          for (int64_t j = 0; j < n; ++j) sg[j] = std::abs(ht[j] - vth) < c1 ? c2 : c3;
        } else {
          for (int64_t j = 0; j < n; ++j) d[j] = ht[j] - vth;
          surrogate_block<S>(sur, c1, c2, d, sg, n);
        }
        const S* got = gout + off;
        S* gxt = summed ? gxb : gx + off;
        const S* xt = x + t * xs + i0;
        if constexpr (PLIF) {  // V(t-1) from H(t-1), exactly as the forward pass reset it
          if (t > 0) {
            const S* hp = hb + (t - 1) * BLK;
            for (int64_t j = 0; j < n; ++j) {
              const S hh = hp[j];
              const S ss = (hh - vth) >= S(0) ? S(1) : S(0);
              vp[j] = reset_v<HARD, S>(hh, ss, vth, vr);
            }
          } else {
            init_block(vp, st.v_init, v0, i0, n);
          }
        }
        for (int64_t j = 0; j < n; ++j) {
          const S h = ht[j];
          const S s = (h - vth) >= S(0) ? S(1) : S(0);
          const S g_v = gv[j];
          S gh_r, gs_r;
          reset_backward<HARD, S>(g_v, h, s, vth, vr, detach, gh_r, gs_r);
          const S gs = got[j] + gs_r;
          const S gh = gs * sg[j] + gh_r;
          S gxx, gvp;
          charge_backward<CH>(gh, S(a), gxx, gvp);
          if constexpr (PLIF) {
            if constexpr (charge_decays_input(CH)) gkl[j] += gh * (xt[j] - (vp[j] - rest));
            else gkl[j] += -(gh * (vp[j] - rest));
          }
          gxt[j] = gxx;
          gv[j] = gvp;
        }
        if (summed)
          for (int64_t j = 0; j < n; ++j) gsum[j] += gxb[j];
      }
      if (summed) std::copy(gsum, gsum + n, gx + i0);
      if (st.gv_init != nullptr) std::copy(gv, gv + n, st.gv_init + i0);
      if constexpr (PLIF) {
        double gk = 0.0;
        for (int64_t j = 0; j < n; ++j) gk += static_cast<double>(gkl[j]);
        gk_blocks[i0 / BLK] = gk;
      }
    }
}

template <int64_t CH, bool HARD, typename S>
void backward_impl(const NeuronConsts<S>& c, const NeuronBackwardArgs<S>& p, double* gk_blocks) {
  const BackwardState<S> st{p.v_init, p.gv_end, p.gv_init};
  const S *gout = p.gout, *x = p.x, *gpre = p.gpre;
  S* gx = p.gx;
  const int64_t xs = p.x_step, T = p.T, N = p.N, sur = p.sur;
  const S c1 = p.c1, c2 = p.c2, c3 = p.c3, a = c.a, rest = c.rest, vth = c.vth, vr = c.vr,
          v0 = c.v0;
  const bool detach = p.detach;
  for_blocks(N, T, [=](int64_t begin, int64_t end) {
    backward_range<CH, HARD, S>(gout, x, xs, gx, gpre, sur, c1, c2, c3, detach, T, N, a, rest,
                                vth, vr, v0, gk_blocks, st, begin, end);
  });
}

}  // namespace

// The caller (bindings.cpp) has checked that c.charge is a ChargeMode and p.sur a SurrogateKind.
template <typename S>
double neuron_backward_raw(const NeuronConsts<S>& c, const NeuronBackwardArgs<S>& p) {
  const int64_t nblocks = (p.N + BLK - 1) / BLK;
  std::vector<double> gk(static_cast<size_t>(nblocks), 0.0);
#define SNN_BWD_CH(CH)                                     \
  if (c.hard) backward_impl<CH, true, S>(c, p, gk.data()); \
  else backward_impl<CH, false, S>(c, p, gk.data());
  switch (c.charge) {
    case kChargeIf: SNN_BWD_CH(kChargeIf) break;
    case kChargeLif: SNN_BWD_CH(kChargeLif) break;
    case kChargeLifNodecay: SNN_BWD_CH(kChargeLifNodecay) break;
    case kChargePlif: SNN_BWD_CH(kChargePlif) break;
    case kChargePlifNodecay: SNN_BWD_CH(kChargePlifNodecay) break;
    case kChargeMul: SNN_BWD_CH(kChargeMul) break;
    case kChargeMulNodecay: SNN_BWD_CH(kChargeMulNodecay) break;
    default: break;
  }
#undef SNN_BWD_CH
  double total = 0.0;
  for (double v : gk) total += v;
  return total;
}

template double neuron_backward_raw<float>(const NeuronConsts<float>&,
                                           const NeuronBackwardArgs<float>&);
template double neuron_backward_raw<double>(const NeuronConsts<double>&,
                                            const NeuronBackwardArgs<double>&);

}  // namespace snnkit
