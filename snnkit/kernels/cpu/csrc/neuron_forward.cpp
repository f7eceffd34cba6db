// Fused neuron loop, forward: H = charge(V, X); S = Θ(H − V_th); V = reset(H, S), per block of
// elements over t (see neuron_common.h).
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "constants.h"
#include "entry_points.h"
#include "neuron_common.h"
#include "pool.h"

namespace snnkit {
namespace {

using namespace neuron_detail;

// H and the reset V of a block are kept in local arrays and copied out only when asked for
// (save: H for a generic surrogate's backward; rec: the V trace), so those options cost no
// extra instantiations (build time) and nothing when off. st.v_init: V(−1) per element (null:
// the scalar v0); st.v_end: where V(T−1) goes (null: not kept).
template <int64_t CH, bool HARD, typename S>
void forward_range(const S* __restrict x, S* __restrict spk, S* __restrict hs,
                   S* __restrict vrec, int64_t T, int64_t N, S a, S rest, S vth, S vr, S v0,
                   ForwardState<S> st, int64_t begin, int64_t end) {
  S v[BLK], h[BLK];
  for (int64_t i0 = begin; i0 < end; i0 += BLK) {
    const int64_t n = std::min<int64_t>(BLK, end - i0);
    init_block(v, st.v_init, v0, i0, n);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t off = t * N + i0;
      const S* xt = x + off;
      S* st = spk + off;
      for (int64_t j = 0; j < n; ++j) {
        const S hh = charge<CH, S>(v[j], xt[j], a, rest);
        const S s = (hh - vth) >= S(0) ? S(1) : S(0);
        st[j] = s;
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
void forward_impl(const S* x, S* spk, S* hs, S* vrec, int64_t T, int64_t N, S a, S rest, S vth,
                  S vr, S v0, ForwardState<S> st) {
  for_blocks(N, T, [=](int64_t begin, int64_t end) {
    forward_range<CH, HARD, S>(x, spk, hs, vrec, T, N, a, rest, vth, vr, v0, st, begin, end);
  });
}

template <typename S>
std::vector<at::Tensor> forward_typed(const at::Tensor& x, int64_t ch, bool hard, S a, S rest,
                                      S vth, S vr, S v0, bool save, bool rec,
                                      const at::Tensor& v_init) {
  const int64_t T = x.size(0);
  const int64_t N = x.numel() / T;
  auto spk = pooled_empty_like(x);
  auto hs = save ? pooled_empty_like(x) : at::Tensor();
  auto vrec = rec ? pooled_empty_like(x) : at::Tensor();
  auto v_end = v_init.defined() ? at::empty_like(v_init) : at::Tensor();
  const ForwardState<S> st{v_init.defined() ? v_init.data_ptr<S>() : nullptr,
                           v_init.defined() ? v_end.data_ptr<S>() : nullptr};
  const S* xp = x.data_ptr<S>();
  S* sp = spk.data_ptr<S>();
  S* hp = save ? hs.data_ptr<S>() : nullptr;
  S* vp = rec ? vrec.data_ptr<S>() : nullptr;
#define SNN_FWD(CH)                                                              \
  if (hard) forward_impl<CH, true, S>(xp, sp, hp, vp, T, N, a, rest, vth, vr, v0, st); \
  else forward_impl<CH, false, S>(xp, sp, hp, vp, T, N, a, rest, vth, vr, v0, st);
  // PLIF charges as the multiplying modes do (a = k): only its backward differs.
  switch (ch) {
    case kChargeIf: SNN_FWD(kChargeIf) break;
    case kChargeLif: SNN_FWD(kChargeLif) break;
    case kChargeLifNodecay: SNN_FWD(kChargeLifNodecay) break;
    case kChargePlif:
    case kChargeMul: SNN_FWD(kChargeMul) break;
    case kChargePlifNodecay:
    case kChargeMulNodecay: SNN_FWD(kChargeMulNodecay) break;
    default: TORCH_CHECK(false, "snnkit: unknown charge mode ", ch);
  }
#undef SNN_FWD
  return {spk, hs, vrec, v_end};
}

}  // namespace

std::vector<at::Tensor> neuron_forward(at::Tensor x, int64_t charge_mode, bool hard, double a,
                                       double rest, double vth, double vr, double v0, bool save,
                                       bool record, c10::optional<at::Tensor> v_init) {
  check_seq(x, "x");
  const at::Tensor vi = v_init.has_value() ? *v_init : at::Tensor();
  if (vi.defined()) check_state(vi, x, "initial V");
  if (x.scalar_type() == at::kFloat)
    return forward_typed<float>(x, charge_mode, hard, (float)a, (float)rest, (float)vth,
                                (float)vr, (float)v0, save, record, vi);
  return forward_typed<double>(x, charge_mode, hard, a, rest, vth, vr, v0, save, record, vi);
}

}  // namespace snnkit
