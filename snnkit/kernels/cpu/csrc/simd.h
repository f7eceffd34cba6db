// Portable fixed-width vectors for the CPU kernels: GCC/Clang vector extensions, which the
// compiler lowers to the target's registers (one zmm per 16 floats with AVX-512, two ymm with
// AVX2, four q registers with NEON, four xmm with SSE2). One source for every CPU, no
// intrinsics; build.py picks the target with -march/-mcpu flags.
#pragma once

#include <cstdint>
#include <cstring>

namespace snnkit {
namespace simd {

// Bytes of the widest register the target has: rows wider than that are arrays of native
// vectors (a 64-byte vector on AVX2 would live on the stack, not in two registers).
#if defined(__AVX512F__)
constexpr int kNativeBytes = 64;
#elif defined(__AVX__)
constexpr int kNativeBytes = 32;
#else
constexpr int kNativeBytes = 16;  // SSE2, NEON
#endif

// Vec<S, N>::type: N lanes of S.
template <typename S, int N>
struct Vec {
  typedef S type __attribute__((vector_size(sizeof(S) * N)));
};

// Lanes of S in one native vector, at most N.
template <typename S, int N>
constexpr int lanes() {
  constexpr int native = kNativeBytes / static_cast<int>(sizeof(S));
  return N < native ? N : native;
}

template <int N, typename S>
inline typename Vec<S, N>::type load(const S* p) {
  typename Vec<S, N>::type v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int N, typename S>
inline void store(S* p, const typename Vec<S, N>::type& v) {
  std::memcpy(p, &v, sizeof(v));
}

// dst[0:N) += src[0:N), one native vector add per kNativeBytes.
template <int N, typename S>
inline void add_to(S* dst, const S* src) {
  constexpr int L = lanes<S, N>();
  static_assert(N % L == 0, "row width must be a multiple of the native width");
  for (int i = 0; i < N; i += L) store<L, S>(dst + i, load<L, S>(dst + i) + load<L, S>(src + i));
}

// A row of N values held in registers: K native vectors of L lanes.
template <typename S, int N>
struct Row {
  static constexpr int L = lanes<S, N>();
  static constexpr int K = N / L;
  typename Vec<S, L>::type v[K];

  void zero() {
    for (int k = 0; k < K; ++k) v[k] = typename Vec<S, L>::type{};
  }
  void add(const S* p) {
    for (int k = 0; k < K; ++k) v[k] += load<L, S>(p + k * L);
  }
  void add(const Row& o) {
    for (int k = 0; k < K; ++k) v[k] += o.v[k];
  }
  void add_into(S* p) const {
    for (int k = 0; k < K; ++k) store<L, S>(p + k * L, load<L, S>(p + k * L) + v[k]);
  }
};

}  // namespace simd
}  // namespace snnkit
