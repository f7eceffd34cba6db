// Portable fixed-width vectors for the CPU kernels: GCC/Clang vector extensions, which the
// compiler lowers to the target's registers (one zmm per 16 floats with AVX-512, two ymm with
// AVX2, four q registers with NEON, four xmm with SSE2). One source for every CPU, no
// intrinsics; build.py picks the target with -march/-mcpu flags.
#pragma once

#include <cstdint>
#include <cstring>

namespace snnkit {
namespace simd {

// Vec<S, N>::type: N lanes of S.
template <typename S, int N>
struct Vec {
  typedef S type __attribute__((vector_size(sizeof(S) * N)));
};

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

// dst[0:N) += src[0:N), one vector add.
template <int N, typename S>
inline void add_to(S* dst, const S* src) {
  store<N, S>(dst, load<N, S>(dst) + load<N, S>(src));
}

}  // namespace simd
}  // namespace snnkit
