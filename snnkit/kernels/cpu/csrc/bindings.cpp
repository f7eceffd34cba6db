// The torch side of snnkit's core CPU extension: checks the tensors, allocates the outputs (large
// ones from pool.h's buffer pool), calls the raw kernels of kernels.h, and registers the entry
// points as the operators torch.ops.<extension name>.<entry point>. The only translation unit of
// the core build that parses torch headers beyond <ATen/Parallel.h>, and only <torch/library.h>
// for the bindings: pybind11 with torch's casters parses about 1.5x as much, torch/extension.h
// all of the C++ frontend (build time). Sequences are contiguous [T, *] float32 or float64 CPU
// tensors.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstdint>
#include <vector>

#include "constants.h"
#include "kernels.h"
#include "pool.h"

namespace snnkit {
namespace {

void check_seq(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu(), "snnkit cpp kernel: ", what, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), "snnkit cpp kernel: ", what, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
              "snnkit cpp kernel: ", what, " must be float32 or float64");
  TORCH_CHECK(t.dim() >= 1 && t.size(0) >= 1, "snnkit cpp kernel: ", what, " must be [T, ...]");
}

// A state tensor: contiguous, on the CPU, x's dtype, one value per element of a step.
void check_state(const at::Tensor& st, const at::Tensor& x, int64_t n, const char* what) {
  TORCH_CHECK(st.device().is_cpu() && st.is_contiguous(), "snnkit cpp kernel: ", what,
              " must be a contiguous CPU tensor");
  TORCH_CHECK(st.scalar_type() == x.scalar_type(), "snnkit cpp kernel: ", what,
              " must have the input's dtype");
  TORCH_CHECK(st.numel() == n, "snnkit cpp kernel: ", what,
              " must have one value per element of a step");
}

void check_charge(int64_t ch) {
  TORCH_CHECK(ch >= kChargeIf && ch <= kChargeMulNodecay, "snnkit: unknown charge mode ", ch);
}

template <typename S>
S* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<S>() : nullptr;
}

// The [T, *] shape of the sequence: x itself, or x's shape behind `repeat` steps.
std::vector<int64_t> seq_shape(const at::Tensor& x, int64_t repeat) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  if (repeat > 0) shape.insert(shape.begin(), repeat);
  return shape;
}

at::Tensor pooled_seq(const at::Tensor& x, int64_t repeat) {
  if (repeat == 0) return pooled_empty_like(x);
  return pooled_empty(seq_shape(x, repeat), x.options());
}

template <typename S>
NeuronConsts<S> consts(int64_t ch, bool hard, double a, double rest, double vth, double vr,
                       double v0) {
  return {ch, hard, (S)a, (S)rest, (S)vth, (S)vr, (S)v0};
}

}  // namespace

// Fused neuron loop. charge_mode: a ChargeMode of constants.h; a: its constant; x: [T, *]
// (repeat = 0) or one step [*] fed at each of `repeat` steps; v_init: V(-1) per element of a
// step (None: the scalar v0). Returns [spikes, H (or undefined), V trace (or undefined),
// V(T-1) (undefined without v_init)], sequences [T, *].
std::vector<at::Tensor> neuron_forward(at::Tensor x, int64_t charge_mode, bool hard, double a,
                                       double rest, double vth, double vr, double v0, bool save,
                                       bool record, c10::optional<at::Tensor> v_init,
                                       int64_t repeat) {
  TORCH_CHECK(repeat >= 0, "snnkit cpp kernel: repeat must be >= 0");
  if (repeat == 0) check_seq(x, "x");
  else check_seq(x.unsqueeze(0), "x");
  check_charge(charge_mode);
  const int64_t T = repeat > 0 ? repeat : x.size(0);
  const int64_t N = repeat > 0 ? x.numel() : x.numel() / T;
  const at::Tensor vi = v_init.has_value() ? *v_init : at::Tensor();
  if (vi.defined()) check_state(vi, x, N, "initial V");
  auto spk = pooled_seq(x, repeat);
  auto hs = save ? pooled_seq(x, repeat) : at::Tensor();
  auto vrec = record ? pooled_seq(x, repeat) : at::Tensor();
  auto v_end = vi.defined() ? at::empty_like(vi) : at::Tensor();
  const int64_t xs = repeat > 0 ? 0 : N;
  if (x.scalar_type() == at::kFloat) {
    using S = float;
    neuron_forward_raw<S>(consts<S>(charge_mode, hard, a, rest, vth, vr, v0),
                          {ptr<S>(x), xs, ptr<S>(spk), ptr<S>(hs), ptr<S>(vrec), ptr<S>(vi),
                           ptr<S>(v_end), T, N});
  } else {
    using S = double;
    neuron_forward_raw<S>(consts<S>(charge_mode, hard, a, rest, vth, vr, v0),
                          {ptr<S>(x), xs, ptr<S>(spk), ptr<S>(hs), ptr<S>(vrec), ptr<S>(vi),
                           ptr<S>(v_end), T, N});
  }
  return {spk, hs, vrec, v_end};
}

// Returns [dL/dX (x's shape: the sum over the steps when repeat > 0), the sum over all elements
// of dL/dk (PLIF only; 0 otherwise) as a float64 scalar, dL/dV(-1) (undefined without v_init)].
// sur: a SurrogateKind of constants.h with its constants c1, c2, c3; gpre: precomputed
// g'(H - V_th) [T, *] for generic surrogates, or None; gv_end: dL/dV(T-1) (None: 0).
std::vector<at::Tensor> neuron_backward(at::Tensor gout, at::Tensor x,
                                        c10::optional<at::Tensor> gpre, int64_t charge_mode,
                                        bool hard, bool detach, int64_t sur, double c1, double c2,
                                        double c3, double a, double rest, double vth, double vr,
                                        double v0, c10::optional<at::Tensor> v_init,
                                        c10::optional<at::Tensor> gv_end, int64_t repeat) {
  TORCH_CHECK(repeat >= 0, "snnkit cpp kernel: repeat must be >= 0");
  if (repeat == 0) check_seq(x, "x");
  else check_seq(x.unsqueeze(0), "x");
  check_seq(gout, "grad_output");
  check_charge(charge_mode);
  TORCH_CHECK(sur >= kSurrogateGeneric && sur <= kSurrogateStraightThrough,
              "snnkit: unknown surrogate kind ", sur);
  TORCH_CHECK(gout.sizes() == at::IntArrayRef(seq_shape(x, repeat)),
              "snnkit cpp kernel: shape mismatch");
  TORCH_CHECK(gout.scalar_type() == x.scalar_type(), "snnkit cpp kernel: dtype mismatch");
  const int64_t T = gout.size(0);
  const int64_t N = gout.numel() / T;
  at::Tensor pre = gpre.has_value() ? *gpre : at::Tensor();
  if (pre.defined()) {
    check_seq(pre, "surrogate derivative");
    TORCH_CHECK(pre.sizes() == gout.sizes(), "snnkit cpp kernel: surrogate derivative shape");
  }
  TORCH_CHECK(pre.defined() || sur != kSurrogateGeneric,
              "snnkit cpp kernel: a generic surrogate needs its derivative");
  const at::Tensor vi = v_init.has_value() ? *v_init : at::Tensor();
  const at::Tensor ge = gv_end.has_value() ? *gv_end : at::Tensor();
  if (vi.defined()) check_state(vi, x, N, "initial V");
  if (ge.defined()) check_state(ge, x, N, "gradient of the last V");
  auto gx = pooled_empty_like(x);
  auto gv_init = vi.defined() ? at::empty_like(vi) : at::Tensor();
  const int64_t xs = repeat > 0 ? 0 : N;
  double gk;
  if (x.scalar_type() == at::kFloat) {
    using S = float;
    gk = neuron_backward_raw<S>(
        consts<S>(charge_mode, hard, a, rest, vth, vr, v0),
        {ptr<S>(gout), ptr<S>(x), xs, ptr<S>(gx), ptr<S>(pre), sur, (S)c1, (S)c2, (S)c3, detach,
         ptr<S>(vi), ptr<S>(ge), ptr<S>(gv_init), T, N});
  } else {
    using S = double;
    gk = neuron_backward_raw<S>(
        consts<S>(charge_mode, hard, a, rest, vth, vr, v0),
        {ptr<S>(gout), ptr<S>(x), xs, ptr<S>(gx), ptr<S>(pre), sur, (S)c1, (S)c2, (S)c3, detach,
         ptr<S>(vi), ptr<S>(ge), ptr<S>(gv_init), T, N});
  }
  return {gx, at::scalar_tensor(gk, x.options().dtype(at::kDouble)), gv_init};
}

// Event-driven Poisson input layer. x: uint8 [B, D]; W: [C, D]. Returns [out [T, B, C] (no
// bias), masks int64 [B, D, ceil(T/64)] (undefined unless save)].
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
    event_forward_raw<float>(x.data_ptr<uint8_t>(), W.data_ptr<float>(), out.data_ptr<float>(),
                             mp, B, D, C, T, s);
  else if (W.scalar_type() == at::kDouble)
    event_forward_raw<double>(x.data_ptr<uint8_t>(), W.data_ptr<double>(),
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
                  masks.size(2) == (T + 63) / 64 && masks.is_contiguous() &&
                  masks.scalar_type() == at::kLong,
              "snnkit event input: mask shape mismatch");
  auto gw = at::empty({C, D}, g.options());
  const uint64_t* mp = reinterpret_cast<const uint64_t*>(masks.data_ptr<int64_t>());
  if (g.scalar_type() == at::kFloat)
    event_backward_raw<float>(g.data_ptr<float>(), mp, gw.data_ptr<float>(), B, D, C, T);
  else if (g.scalar_type() == at::kDouble)
    event_backward_raw<double>(g.data_ptr<double>(), mp, gw.data_ptr<double>(), B, D, C, T);
  else
    TORCH_CHECK(false, "snnkit event input: grad must be float32 or float64");
  return gw;
}

// Dense spikes [T, B, D] of the same draws (for tests and the dense equivalent).
at::Tensor event_spikes(at::Tensor x, int64_t T, int64_t seed) {
  TORCH_CHECK(x.scalar_type() == at::kByte && x.dim() == 2 && x.is_contiguous(),
              "snnkit event input: x must be contiguous uint8 [B, D]");
  TORCH_CHECK(T >= 1, "snnkit event input: T must be >= 1");
  const int64_t B = x.size(0), D = x.size(1);
  auto out = at::zeros({T, B, D}, x.options().dtype(at::kFloat));
  event_spikes_raw(x.data_ptr<uint8_t>(), out.data_ptr<float>(), B, D, T,
                   static_cast<uint64_t>(seed));
  return out;
}

// Max pooling 2x2, stride 2, of channels-last maps. x: [M, H, W, C] contiguous (a channels-last
// [M, C, H, W] viewed NHWC). Returns [y [M, H/2, W/2, C], argmax window positions uint8].
std::vector<at::Tensor> maxpool2_forward(at::Tensor x) {
  check_seq(x, "x");
  TORCH_CHECK(x.dim() == 4 && x.size(1) >= 2 && x.size(2) >= 2,
              "snnkit max pool: x must be [M, H, W, C] with H, W >= 2");
  const int64_t M = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  auto y = pooled_empty({M, H / 2, W / 2, C}, x.options());
  auto idx = pooled_empty({M, H / 2, W / 2, C}, x.options().dtype(at::kByte));
  if (x.scalar_type() == at::kFloat)
    maxpool2_forward_raw<float>(x.data_ptr<float>(), y.data_ptr<float>(),
                                idx.data_ptr<uint8_t>(), M, H, W, C);
  else
    maxpool2_forward_raw<double>(x.data_ptr<double>(), y.data_ptr<double>(),
                                 idx.data_ptr<uint8_t>(), M, H, W, C);
  return {y, idx};
}

// gy, idx: [M, H/2, W/2, C] -> gx [M, H, W, C].
at::Tensor maxpool2_backward(at::Tensor gy, at::Tensor idx, int64_t H, int64_t W) {
  check_seq(gy, "grad_output");
  TORCH_CHECK(gy.dim() == 4 && idx.sizes() == gy.sizes() && idx.is_contiguous() &&
                  idx.scalar_type() == at::kByte && gy.size(1) == H / 2 && gy.size(2) == W / 2,
              "snnkit max pool: grad_output and argmax must be [M, H/2, W/2, C]");
  const int64_t M = gy.size(0), C = gy.size(3);
  auto gx = pooled_empty({M, H, W, C}, gy.options());
  if (gy.scalar_type() == at::kFloat)
    maxpool2_backward_raw<float>(gy.data_ptr<float>(), idx.data_ptr<uint8_t>(),
                                 gx.data_ptr<float>(), M, H, W, C);
  else
    maxpool2_backward_raw<double>(gy.data_ptr<double>(), idx.data_ptr<uint8_t>(),
                                  gx.data_ptr<double>(), M, H, W, C);
  return gx;
}

// x: any contiguous float32/float64 CPU tensor -> uint8 [ceil(numel/8)], bit j of byte i =
// (x.flatten()[8i + j] != 0).
at::Tensor pack_bits(at::Tensor x) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() &&
                  (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "snnkit pack_bits: x must be a contiguous float32/float64 CPU tensor");
  const int64_t n = x.numel();
  auto bits = at::empty({(n + 7) / 8}, x.options().dtype(at::kByte));
  if (x.scalar_type() == at::kFloat)
    pack_bits_raw<float>(x.data_ptr<float>(), bits.data_ptr<uint8_t>(), n);
  else
    pack_bits_raw<double>(x.data_ptr<double>(), bits.data_ptr<uint8_t>(), n);
  return bits;
}

// bits from pack_bits -> the flat float tensor of numel values, dtype float32 (double_ false)
// or float64.
at::Tensor unpack_bits(at::Tensor bits, int64_t numel, bool double_) {
  TORCH_CHECK(bits.device().is_cpu() && bits.is_contiguous() &&
                  bits.scalar_type() == at::kByte && bits.numel() == (numel + 7) / 8,
              "snnkit unpack_bits: bits must be ceil(numel/8) contiguous uint8 on the CPU");
  auto x = pooled_empty({numel}, bits.options().dtype(double_ ? at::kDouble : at::kFloat));
  if (double_) unpack_bits_raw<double>(bits.data_ptr<uint8_t>(), x.data_ptr<double>(), numel);
  else unpack_bits_raw<float>(bits.data_ptr<uint8_t>(), x.data_ptr<float>(), numel);
  return x;
}

}  // namespace snnkit

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {
  m.def("neuron_forward", &snnkit::neuron_forward);
  m.def("neuron_backward", &snnkit::neuron_backward);
  m.def("event_forward", &snnkit::event_forward);
  m.def("event_backward", &snnkit::event_backward);
  m.def("event_spikes", &snnkit::event_spikes);
  m.def("maxpool2_forward", &snnkit::maxpool2_forward);
  m.def("maxpool2_backward", &snnkit::maxpool2_backward);
  m.def("pack_bits", &snnkit::pack_bits);
  m.def("unpack_bits", &snnkit::unpack_bits);
}
