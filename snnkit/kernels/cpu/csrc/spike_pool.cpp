// Max pooling with kernel 2, stride 2 and no padding over channels-last maps [M, H, W, C]: the
// pooling of every convolutional SNN, where it follows a spiking neuron. Same values and the
// same choice of maximum as torch's max_pool2d (the first maximum of a window in (dh, dw)
// order; a NaN wins, and a later NaN over an earlier one), but the argmax is kept as one byte
// per output (the window position 0..3) instead of an int64 index, and the backward writes each
// input gradient once (0 + dL/dy at the maximum, 0 elsewhere) instead of zero-filling the input
// gradient and scattering into it.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "kernels.h"

namespace snnkit {

template <typename S>
void maxpool2_forward_raw(const S* x, S* y, uint8_t* idx, int64_t M, int64_t H, int64_t W,
                          int64_t C) {
  const int64_t Ho = H / 2, Wo = W / 2;
  at::parallel_for(0, M * Ho, 16, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t m = r / Ho, ho = r % Ho;
      const S* row0 = x + ((m * H + 2 * ho) * W) * C;
      const S* row1 = row0 + W * C;
      S* yr = y + r * Wo * C;
      uint8_t* ir = idx + r * Wo * C;
      for (int64_t wo = 0; wo < Wo; ++wo) {
        const S* p[4] = {row0 + 2 * wo * C, row0 + (2 * wo + 1) * C, row1 + 2 * wo * C,
                         row1 + (2 * wo + 1) * C};
        S* yo = yr + wo * C;
        uint8_t* io = ir + wo * C;
        for (int64_t c = 0; c < C; ++c) {
          S best = p[0][c];
          uint8_t k = 0;
          for (uint8_t q = 1; q < 4; ++q) {
            const S v = p[q][c];
            const bool take = (v > best) || (v != v);
            best = take ? v : best;
            k = take ? q : k;
          }
          yo[c] = best;
          io[c] = k;
        }
      }
    }
  });
}

template <typename S>
void maxpool2_backward_raw(const S* gy, const uint8_t* idx, S* gx, int64_t M, int64_t H,
                           int64_t W, int64_t C) {
  const int64_t Ho = H / 2, Wo = W / 2;
  at::parallel_for(0, M * H, 16, [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t m = r / H, h = r % H, ho = h / 2;
      S* gr = gx + r * W * C;
      if (ho >= Ho) {  // an odd last row no window covers
        std::fill(gr, gr + W * C, S(0));
        continue;
      }
      const uint8_t dh = static_cast<uint8_t>(2 * (h % 2));
      const S* gyr = gy + (m * Ho + ho) * Wo * C;
      const uint8_t* ir = idx + (m * Ho + ho) * Wo * C;
      for (int64_t w = 0; w < 2 * Wo; ++w) {
        const uint8_t pos = static_cast<uint8_t>(dh + w % 2);
        const S* g = gyr + (w / 2) * C;
        const uint8_t* k = ir + (w / 2) * C;
        S* o = gr + w * C;
        for (int64_t c = 0; c < C; ++c) o[c] = k[c] == pos ? S(0) + g[c] : S(0);
      }
      std::fill(gr + 2 * Wo * C, gr + W * C, S(0));  // an odd last column
    }
  });
}

template void maxpool2_forward_raw<float>(const float*, float*, uint8_t*, int64_t, int64_t,
                                          int64_t, int64_t);
template void maxpool2_forward_raw<double>(const double*, double*, uint8_t*, int64_t, int64_t,
                                           int64_t, int64_t);
template void maxpool2_backward_raw<float>(const float*, const uint8_t*, float*, int64_t, int64_t,
                                           int64_t, int64_t);
template void maxpool2_backward_raw<double>(const double*, const uint8_t*, double*, int64_t,
                                            int64_t, int64_t, int64_t);

}  // namespace snnkit
