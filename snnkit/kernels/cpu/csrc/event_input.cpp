// Event-driven Poisson input layer: the draws of snnkit.kernels.random_stream, fused with the
// first Linear layer (only fired events add a weight column) and its backward pass.
//
// Draw for (batch b, pixel d, step t): word = mix64(seed + (((b*D + d)*Q + t/4) + 1) * kGolden),
// r = bits [16 (t%4), 16 (t%4) + 16) of word, Q = ceil(T/4). Spike iff r < thr(v) with
// thr(v) = round(v * 65536 / 255) = (v * 131072 + 255) / 510 (integer division), so
// P(spike) = thr/65536 = v/255 within 2^-17, v = 0 never fires and v = 255 always fires.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "constants.h"
#include "entry_points.h"

namespace snnkit {
namespace {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * kMix1;
  z = (z ^ (z >> 27)) * kMix2;
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
    const uint64_t word = mix64(seed + (base + static_cast<uint64_t>(q) + 1) * kGolden);
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
  const __m512i golden = _mm512_set1_epi64(static_cast<int64_t>(kGolden));
  const __m512i m1 = _mm512_set1_epi64(static_cast<int64_t>(kMix1));
  const __m512i m2 = _mm512_set1_epi64(static_cast<int64_t>(kMix2));
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

}  // namespace snnkit
