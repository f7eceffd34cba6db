// 1-bit storage of spikes (snnkit.kernels.bitpack): pack values in {0, 1} eight per byte, bit j
// of byte i holding value 8i + j (the last byte padded with zeros), and unpack them again.
// Written as plain loops over eight lanes that the compiler vectorises; bit-identical to the
// PyTorch fallback of bitpack.py.
#include <ATen/Parallel.h>

#include <cstdint>

#include "kernels.h"

namespace snnkit {

template <typename S>
void pack_bits_raw(const S* x, uint8_t* bits, int64_t n) {
  const int64_t whole = n / 8;
  at::parallel_for(0, whole, 4096, [=](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const S* v = x + 8 * b;
      uint8_t byte = 0;
      for (int j = 0; j < 8; ++j) byte |= static_cast<uint8_t>((v[j] != S(0)) << j);
      bits[b] = byte;
    }
  });
  if (whole * 8 < n) {
    uint8_t byte = 0;
    for (int64_t i = whole * 8; i < n; ++i) byte |= static_cast<uint8_t>((x[i] != S(0)) << (i - whole * 8));
    bits[whole] = byte;
  }
}

template <typename S>
void unpack_bits_raw(const uint8_t* bits, S* x, int64_t n) {
  const int64_t whole = n / 8;
  at::parallel_for(0, whole, 4096, [=](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const uint8_t byte = bits[b];
      S* v = x + 8 * b;
      for (int j = 0; j < 8; ++j) v[j] = static_cast<S>((byte >> j) & 1);
    }
  });
  for (int64_t i = whole * 8; i < n; ++i) x[i] = static_cast<S>((bits[whole] >> (i - whole * 8)) & 1);
}

template void pack_bits_raw<float>(const float*, uint8_t*, int64_t);
template void pack_bits_raw<double>(const double*, uint8_t*, int64_t);
template void unpack_bits_raw<float>(const uint8_t*, float*, int64_t);
template void unpack_bits_raw<double>(const uint8_t*, double*, int64_t);

}  // namespace snnkit
