// Event-driven Poisson input layer: the draws of snnkit.kernels.random_stream, fused with the
// first Linear layer (only fired events add a weight column) and its backward pass. Both take
// a sample's lit pixels four at a time: per step, one row add of the quad's subset sum
// (forward) or into the bucket of the quad's fired-pixel pattern (backward) instead of one per
// fired event.
//
// Draw for (batch b, pixel d, step t): word = mix64(seed + (((b*D + d)*Q + t/4) + 1) * kGolden),
// r = bits [16 (t%4), 16 (t%4) + 16) of word, Q = ceil(T/4). Spike iff r < thr(v) with
// thr(v) = round(v * 65536 / 255) = (v * 131072 + 255) / 510 (integer division), so
// P(spike) = thr/65536 = v/255 within 2^-17, v = 0 never fires and v = 255 always fires.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "constants.h"
#include "kernels.h"
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

// Fired steps of up to P pixels (b, d[p]) as bitmasks words[p][NW] (bit t%64 of word t/64), 32
// steps (one chunk) at a time: the chunk's 8 hash words (words past Q belong to no step and are
// masked off), their 16-bit lanes (lane t = draw of step t, little-endian) compared with thr, the
// 32 flags packed into a 32-bit mask. The hashes of up to 8 chunks of all P pixels are computed
// first, the pixels' vectors interleaved (independent multiply chains the CPU overlaps), their
// keys as start + k·kGolden (mod 2^64: the same numbers with one 64-bit multiply fewer), only as
// many vectors as cover the Q words. Only the first np pixels are real (and written).
template <int P>
inline void draw_bits(uint64_t seed, int64_t b, const int64_t* d, int np, int64_t D, int64_t T,
                      const uint32_t* thr, uint64_t* const* words) {
  const int64_t Q = (T + 3) / 4;
  const int64_t NW = (T + 63) / 64;
  const int64_t chunks = (T + kChunkSteps - 1) / kChunkSteps;
  for (int p = 0; p < np; ++p)
    for (int64_t w = 0; w < NW; ++w) words[p][w] = 0;
  U64v lane;
  for (int k = 0; k < kL64; ++k) lane[k] = static_cast<uint64_t>(k);
  constexpr int64_t kPass = 8;  // chunks per hashing pass
  alignas(64) uint64_t z[P][8 * kPass];
  alignas(64) uint8_t f[kChunkSteps];
  for (int64_t c0 = 0; c0 < chunks; c0 += kPass) {
    const int64_t cn = std::min(kPass, chunks - c0);
    const int64_t need = std::min(8 * cn, Q - 8 * c0);  // hash words of this pass that are used
    U64v start[P];
    for (int p = 0; p < P; ++p) {
      const uint64_t key = static_cast<uint64_t>(b * D + d[p < np ? p : 0]) *
                               static_cast<uint64_t>(Q) + 1 + 8 * static_cast<uint64_t>(c0);
      start[p] = seed + (key + lane) * kGolden;
    }
    int64_t k = 0;
    for (; k < need; k += kL64)
      for (int p = 0; p < P; ++p)
        simd::store<kL64, uint64_t>(z[p] + k,
                                    mix64<U64v>(start[p] + static_cast<uint64_t>(k) * kGolden));
    for (int p = 0; p < P; ++p)  // words no step uses: zero, so nothing indeterminate is read
      for (int64_t j = k; j < 8 * cn; ++j) z[p][j] = 0;
    for (int p = 0; p < np; ++p) {
      const bool all = thr[p] > 0xFFFFu;  // v = 255: every step fires
      const uint16_t thr16 = static_cast<uint16_t>(all ? 0xFFFFu : thr[p]);
      for (int64_t c = c0; c < c0 + cn; ++c) {
        const uint16_t* r = reinterpret_cast<const uint16_t*>(z[p] + 8 * (c - c0));
        for (int i = 0; i < kChunkSteps; i += kL16) {
          const I16v lt = simd::load<kL16, uint16_t>(r + i) < thr16;  // -1 where it fires
          simd::store<kL16, uint8_t>(f + i, __builtin_convertvector(lt, U8v) & 1);
        }
        uint64_t m = all ? 0xFFFFFFFFull
                         : (pack8(f) | pack8(f + 8) << 8 | pack8(f + 16) << 16 |
                            static_cast<uint64_t>(pack8(f + 24)) << 24);
        const int64_t left = T - kChunkSteps * c;
        if (left < kChunkSteps) m &= (1ull << left) - 1;
        words[p][c >> 1] |= m << (32 * (c & 1));
      }
    }
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

// dst[0:cp) = a[0:cp) + b[0:cp).
template <int CPT, typename S>
inline void sum_row(S* __restrict dst, const S* a, const S* b, int64_t cp) {
  if constexpr (CPT > 0) {
    constexpr int L = simd::lanes<S, CPT>();
    for (int i = 0; i < CPT; i += L)
      simd::store<L, S>(dst + i, simd::load<L, S>(a + i) + simd::load<L, S>(b + i));
  } else {
    for (int64_t c = 0; c < cp; ++c) dst[c] = a[c] + b[c];
  }
}

// Pixels are taken four at a time (a "quad"); at step t the quad's fired pixels form the nibble
// n(t) = Σ_k fired_k(t) 2^k. 16 steps of nibbles fit one 64-bit word: spread4 moves bit i of
// a 16-bit mask to bit 4i, so nibbles(t0..t0+15) = Σ_k spread4(mask_k >> t0) << k.
inline uint64_t spread4(uint64_t x) {
  x &= 0xFFFFu;
  x = (x | x << 24) & 0x000000FF000000FFull;
  x = (x | x << 12) & 0x000F000F000F000Full;
  x = (x | x << 6) & 0x0303030303030303ull;
  x = (x | x << 3) & 0x1111111111111111ull;
  return x;
}

constexpr int kQuad = 4;
constexpr int64_t kNibbleSteps = 16;  // steps per word of nibbles

// Nibbles of steps [t0, t0 + 16) of the quad whose fired-step bitmasks are words[k] (t0 % 16 == 0).
inline uint64_t quad_nibbles(const uint64_t* const* words, int64_t t0) {
  const int64_t w = t0 >> 6, sh = t0 & 63;
  return spread4(words[0][w] >> sh) | spread4(words[1][w] >> sh) << 1 |
         spread4(words[2][w] >> sh) << 2 | spread4(words[3][w] >> sh) << 3;
}

// Samples [b0, b1), forward: a sample's lit pixels (v > 0) in quads. A quad draws its four
// pixels' spikes, builds the table of its 16 subset sums of W^T rows (tab[n] = tab[n - 2^k] +
// row_k, 2^k the highest bit of n) and adds tab[n(t)] to the sample's accumulator row t
// (L1-resident [T][CP]) at every step: one row add per quad and step instead of one per fired
// event (about 2.7 events per quad and step on MNIST). The sum's order is fixed by the pixel
// order, whatever the ISA or thread count.
template <int CPT, typename S>
void event_forward_range(const uint8_t* __restrict x, const S* __restrict wt, S* __restrict out,
                         uint64_t* __restrict masks, int64_t B, int64_t D, int64_t C, int64_t T,
                         int64_t CP, uint64_t seed, int64_t b0, int64_t b1) {
  const int64_t NW = (T + 63) / 64;
  std::vector<S> accv(static_cast<size_t>(T * CP)), tabv(static_cast<size_t>(16 * CP)),
      zero(static_cast<size_t>(CP), S(0));
  std::vector<uint64_t> local(static_cast<size_t>(kQuad * NW)), none(static_cast<size_t>(NW), 0);
  std::vector<int64_t> lit(static_cast<size_t>(D));
  S* acc = accv.data();
  S* tab = tabv.data();
  for (int64_t b = b0; b < b1; ++b) {
    std::fill(accv.begin(), accv.end(), S(0));
    const uint8_t* xb = x + b * D;
    int64_t n = 0;
    for (int64_t d = 0; d < D; ++d) {  // branch-free: lit and dark pixels interleave
      lit[n] = d;
      n += xb[d] != 0;
    }
    for (int64_t i = 0; i < n; i += kQuad) {
      const int np = static_cast<int>(std::min<int64_t>(kQuad, n - i));
      const int64_t* d = lit.data() + i;
      uint64_t* out_words[kQuad];
      uint32_t thr[kQuad];
      for (int k = 0; k < np; ++k) {
        out_words[k] = masks != nullptr ? masks + (b * D + d[k]) * NW : local.data() + k * NW;
        thr[k] = threshold16(xb[d[k]]);
      }
      draw_bits<kQuad>(seed, b, d, np, D, T, thr, out_words);
      const uint64_t* words[kQuad];
      std::fill(tab, tab + CP, S(0));
      for (int k = 0; k < kQuad; ++k) {
        words[k] = k < np ? out_words[k] : none.data();
        const S* row = k < np ? wt + d[k] * CP : zero.data();
        for (int j = 0; j < (1 << k); ++j)
          sum_row<CPT, S>(tab + ((1 << k) + j) * CP, tab + j * CP, row, CP);
      }
      for (int64_t t0 = 0; t0 < T; t0 += kNibbleSteps) {
        uint64_t nib = quad_nibbles(words, t0);
        const int64_t steps = std::min(kNibbleSteps, T - t0);
        S* a = acc + t0 * CP;
        for (int64_t k = 0; k < steps; ++k, nib >>= 4)
          add_row<CPT, S>(a + k * CP, tab + (nib & 15) * CP, CP);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      S* o = out + (t * B + b) * C;
      const S* a = acc + t * CP;
      for (int64_t c = 0; c < C; ++c) o[c] = a[c];
    }
  }
}

// Samples [b0, b1) into gwt [D][CP] (zeroed by the caller), backward: the sample's dL/dout rows
// packed to [T][CP], its pixels with any fired step in quads. A quad sums the rows of each step
// into the bucket of the step's nibble n(t) (two sets of 16 buckets, even and odd steps, so that
// equal nibbles on consecutive steps do not wait for each other), folds the odd set into the
// even one, and adds to pixel k's row the sum of the buckets whose nibble has bit k: the sum of
// dL/dout over the pixel's fired steps. The order of every sum is fixed.
template <int CPT, typename S>
void event_backward_range(const S* __restrict g, const uint64_t* __restrict masks,
                          S* __restrict gwt, int64_t B, int64_t D, int64_t C, int64_t T,
                          int64_t CP, int64_t b0, int64_t b1) {
  const int64_t NW = (T + 63) / 64;
  std::vector<S> gbv(static_cast<size_t>(T * CP), S(0)), bkv(static_cast<size_t>(32 * CP)),
      sumv(static_cast<size_t>(CP)), sink(static_cast<size_t>(CP));
  std::vector<uint64_t> none(static_cast<size_t>(NW), 0);
  std::vector<int64_t> lit(static_cast<size_t>(D));
  S* gb = gbv.data();
  S* bk = bkv.data();
  S* sum = sumv.data();
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) gb[t * CP + c] = g[(t * B + b) * C + c];
    int64_t n = 0;
    const uint64_t* mb = masks + b * D * NW;
    for (int64_t d = 0; d < D; ++d) {  // branch-free: lit and dark pixels interleave
      uint64_t any = 0;
      for (int64_t w = 0; w < NW; ++w) any |= mb[d * NW + w];
      lit[n] = d;
      n += any != 0;
    }
    for (int64_t i = 0; i < n; i += kQuad) {
      const uint64_t* words[kQuad];
      S* dst[kQuad];
      for (int k = 0; k < kQuad; ++k) {
        const bool real = i + k < n;
        words[k] = real ? masks + (b * D + lit[i + k]) * NW : none.data();
        dst[k] = real ? gwt + lit[i + k] * CP : sink.data();
      }
      std::fill(bkv.begin(), bkv.end(), S(0));
      for (int64_t t0 = 0; t0 < T; t0 += kNibbleSteps) {
        uint64_t nib = quad_nibbles(words, t0);
        const int64_t steps = std::min(kNibbleSteps, T - t0);
        const S* gt = gb + t0 * CP;
        int64_t k = 0;
        for (; k + 1 < steps; k += 2, nib >>= 8) {
          add_row<CPT, S>(bk + (nib & 15) * CP, gt + k * CP, CP);
          add_row<CPT, S>(bk + (16 + ((nib >> 4) & 15)) * CP, gt + (k + 1) * CP, CP);
        }
        if (k < steps) add_row<CPT, S>(bk + (nib & 15) * CP, gt + k * CP, CP);
      }
      for (int j = 1; j < 16; ++j) add_row<CPT, S>(bk + j * CP, bk + (16 + j) * CP, CP);
      for (int k = 0; k < kQuad; ++k) {
        if constexpr (CPT > 0) {  // in registers
          simd::Row<S, CPT> r;
          r.zero();
          for (int j = 1; j < 16; ++j)
            if (j & (1 << k)) r.add(bk + j * CP);
          r.add_into(dst[k]);
        } else {
          std::fill(sumv.begin(), sumv.end(), S(0));
          for (int j = 1; j < 16; ++j)
            if (j & (1 << k)) add_row<CPT, S>(sum, bk + j * CP, CP);
          add_row<CPT, S>(dst[k], sum, CP);
        }
      }
    }
  }
}

}  // namespace

template <typename S>
void event_forward_raw(const uint8_t* x, const S* W, S* out, uint64_t* masks, int64_t B,
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

template <typename S>
void event_backward_raw(const S* g, const uint64_t* masks, S* gw, int64_t B, int64_t D,
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

void event_spikes_raw(const uint8_t* x, float* out, int64_t B, int64_t D, int64_t T,
                      uint64_t seed) {
  const int64_t NW = (T + 63) / 64;
  std::vector<uint64_t> words(static_cast<size_t>(NW));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < D; ++d) {
      const uint32_t v = x[b * D + d];
      if (v == 0) continue;
      uint64_t* w = words.data();
      const uint32_t thr = threshold16(v);
      draw_bits<1>(seed, b, &d, 1, D, T, &thr, &w);
      for (int64_t t = 0; t < T; ++t)
        if ((words[t >> 6] >> (t & 63)) & 1u) out[(t * B + b) * D + d] = 1.0f;
    }
}

template void event_forward_raw<float>(const uint8_t*, const float*, float*, uint64_t*, int64_t,
                                       int64_t, int64_t, int64_t, uint64_t);
template void event_forward_raw<double>(const uint8_t*, const double*, double*, uint64_t*,
                                        int64_t, int64_t, int64_t, int64_t, uint64_t);
template void event_backward_raw<float>(const float*, const uint64_t*, float*, int64_t, int64_t,
                                        int64_t, int64_t);
template void event_backward_raw<double>(const double*, const uint64_t*, double*, int64_t,
                                         int64_t, int64_t, int64_t);

}  // namespace snnkit
