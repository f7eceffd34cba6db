"""C++ source of the fused CPU kernels (neuron forward/backward through time, event input).

Compiled once per machine by :mod:`snnkit.kernels.cpu.build` with ``torch.utils.cpp_extension``.
Every float operation of the neuron kernels mirrors the PyTorch expression of
:mod:`snnkit.components.functional` in the same order (the build disables FMA contraction), so spikes are
bit-identical to the reference loop; gradients agree to rounding.
"""

from __future__ import annotations

# Charge modes (must match CHARGE_* in snnkit.kernels.forms).
#   0 IF:            H = V + X
#   1 LIF decay:     H = V + (X - (V - rest)) / a          (a = tau)
#   2 LIF no decay:  H = V - (V - rest) / a + X
#   3 PLIF decay:    H = V + (X - (V - rest)) * a          (a = k = sigmoid(w))
#   4 PLIF no decay: H = V - (V - rest) * a + X
#   5, 6: as 3, 4 without dL/dk (LIF with a power-of-two tau, a = 1/tau exactly; frozen PLIF)
# Surrogate ids (must match SURROGATE_IDS in snnkit.kernels.forms); c1, c2 are precomputed in
# Python exactly as the PyTorch formula forms its scalar constants.
SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#include <mutex>
#include <cstdlib>
#include <sys/mman.h>
#include <type_traits>

namespace {

constexpr int64_t BLK = 256;

// A small cache of large output buffers. Fresh multi-megabyte allocations are mmap'ed and
// page-faulted (and zeroed by the OS) on every call, which costs more than the kernels
// themselves; outputs made by pooled_empty return their memory here when the tensor dies and
// the next call of the same size reuses it. At most POOL_SLOTS buffers / POOL_BYTES are kept.
constexpr size_t POOL_MIN = size_t(1) << 20;     // smaller tensors use the ordinary allocator
constexpr size_t POOL_BYTES = size_t(1) << 30;
constexpr size_t POOL_SLOTS = 8;
constexpr size_t HUGE_PAGE = size_t(1) << 21;

struct Pool {
  std::mutex mutex;
  std::vector<std::pair<size_t, void*>> free;
  size_t held = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may die after static destruction
  return *p;
}

void pool_put(void* ptr, size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.free.size() < POOL_SLOTS && p.held + bytes <= POOL_BYTES) {
      p.free.emplace_back(bytes, ptr);
      p.held += bytes;
      return;
    }
  }
  std::free(ptr);
}

void* pool_get(size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    for (size_t i = 0; i < p.free.size(); ++i) {
      if (p.free[i].first == bytes) {
        void* ptr = p.free[i].second;
        p.free.erase(p.free.begin() + static_cast<std::ptrdiff_t>(i));
        p.held -= bytes;
        return ptr;
      }
    }
  }
  void* ptr = std::aligned_alloc(HUGE_PAGE, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
  TORCH_CHECK(ptr != nullptr, "snnkit: out of memory allocating ", bytes, " bytes");
#ifdef MADV_HUGEPAGE
  madvise(ptr, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
  return ptr;
}

at::Tensor pooled_empty_like(const at::Tensor& like) {
  const size_t bytes = static_cast<size_t>(like.numel()) * like.element_size();
  if (bytes < POOL_MIN) return at::empty_like(like, at::MemoryFormat::Contiguous);
  void* ptr = pool_get(bytes);
  return at::from_blob(ptr, like.sizes(), [bytes](void* q) { pool_put(q, bytes); },
                       like.options());
}

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
template <typename S>
void surrogate_block(int64_t sur, S c1, S c2, const S* __restrict d, S* __restrict g, int64_t n) {
  const S one = S(1);
  switch (sur) {
    case 1:  // Sigmoid: s = 1/(1 + e^(-a d)); g = a s (1 - s)
      for (int64_t j = 0; j < n; ++j) {
        S s = one / (one + exp_(-(c1 * d[j])));
        g[j] = c1 * s * (one - s);
      }
      break;
    case 2:  // ATan: (a/2) / (1 + (pi/2 a d)^2)
      for (int64_t j = 0; j < n; ++j) { S z = c2 * d[j]; g[j] = c1 / (one + z * z); }
      break;
    case 3:  // PiecewiseQuadratic: relu(a - a^2 |d|)
      for (int64_t j = 0; j < n; ++j) { S z = c1 - c2 * std::abs(d[j]); g[j] = z > S(0) ? z : S(0); }
      break;
    case 4:  // PiecewiseExp: (a/2) e^(-a |d|)
      for (int64_t j = 0; j < n; ++j) g[j] = c1 * exp_(c2 * std::abs(d[j]));
      break;
    case 5:  // SoftSign: (a/2) / (1 + |a d|)^2
      for (int64_t j = 0; j < n; ++j) { S u = one + std::abs(c2 * d[j]); g[j] = c1 / (u * u); }
      break;
    case 6:  // Erf: (a/sqrt(pi)) e^(-(a d)^2)
      for (int64_t j = 0; j < n; ++j) { S z = c2 * d[j]; g[j] = c1 * exp_(-(z * z)); }
      break;
    case 7:  // SuperSpike: a / (1 + |d|)^2
      for (int64_t j = 0; j < n; ++j) { S u = one + std::abs(d[j]); g[j] = c1 / (u * u); }
      break;
    case 8:  // FastSigmoid: 1 / (slope |d| + 1)^2
      for (int64_t j = 0; j < n; ++j) { S u = c1 * std::abs(d[j]) + one; g[j] = one / (u * u); }
      break;
    case 9:  // PiecewiseLeakyReLU: |d| < w ? 1/(2w) : c (three constants: see backward_range)
      break;
    case 10:  // Rect: a * (|d| < 0.5/a)
      for (int64_t j = 0; j < n; ++j) g[j] = std::abs(d[j]) < c2 ? c1 : S(0);
      break;
    case 11:  // QPseudoSpike: (1 + 2/(a-1) |d|)^(-a)
      for (int64_t j = 0; j < n; ++j) g[j] = std::pow(one + c1 * std::abs(d[j]), c2);
      break;
    case 12:  // StraightThrough
      for (int64_t j = 0; j < n; ++j) g[j] = one;
      break;
    default:
      TORCH_CHECK(false, "snnkit: unknown surrogate id ", sur);
  }
}

template <int CH, typename S>
inline S charge(S v, S x, S a, S rest) {
  if constexpr (CH == 0) return v + x;
  else if constexpr (CH == 1) return v + (x - (v - rest)) / a;
  else if constexpr (CH == 2) return v - (v - rest) / a + x;
  else if constexpr (CH == 3 || CH == 5) return v + (x - (v - rest)) * a;
  else return v - (v - rest) * a + x;
}

template <bool HARD, typename S>
inline S reset_v(S h, S s, S vth, S vr) {
  if constexpr (HARD) return h * (S(1) - s) + vr * s;
  else return h - vth * s;
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
template <int CH, bool HARD, bool SAVE, bool REC, typename S>
void forward_range(const S* __restrict x, S* __restrict spk, S* __restrict hs,
                   S* __restrict vrec, int64_t T, int64_t N, S a, S rest, S vth, S vr, S v0,
                   int64_t begin, int64_t end) {
    S v[BLK];
    for (int64_t i0 = begin; i0 < end; i0 += BLK) {
      const int64_t n = std::min<int64_t>(BLK, end - i0);
      for (int64_t j = 0; j < n; ++j) v[j] = v0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t off = t * N + i0;
        const S* xt = x + off;
        S* st = spk + off;
        for (int64_t j = 0; j < n; ++j) {
          const S h = charge<CH, S>(v[j], xt[j], a, rest);
          const S s = (h - vth) >= S(0) ? S(1) : S(0);
          st[j] = s;
          if constexpr (SAVE) hs[off + j] = h;
          const S vn = reset_v<HARD, S>(h, s, vth, vr);
          if constexpr (REC) vrec[off + j] = vn;
          v[j] = vn;
        }
      }
    }
}

template <int CH, bool HARD, bool SAVE, bool REC, typename S>
void forward_impl(const S* x, S* spk, S* hs, S* vrec, int64_t T, int64_t N, S a, S rest, S vth,
                  S vr, S v0) {
  for_blocks(N, T, [=](int64_t begin, int64_t end) {
    forward_range<CH, HARD, SAVE, REC, S>(x, spk, hs, vrec, T, N, a, rest, vth, vr, v0, begin, end);
  });
}

// Backward through time for one block of elements at a time: H is recomputed forward into a
// block-local [T, BLK] buffer (from x, exactly as the forward pass computed it), then the
// gradient runs from t = T-1 down to 0. Nothing but x is kept between the two passes.
template <int CH, bool HARD, bool DETACH, typename S>
void backward_range(const S* __restrict gout, const S* __restrict x, S* __restrict gx,
                    const S* __restrict gpre, int64_t sur, S c1, S c2, S c3, int64_t T,
                    int64_t N, S a, S rest, S vth, S vr, S v0, double* gk_blocks,
                    int64_t begin, int64_t end) {
  constexpr bool PLIF = (CH == 3 || CH == 4);
    std::vector<S> hbuf(static_cast<size_t>(T * BLK));
    S* hb = hbuf.data();
    S gv[BLK], d[BLK], sg[BLK], v[BLK], vp[BLK], gkl[BLK];
    for (int64_t i0 = begin; i0 < end; i0 += BLK) {
      const int64_t n = std::min<int64_t>(BLK, end - i0);
      for (int64_t j = 0; j < n; ++j) v[j] = v0;
      for (int64_t t = 0; t < T; ++t) {
        const S* xt = x + t * N + i0;
        S* ht = hb + t * BLK;
        for (int64_t j = 0; j < n; ++j) {
          const S h = charge<CH, S>(v[j], xt[j], a, rest);
          const S s = (h - vth) >= S(0) ? S(1) : S(0);
          ht[j] = h;
          v[j] = reset_v<HARD, S>(h, s, vth, vr);
        }
      }
      for (int64_t j = 0; j < n; ++j) { gv[j] = S(0); gkl[j] = S(0); }
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t off = t * N + i0;
        const S* ht = hb + t * BLK;
        if (gpre != nullptr) {
          for (int64_t j = 0; j < n; ++j) sg[j] = gpre[off + j];
        } else if (sur == 9) {
          for (int64_t j = 0; j < n; ++j) sg[j] = std::abs(ht[j] - vth) < c1 ? c2 : c3;
        } else {
          for (int64_t j = 0; j < n; ++j) d[j] = ht[j] - vth;
          surrogate_block<S>(sur, c1, c2, d, sg, n);
        }
        const S* got = gout + off;
        S* gxt = gx + off;
        const S* xt = x + off;
        if constexpr (PLIF) {  // V(t-1) from H(t-1), exactly as the forward pass reset it
          if (t > 0) {
            const S* hp = hb + (t - 1) * BLK;
            for (int64_t j = 0; j < n; ++j) {
              const S hh = hp[j];
              const S ss = (hh - vth) >= S(0) ? S(1) : S(0);
              vp[j] = reset_v<HARD, S>(hh, ss, vth, vr);
            }
          } else {
            for (int64_t j = 0; j < n; ++j) vp[j] = v0;
          }
        }
        for (int64_t j = 0; j < n; ++j) {
          const S h = ht[j];
          const S s = (h - vth) >= S(0) ? S(1) : S(0);
          const S g_v = gv[j];
          S gh_r, gs_r;
          if constexpr (HARD) {
            gh_r = g_v * (S(1) - s);
            gs_r = DETACH ? S(0) : g_v * vr - g_v * h;
          } else {
            gh_r = g_v;
            gs_r = DETACH ? S(0) : -(g_v * vth);
          }
          const S gs = got[j] + gs_r;
          const S gh = gs * sg[j] + gh_r;
          S gxx, gvp;
          if constexpr (CH == 0) { gxx = gh; gvp = gh; }
          else if constexpr (CH == 1) { const S gb = gh / a; gxx = gb; gvp = gh - gb; }
          else if constexpr (CH == 2) { gxx = gh; gvp = gh - gh / a; }
          else if constexpr (CH == 3 || CH == 5) { const S gb = gh * a; gxx = gb; gvp = gh - gb; }
          else { gxx = gh; gvp = gh - gh * a; }
          if constexpr (PLIF) {
            if constexpr (CH == 3) gkl[j] += gh * (xt[j] - (vp[j] - rest));
            else gkl[j] += -(gh * (vp[j] - rest));
          }
          gxt[j] = gxx;
          gv[j] = gvp;
        }
      }
      if constexpr (PLIF) {
        double gk = 0.0;
        for (int64_t j = 0; j < n; ++j) gk += static_cast<double>(gkl[j]);
        gk_blocks[i0 / BLK] = gk;
      }
    }
}

template <int CH, bool HARD, bool DETACH, typename S>
void backward_impl(const S* gout, const S* x, S* gx, const S* gpre, int64_t sur, S c1, S c2,
                   S c3, int64_t T, int64_t N, S a, S rest, S vth, S vr, S v0,
                   double* gk_blocks) {
  for_blocks(N, T, [=](int64_t begin, int64_t end) {
    backward_range<CH, HARD, DETACH, S>(gout, x, gx, gpre, sur, c1, c2, c3, T, N, a, rest, vth,
                                        vr, v0, gk_blocks, begin, end);
  });
}

template <typename S>
std::vector<at::Tensor> forward_typed(const at::Tensor& x, int64_t ch, bool hard, S a, S rest,
                                      S vth, S vr, S v0, bool save, bool rec) {
  const int64_t T = x.size(0);
  const int64_t N = x.numel() / T;
  auto spk = pooled_empty_like(x);
  auto hs = save ? pooled_empty_like(x) : at::Tensor();
  auto vrec = rec ? pooled_empty_like(x) : at::Tensor();
  const S* xp = x.data_ptr<S>();
  S* sp = spk.data_ptr<S>();
  S* hp = save ? hs.data_ptr<S>() : nullptr;
  S* vp = rec ? vrec.data_ptr<S>() : nullptr;
#define SNN_FWD(CH, HARD)                                                                   \
  if (save && rec) forward_impl<CH, HARD, true, true, S>(xp, sp, hp, vp, T, N, a, rest, vth, vr, v0); \
  else if (save) forward_impl<CH, HARD, true, false, S>(xp, sp, hp, vp, T, N, a, rest, vth, vr, v0); \
  else if (rec) forward_impl<CH, HARD, false, true, S>(xp, sp, hp, vp, T, N, a, rest, vth, vr, v0); \
  else forward_impl<CH, HARD, false, false, S>(xp, sp, hp, vp, T, N, a, rest, vth, vr, v0);
#define SNN_FWD_CH(CH) if (hard) { SNN_FWD(CH, true) } else { SNN_FWD(CH, false) }
  switch (ch) {
    case 0: SNN_FWD_CH(0) break;
    case 1: SNN_FWD_CH(1) break;
    case 2: SNN_FWD_CH(2) break;
    case 3: SNN_FWD_CH(3) break;
    case 4: SNN_FWD_CH(4) break;
    case 5: SNN_FWD_CH(5) break;
    case 6: SNN_FWD_CH(6) break;
    default: TORCH_CHECK(false, "snnkit: unknown charge mode ", ch);
  }
#undef SNN_FWD_CH
#undef SNN_FWD
  return {spk, hs, vrec};
}

template <typename S>
double backward_typed(const at::Tensor& gout, const at::Tensor& x, at::Tensor& gx,
                      const at::Tensor& gpre, int64_t ch, bool hard, bool detach, int64_t sur,
                      S c1, S c2, S c3, S a, S rest, S vth, S vr, S v0) {
  const int64_t T = x.size(0);
  const int64_t N = x.numel() / T;
  const int64_t nblocks = (N + BLK - 1) / BLK;
  std::vector<double> gk(static_cast<size_t>(nblocks), 0.0);
  const S* go = gout.data_ptr<S>();
  const S* xp = x.data_ptr<S>();
  S* gp = gx.data_ptr<S>();
  const S* pre = gpre.defined() ? gpre.data_ptr<S>() : nullptr;
#define SNN_BWD(CH, HARD, DET) \
  backward_impl<CH, HARD, DET, S>(go, xp, gp, pre, sur, c1, c2, c3, T, N, a, rest, vth, vr, v0, gk.data());
#define SNN_BWD_CH(CH)                                   \
  if (hard) { if (detach) { SNN_BWD(CH, true, true) } else { SNN_BWD(CH, true, false) } } \
  else { if (detach) { SNN_BWD(CH, false, true) } else { SNN_BWD(CH, false, false) } }
  switch (ch) {
    case 0: SNN_BWD_CH(0) break;
    case 1: SNN_BWD_CH(1) break;
    case 2: SNN_BWD_CH(2) break;
    case 3: SNN_BWD_CH(3) break;
    case 4: SNN_BWD_CH(4) break;
    case 5: SNN_BWD_CH(5) break;
    case 6: SNN_BWD_CH(6) break;
    default: TORCH_CHECK(false, "snnkit: unknown charge mode ", ch);
  }
#undef SNN_BWD_CH
#undef SNN_BWD
  double total = 0.0;
  for (double v : gk) total += v;
  return total;
}

void check_seq(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu(), "snnkit cpp kernel: ", what, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), "snnkit cpp kernel: ", what, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
              "snnkit cpp kernel: ", what, " must be float32 or float64");
  TORCH_CHECK(t.dim() >= 1 && t.size(0) >= 1, "snnkit cpp kernel: ", what, " must be [T, ...]");
}

}  // namespace

// Returns [spikes, H (or undefined), V trace (or undefined)].
std::vector<at::Tensor> neuron_forward(at::Tensor x, int64_t charge_mode, bool hard, double a,
                                       double rest, double vth, double vr, double v0, bool save,
                                       bool record) {
  check_seq(x, "x");
  if (x.scalar_type() == at::kFloat)
    return forward_typed<float>(x, charge_mode, hard, (float)a, (float)rest, (float)vth,
                                (float)vr, (float)v0, save, record);
  return forward_typed<double>(x, charge_mode, hard, a, rest, vth, vr, v0, save, record);
}

// Returns [dL/dX, sum over all elements of dL/dk (PLIF only; 0 otherwise) as a float64
// scalar]. gpre: precomputed g'(H - V_th) for generic surrogates, or None.
std::vector<at::Tensor> neuron_backward(at::Tensor gout, at::Tensor x, c10::optional<at::Tensor> gpre,
                                       int64_t charge_mode, bool hard, bool detach, int64_t sur,
                                       double c1, double c2, double c3, double a, double rest,
                                       double vth, double vr, double v0) {
  check_seq(x, "x");
  check_seq(gout, "grad_output");
  TORCH_CHECK(gout.sizes() == x.sizes(), "snnkit cpp kernel: shape mismatch");
  TORCH_CHECK(gout.scalar_type() == x.scalar_type(), "snnkit cpp kernel: dtype mismatch");
  at::Tensor pre = gpre.has_value() ? *gpre : at::Tensor();
  if (pre.defined()) check_seq(pre, "surrogate derivative");
  auto gx = pooled_empty_like(x);
  double gk;
  if (x.scalar_type() == at::kFloat)
    gk = backward_typed<float>(gout, x, gx, pre, charge_mode, hard, detach, sur, (float)c1,
                               (float)c2, (float)c3, (float)a, (float)rest, (float)vth,
                               (float)vr, (float)v0);
  else
    gk = backward_typed<double>(gout, x, gx, pre, charge_mode, hard, detach, sur, c1, c2, c3, a,
                                rest, vth, vr, v0);
  return {gx, at::scalar_tensor(gk, x.options().dtype(at::kDouble))};
}

// ---------------------------------------------------------------------------------------------
// Event-driven Poisson input layer.
//
// Draw for (batch b, pixel d, step t): word = mix64(seed + (((b*D + d)*Q + t/4) + 1) * GOLDEN),
// r = bits [16 (t%4), 16 (t%4) + 16) of word, Q = ceil(T/4). Spike iff r < thr(v) with
// thr(v) = round(v * 65536 / 255) = (v * 131072 + 255) / 510 (integer division), so
// P(spike) = thr/65536 = v/255 within 2^-17, v = 0 never fires and v = 255 always fires.

namespace {

constexpr uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint32_t threshold16(uint32_t v) { return (v * 131072u + 255u) / 510u; }

// Fired steps of one (b, d) as a bitmask words[NW] (bit t%64 of word t/64).
inline void draw_bits(uint64_t seed, int64_t b, int64_t d, int64_t D, int64_t T, uint32_t thr,
                      uint64_t* words) {
  const int64_t Q = (T + 3) / 4;
  const int64_t NW = (T + 63) / 64;
  for (int64_t w = 0; w < NW; ++w) words[w] = 0;
  const uint64_t base = static_cast<uint64_t>(b * D + d) * static_cast<uint64_t>(Q);
  for (int64_t q = 0; q < Q; ++q) {
    const uint64_t word = mix64(seed + (base + static_cast<uint64_t>(q) + 1) * GOLDEN);
    for (int64_t k = 0; k < 4; ++k) {
      const int64_t t = 4 * q + k;
      if (t >= T) break;
      const uint32_t r = static_cast<uint32_t>((word >> (16 * k)) & 0xFFFFu);
      words[t >> 6] |= static_cast<uint64_t>(r < thr) << (t & 63);
    }
  }
}

inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
#define SNNKIT_EVENT_AVX512 1
#include <immintrin.h>

// The same draws as draw_bits, eight 64-bit words per instruction: words q = 0 .. 8*ceil(T/32)
// of pixel (b, d) into buf (words past Q belong to no step and are masked off below), then
// the 16-bit lanes (lane t = draw of step t, little-endian) compared with thr 32 at a time.
inline void draw_bits_avx512(uint64_t seed, int64_t b, int64_t d, int64_t D, int64_t T,
                             uint32_t thr, uint64_t* __restrict buf, uint64_t* __restrict words) {
  const int64_t Q = (T + 3) / 4;
  const int64_t chunks = (T + 31) / 32;            // 32 steps (8 words) per chunk
  const uint64_t base = static_cast<uint64_t>(b * D + d) * static_cast<uint64_t>(Q) + 1;
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i golden = _mm512_set1_epi64(static_cast<int64_t>(GOLDEN));
  const __m512i m1 = _mm512_set1_epi64(static_cast<int64_t>(0xBF58476D1CE4E5B9ULL));
  const __m512i m2 = _mm512_set1_epi64(static_cast<int64_t>(0x94D049BB133111EBULL));
  const __m512i vseed = _mm512_set1_epi64(static_cast<int64_t>(seed));
  for (int64_t c = 0; c < chunks; ++c) {
    __m512i ctr = _mm512_add_epi64(_mm512_set1_epi64(static_cast<int64_t>(base + 8 * c)), lane);
    __m512i z = _mm512_add_epi64(vseed, _mm512_mullo_epi64(ctr, golden));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), m1);
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), m2);
    z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
    _mm512_storeu_si512(buf + 8 * c, z);
  }
  const int64_t NW = (T + 63) / 64;
  for (int64_t w = 0; w < NW; ++w) words[w] = 0;
  const uint16_t* r = reinterpret_cast<const uint16_t*>(buf);
  const __m512i vthr = _mm512_set1_epi16(static_cast<int16_t>(static_cast<uint16_t>(thr)));
  for (int64_t c = 0; c < chunks; ++c) {
    uint64_t m = thr >= 65536u ? 0xFFFFFFFFull
        : static_cast<uint64_t>(_mm512_cmplt_epu16_mask(_mm512_loadu_si512(r + 32 * c), vthr));
    const int64_t left = T - 32 * c;
    if (left < 32) m &= (1ull << left) - 1;
    words[c >> 1] |= m << (32 * (c & 1));
  }
}

// Forward for float32 and C <= 16: W^T rows padded to 16 lanes (one zmm), per-sample
// accumulator [T][16] in L1, one vector add per fired event.
void event_forward_avx512(const uint8_t* __restrict x, const float* __restrict wt,
                          float* __restrict out, uint64_t* __restrict masks, int64_t B, int64_t D,
                          int64_t C, int64_t T, uint64_t seed, int64_t b0, int64_t b1) {
  const int64_t NW = (T + 63) / 64;
  const int64_t chunks = (T + 31) / 32;
  float* acc = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(T) * 64));
  std::vector<uint64_t> bufv(static_cast<size_t>(8 * chunks)), local(static_cast<size_t>(NW));
  uint64_t* buf = bufv.data();
  for (int64_t b = b0; b < b1; ++b) {
    std::memset(acc, 0, static_cast<size_t>(T) * 64);
    const uint8_t* xb = x + b * D;
    for (int64_t d = 0; d < D; ++d) {
      const uint32_t v = xb[d];
      if (v == 0) continue;
      uint64_t* words = masks != nullptr ? masks + (b * D + d) * NW : local.data();
      draw_bits_avx512(seed, b, d, D, T, threshold16(v), buf, words);
      const __m512 wv = _mm512_loadu_ps(wt + d * 16);
      for (int64_t w = 0; w < NW; ++w) {
        uint64_t bits = words[w];
        while (bits) {
          float* a = acc + (64 * w + ctz64(bits)) * 16;
          bits &= bits - 1;
          _mm512_store_ps(a, _mm512_add_ps(_mm512_load_ps(a), wv));
        }
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      float* o = out + (t * B + b) * C;
      for (int64_t c = 0; c < C; ++c) o[c] = acc[t * 16 + c];
    }
  }
  std::free(acc);
}

// Backward for float32 and C <= 16, samples [b0, b1) into gwt [D][16] (zeroed by the caller):
// the sample's dL/dout rows packed to [T][16] (L1), then per lit pixel a register sum over
// its fired steps (two accumulators to hide the add latency).
void event_backward_avx512(const float* __restrict g, const uint64_t* __restrict masks,
                           float* __restrict gwt, int64_t B, int64_t D, int64_t C, int64_t T,
                           int64_t b0, int64_t b1) {
  const int64_t NW = (T + 63) / 64;
  float* gb = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(T) * 64));
  const __mmask16 cm = static_cast<__mmask16>((1u << C) - 1u);
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t t = 0; t < T; ++t)
      _mm512_store_ps(gb + t * 16, _mm512_maskz_loadu_ps(cm, g + (t * B + b) * C));
    for (int64_t d = 0; d < D; ++d) {
      const uint64_t* words = masks + (b * D + d) * NW;
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
      bool any = false;
      for (int64_t w = 0; w < NW; ++w) {
        uint64_t bits = words[w];
        any |= bits != 0;
        while (bits) {
          a0 = _mm512_add_ps(a0, _mm512_load_ps(gb + (64 * w + ctz64(bits)) * 16));
          bits &= bits - 1;
          if (!bits) break;
          a1 = _mm512_add_ps(a1, _mm512_load_ps(gb + (64 * w + ctz64(bits)) * 16));
          bits &= bits - 1;
        }
      }
      if (!any) continue;
      float* dst = gwt + d * 16;
      _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_add_ps(a0, a1)));
    }
  }
  std::free(gb);
}
#endif

// Adds src[0:cp) to dst[0:cp); CPT > 0 fixes the width at compile time (one vector op).
template <int CPT, typename S>
inline void add_row(S* __restrict dst, const S* __restrict src, int64_t cp) {
  if constexpr (CPT > 0) {
    for (int c = 0; c < CPT; ++c) dst[c] += src[c];
  } else {
    for (int64_t c = 0; c < cp; ++c) dst[c] += src[c];
  }
}

// Samples [b0, b1): draw the spikes of every lit pixel, add W^T rows of fired events.
template <int CPT, typename S>
void event_forward_range(const uint8_t* __restrict x, const S* __restrict wt, S* __restrict out,
                         uint64_t* __restrict masks, int64_t B, int64_t D, int64_t C, int64_t T,
                         int64_t CP, uint64_t seed, int64_t b0, int64_t b1) {
  const int64_t NW = (T + 63) / 64;
  std::vector<S> accv(static_cast<size_t>(T * CP));
  std::vector<uint64_t> local(static_cast<size_t>(NW));
  S* acc = accv.data();
  for (int64_t b = b0; b < b1; ++b) {
    std::fill(accv.begin(), accv.end(), S(0));
    const uint8_t* xb = x + b * D;
    for (int64_t d = 0; d < D; ++d) {
      const uint32_t v = xb[d];
      if (v == 0) continue;
      uint64_t* words = masks != nullptr ? masks + (b * D + d) * NW : local.data();
      draw_bits(seed, b, d, D, T, threshold16(v), words);
      const S* wrow = wt + d * CP;
      for (int64_t w = 0; w < NW; ++w) {
        uint64_t bits = words[w];
        while (bits) {
          const int64_t t = 64 * w + ctz64(bits);
          bits &= bits - 1;
          add_row<CPT, S>(acc + t * CP, wrow, CP);
        }
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      S* o = out + (t * B + b) * C;
      const S* a = acc + t * CP;
      for (int64_t c = 0; c < C; ++c) o[c] = a[c];
    }
  }
}

template <typename S>
void event_forward_typed(const uint8_t* x, const S* W, S* out, uint64_t* masks, int64_t B,
                         int64_t D, int64_t C, int64_t T, uint64_t seed) {
  const int64_t CP = (C + 15) / 16 * 16;
  // W^T padded to [D, CP] so each event is one fixed-width vector add.
  std::vector<S> wtv(static_cast<size_t>(D * CP), S(0));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t d = 0; d < D; ++d) wtv[d * CP + c] = W[c * D + d];
  const S* wt = wtv.data();
#ifdef SNNKIT_EVENT_AVX512
  if constexpr (std::is_same_v<S, float>) {
    if (CP == 16) {
      at::parallel_for(0, B, 1, [=](int64_t b0, int64_t b1) {
        event_forward_avx512(x, wt, out, masks, B, D, C, T, seed, b0, b1);
      });
      return;
    }
  }
#endif
  at::parallel_for(0, B, 1, [=](int64_t b0, int64_t b1) {
    if (CP == 16) event_forward_range<16, S>(x, wt, out, masks, B, D, C, T, CP, seed, b0, b1);
    else event_forward_range<0, S>(x, wt, out, masks, B, D, C, T, CP, seed, b0, b1);
  });
}

// Pixels [d0, d1): dL/dW^T[d] = sum over fired (t, b) of grad[t, b] (padded rows gp).
template <int CPT, typename S>
void event_backward_range(const S* __restrict gp, const uint64_t* __restrict masks,
                          S* __restrict gwt, int64_t B, int64_t D, int64_t T, int64_t CP,
                          int64_t d0, int64_t d1) {
  const int64_t NW = (T + 63) / 64;
  for (int64_t d = d0; d < d1; ++d) {
    S* acc = gwt + d * CP;
    for (int64_t b = 0; b < B; ++b) {
      const uint64_t* words = masks + (b * D + d) * NW;
      for (int64_t w = 0; w < NW; ++w) {
        uint64_t bits = words[w];
        while (bits) {
          const int64_t t = 64 * w + ctz64(bits);
          bits &= bits - 1;
          add_row<CPT, S>(acc, gp + (t * B + b) * CP, CP);
        }
      }
    }
  }
}

template <typename S>
void event_backward_typed(const S* g, const uint64_t* masks, S* gw, int64_t B, int64_t D,
                          int64_t C, int64_t T) {
  const int64_t CP = (C + 15) / 16 * 16;
#ifdef SNNKIT_EVENT_AVX512
  if constexpr (std::is_same_v<S, float>) {
    if (CP == 16) {
      // Samples in fixed groups of EVB, one partial dL/dW^T per group, summed in group order:
      // the result does not depend on the number of threads.
      constexpr int64_t EVB = 8;
      const int64_t groups = (B + EVB - 1) / EVB;
      std::vector<float> part(static_cast<size_t>(groups * D * 16), 0.0f);
      float* pp = part.data();
      at::parallel_for(0, groups, 1, [=](int64_t g0, int64_t g1) {
        for (int64_t k = g0; k < g1; ++k)
          event_backward_avx512(g, masks, pp + k * D * 16, B, D, C, T, k * EVB,
                                std::min(B, (k + 1) * EVB));
      });
      for (int64_t k = 1; k < groups; ++k) {
        const float* src = pp + k * D * 16;
        for (int64_t i = 0; i < D * 16; ++i) pp[i] += src[i];
      }
      for (int64_t c = 0; c < C; ++c)
        for (int64_t d = 0; d < D; ++d) gw[c * D + d] = pp[d * 16 + c];
      return;
    }
  }
#endif
  std::vector<S> gpv(static_cast<size_t>(T * B * CP), S(0));  // grad_out padded to CP
  for (int64_t i = 0; i < T * B; ++i)
    for (int64_t c = 0; c < C; ++c) gpv[i * CP + c] = g[i * C + c];
  std::vector<S> gwtv(static_cast<size_t>(D * CP), S(0));
  const S* gp = gpv.data();
  S* gwt = gwtv.data();
  at::parallel_for(0, D, 16, [=](int64_t d0, int64_t d1) {
    if (CP == 16) event_backward_range<16, S>(gp, masks, gwt, B, D, T, CP, d0, d1);
    else event_backward_range<0, S>(gp, masks, gwt, B, D, T, CP, d0, d1);
  });
  for (int64_t c = 0; c < C; ++c)
    for (int64_t d = 0; d < D; ++d) gw[c * D + d] = gwt[d * CP + c];
}

}  // namespace

// x: uint8 [B, D]; W: [C, D]. Returns [out [T, B, C] (no bias), masks int64 [B, D, ceil(T/64)]
// (undefined unless save)].
std::vector<at::Tensor> event_forward(at::Tensor x, at::Tensor W, int64_t T, int64_t seed,
                                      bool save) {
  TORCH_CHECK(x.device().is_cpu() && W.device().is_cpu(), "snnkit event input: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == at::kByte && x.dim() == 2 && x.is_contiguous(),
              "snnkit event input: x must be contiguous uint8 [B, D]");
  TORCH_CHECK(W.dim() == 2 && W.size(1) == x.size(1) && W.is_contiguous(),
              "snnkit event input: W must be contiguous [C, D]");
  TORCH_CHECK(T >= 1, "snnkit event input: T must be >= 1");
  const int64_t B = x.size(0), D = x.size(1), C = W.size(0);
  const int64_t NW = (T + 63) / 64;
  auto out = at::empty({T, B, C}, W.options());
  auto masks = save ? at::zeros({B, D, NW}, x.options().dtype(at::kLong)) : at::Tensor();
  uint64_t* mp = save ? reinterpret_cast<uint64_t*>(masks.data_ptr<int64_t>()) : nullptr;
  const uint64_t s = static_cast<uint64_t>(seed);
  if (W.scalar_type() == at::kFloat)
    event_forward_typed<float>(x.data_ptr<uint8_t>(), W.data_ptr<float>(), out.data_ptr<float>(),
                               mp, B, D, C, T, s);
  else if (W.scalar_type() == at::kDouble)
    event_forward_typed<double>(x.data_ptr<uint8_t>(), W.data_ptr<double>(),
                                out.data_ptr<double>(), mp, B, D, C, T, s);
  else
    TORCH_CHECK(false, "snnkit event input: W must be float32 or float64");
  return {out, masks};
}

// grad_out [T, B, C], masks [B, D, NW] -> grad_W [C, D] (sum of grad_out over fired events).
at::Tensor event_backward(at::Tensor g, at::Tensor masks, int64_t D) {
  TORCH_CHECK(g.dim() == 3 && g.is_contiguous(), "snnkit event input: grad must be [T, B, C]");
  const int64_t T = g.size(0), B = g.size(1), C = g.size(2);
  TORCH_CHECK(masks.dim() == 3 && masks.size(0) == B && masks.size(1) == D &&
                  masks.size(2) == (T + 63) / 64, "snnkit event input: mask shape mismatch");
  auto gw = at::empty({C, D}, g.options());
  const uint64_t* mp = reinterpret_cast<const uint64_t*>(masks.data_ptr<int64_t>());
  if (g.scalar_type() == at::kFloat)
    event_backward_typed<float>(g.data_ptr<float>(), mp, gw.data_ptr<float>(), B, D, C, T);
  else if (g.scalar_type() == at::kDouble)
    event_backward_typed<double>(g.data_ptr<double>(), mp, gw.data_ptr<double>(), B, D, C, T);
  else
    TORCH_CHECK(false, "snnkit event input: grad must be float32 or float64");
  return gw;
}

// Dense spikes [T, B, D] of the same draws (for tests and the dense equivalent).
at::Tensor event_spikes(at::Tensor x, int64_t T, int64_t seed) {
  TORCH_CHECK(x.scalar_type() == at::kByte && x.dim() == 2 && x.is_contiguous(),
              "snnkit event input: x must be contiguous uint8 [B, D]");
  const int64_t B = x.size(0), D = x.size(1);
  const int64_t NW = (T + 63) / 64;
  auto out = at::zeros({T, B, D}, x.options().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const uint8_t* xp = x.data_ptr<uint8_t>();
  std::vector<uint64_t> words(static_cast<size_t>(NW));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < D; ++d) {
      const uint32_t v = xp[b * D + d];
      if (v == 0) continue;
      draw_bits(static_cast<uint64_t>(seed), b, d, D, T, threshold16(v), words.data());
      for (int64_t t = 0; t < T; ++t)
        if ((words[t >> 6] >> (t & 63)) & 1u) o[(t * B + b) * D + d] = 1.0f;
    }
  return out;
}
"""

FUNCTIONS = ["neuron_forward", "neuron_backward", "event_forward", "event_backward", "event_spikes"]
