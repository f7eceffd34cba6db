// Event-driven Poisson input layer: the draws of snnkit.kernels.random_stream, fused with the
// first Linear layer (only fired events add a weight column) and its backward pass.
//
// Draw for (batch b, pixel d, step t): word = mix64(seed + (((b*D + d)*Q + t/4) + 1) * kGolden),
// r = bits [16 (t%4), 16 (t%4) + 16) of word, Q = ceil(T/4). Spike iff r < thr(v) with
// thr(v) = round(v * 65536 / 255) = (v * 131072 + 255) / 510 (integer division), so
// P(spike) = thr/65536 = v/255 within 2^-17, v = 0 never fires and v = 255 always fires.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "constants.h"
#include "entry_points.h"
#include "simd.h"

namespace snnkit {
namespace {

// SplitMix64's finaliser, for one word or a vector of them.
template <typename U>
inline U mix64(U z) {
  z = (z ^ (z >> 30)) * kMix1;
  z = (z ^ (z >> 27)) * kMix2;
  return z ^ (z >> 31);
}

inline uint32_t threshold16(uint32_t v) { return (v * 131072u + 255u) / 510u; }

inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "pack8 assumes little-endian bytes");

// Written once for every CPU with the fixed-width vectors of simd.h, lowered to the target by
// the compiler (-march/-mcpu flags of build.py): AVX-512 does the 8 hashes of a chunk in one
// register and its 32 compares in one instruction, AVX2 in two, NEON in four.
constexpr int64_t kChunkSteps = 32;  // steps per chunk: 8 hash words of four 16-bit draws
constexpr int kL64 = simd::lanes<uint64_t, 8>();   // hash words per native vector
constexpr int kL16 = simd::lanes<uint16_t, 32>();  // 16-bit draws per native vector
using U64v = simd::Vec<uint64_t, kL64>::type;
using U16v = simd::Vec<uint16_t, kL16>::type;
using I16v = simd::Vec<int16_t, kL16>::type;
using U8v = simd::Vec<uint8_t, kL16>::type;

// Bits of 8 bytes that are each 0 or 1 (byte j -> bit j), by one multiply.
inline uint32_t pack8(const uint8_t* f) {
  uint64_t x;
  std::memcpy(&x, f, sizeof(x));
  return static_cast<uint32_t>((x * 0x0102040810204080ull) >> 56);
}

// Fired steps of pixel (b, d) as a bitmask words[NW] (bit t%64 of word t/64), 32 steps at a
// time: the chunk's 8 hash words (words past Q belong to no step and are masked off), their
// 16-bit lanes (lane t = draw of step t, little-endian) compared with thr, the 32 flags packed
// into a 32-bit mask.
inline void draw_bits_chunked(uint64_t seed, int64_t b, int64_t d, int64_t D, int64_t T,
                              uint32_t thr, uint64_t* __restrict words) {
  const int64_t Q = (T + 3) / 4;
  const int64_t NW = (T + 63) / 64;
  const int64_t chunks = (T + kChunkSteps - 1) / kChunkSteps;
  const uint64_t base = static_cast<uint64_t>(b * D + d) * static_cast<uint64_t>(Q) + 1;
  for (int64_t w = 0; w < NW; ++w) words[w] = 0;
  U64v lane;
  for (int k = 0; k < kL64; ++k) lane[k] = static_cast<uint64_t>(k);
  const bool all = thr > 0xFFFFu;  // v = 255: every step fires
  const uint16_t thr16 = static_cast<uint16_t>(all ? 0xFFFFu : thr);
  alignas(64) uint64_t z[8];
  alignas(64) uint8_t f[kChunkSteps];
  for (int64_t c = 0; c < chunks; ++c) {
    const uint64_t first = base + 8 * static_cast<uint64_t>(c);
    for (int k = 0; k < 8; k += kL64)  // mix64 of the chunk's 8 words, kL64 at a time
      simd::store<kL64, uint64_t>(z + k, mix64<U64v>(seed + (first + k + lane) * kGolden));
    const uint16_t* r = reinterpret_cast<const uint16_t*>(z);
    for (int i = 0; i < kChunkSteps; i += kL16) {
      const I16v lt = simd::load<kL16, uint16_t>(r + i) < thr16;  // -1 where the step fires
      simd::store<kL16, uint8_t>(f + i, __builtin_convertvector(lt, U8v) & 1);
    }
    uint64_t m = all ? 0xFFFFFFFFull
                     : (pack8(f) | pack8(f + 8) << 8 | pack8(f + 16) << 16 |
                        static_cast<uint64_t>(pack8(f + 24)) << 24);
    const int64_t left = T - kChunkSteps * c;
    if (left < kChunkSteps) m &= (1ull << left) - 1;
    words[c >> 1] |= m << (32 * (c & 1));
  }
}

// Adds src[0:cp) to dst[0:cp); CPT > 0 fixes the width at compile time (one vector op).
template <int CPT, typename S>
inline void add_row(S* __restrict dst, const S* __restrict src, int64_t cp) {
  if constexpr (CPT > 0) {
    simd::add_to<CPT, S>(dst, src);
  } else {
    for (int64_t c = 0; c < cp; ++c) dst[c] += src[c];
  }
}

// Samples [b0, b1): draw the spikes of every lit pixel, add the W^T row of each fired event
// into a per-sample accumulator [T][CP] (L1/L2-resident).
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
      draw_bits_chunked(seed, b, d, D, T, threshold16(v), words);
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
  at::parallel_for(0, B, 1, [=](int64_t b0, int64_t b1) {
    if (CP == 16) event_forward_range<16, S>(x, wt, out, masks, B, D, C, T, CP, seed, b0, b1);
    else event_forward_range<0, S>(x, wt, out, masks, B, D, C, T, CP, seed, b0, b1);
  });
}

// Samples [b0, b1) into gwt [D][CP] (zeroed by the caller): the sample's dL/dout rows packed to
// [T][CP], then per lit pixel a sum over its fired steps (two accumulators to hide the add
// latency; registers when CPT fixes the width) added to the pixel's row.
template <int CPT, typename S>
void event_backward_range(const S* __restrict g, const uint64_t* __restrict masks,
                          S* __restrict gwt, int64_t B, int64_t D, int64_t C, int64_t T,
                          int64_t CP, int64_t b0, int64_t b1) {
  const int64_t NW = (T + 63) / 64;
  std::vector<S> gbv(static_cast<size_t>(T * CP), S(0)), a0v(static_cast<size_t>(CP)),
      a1v(static_cast<size_t>(CP));
  S* gb = gbv.data();
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) gb[t * CP + c] = g[(t * B + b) * C + c];
    for (int64_t d = 0; d < D; ++d) {
      const uint64_t* words = masks + (b * D + d) * NW;
      bool any = false;
      for (int64_t w = 0; w < NW; ++w) any |= words[w] != 0;
      if (!any) continue;
      S* dst = gwt + d * CP;
      if constexpr (CPT > 0) {
        simd::Row<S, CPT> a0, a1;
        a0.zero();
        a1.zero();
        for (int64_t w = 0; w < NW; ++w) {
          uint64_t bits = words[w];
          while (bits) {
            a0.add(gb + (64 * w + ctz64(bits)) * CPT);
            bits &= bits - 1;
            if (!bits) break;
            a1.add(gb + (64 * w + ctz64(bits)) * CPT);
            bits &= bits - 1;
          }
        }
        a0.add(a1);
        a0.add_into(dst);
      } else {
        S* a0 = a0v.data();
        S* a1 = a1v.data();
        std::fill(a0v.begin(), a0v.end(), S(0));
        std::fill(a1v.begin(), a1v.end(), S(0));
        for (int64_t w = 0; w < NW; ++w) {
          uint64_t bits = words[w];
          while (bits) {
            add_row<0, S>(a0, gb + (64 * w + ctz64(bits)) * CP, CP);
            bits &= bits - 1;
            if (!bits) break;
            add_row<0, S>(a1, gb + (64 * w + ctz64(bits)) * CP, CP);
            bits &= bits - 1;
          }
        }
        add_row<0, S>(a0, a1, CP);
        add_row<0, S>(dst, a0, CP);
      }
    }
  }
}

template <typename S>
void event_backward_typed(const S* g, const uint64_t* masks, S* gw, int64_t B, int64_t D,
                          int64_t C, int64_t T) {
  const int64_t CP = (C + 15) / 16 * 16;
  // Samples in fixed groups (at most 32 of them), one partial dL/dW^T per group, summed in
  // group order: the result does not depend on the number of threads.
  const int64_t per = std::max<int64_t>(8, (B + 31) / 32);
  const int64_t groups = (B + per - 1) / per;
  std::vector<S> part(static_cast<size_t>(groups * D * CP), S(0));
  S* pp = part.data();
  at::parallel_for(0, groups, 1, [=](int64_t g0, int64_t g1) {
    for (int64_t k = g0; k < g1; ++k) {
      const int64_t s0 = k * per, s1 = std::min(B, (k + 1) * per);
      if (CP == 16) event_backward_range<16, S>(g, masks, pp + k * D * CP, B, D, C, T, CP, s0, s1);
      else event_backward_range<0, S>(g, masks, pp + k * D * CP, B, D, C, T, CP, s0, s1);
    }
  });
  for (int64_t k = 1; k < groups; ++k) {
    const S* src = pp + k * D * CP;
    for (int64_t i = 0; i < D * CP; ++i) pp[i] += src[i];
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t d = 0; d < D; ++d) gw[c * D + d] = pp[d * CP + c];
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
      draw_bits_chunked(static_cast<uint64_t>(seed), b, d, D, T, threshold16(v), words.data());
      for (int64_t t = 0; t < T; ++t)
        if ((words[t >> 6] >> (t & 63)) & 1u) o[(t * B + b) * D + d] = 1.0f;
    }
  return out;
}

}  // namespace snnkit
