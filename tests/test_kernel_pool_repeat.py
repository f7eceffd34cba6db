"""The C++ 2×2 max pooling of channels-last maps and the fused neuron over a repeated input step:
the same values as torch's max_pool2d and as the neuron over the materialised repetition, and the
same gradients (pooling: exactly; repetition: the sum over T, to rounding)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from snnkit.components import layers
from snnkit.components import neurons as N
from snnkit.components.surrogates import ATan, Sigmoid
from snnkit.kernels import multi_step, multi_step_repeated, pool, repeat_steps
from snnkit.kernels.cpu.build import cpu_extension

EXT = cpu_extension()
pytestmark = pytest.mark.skipif(EXT is None, reason="the C++ kernels cannot be built here")
CL = torch.channels_last


def _cl(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=CL)


@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hw", [(8, 6), (7, 5), (2, 2)])
def test_maxpool_matches_torch_values_and_gradients(
    dtype: torch.dtype, hw: tuple, layout: str
) -> None:
    torch.manual_seed(0)
    h, w = hw
    fmt = _cl if layout == "channels_last" else (lambda t: t.contiguous())
    x = fmt(torch.randn(3, 5, h, w, dtype=dtype)).requires_grad_()
    ref_in = x.detach().clone().requires_grad_()
    y = pool.maxpool2(EXT, x)
    ref = F.max_pool2d(ref_in, 2)
    assert y.is_contiguous(
        memory_format=CL if layout == "channels_last" else torch.contiguous_format
    )
    assert torch.equal(y, ref)
    g = fmt(torch.randn_like(ref))
    y.backward(g)
    ref.backward(g)
    assert torch.equal(x.grad, ref_in.grad)
    if h % 2:  # the odd last row is covered by no window: gradient 0
        assert not x.grad[:, :, -1].any()


def test_maxpool_ties_nan_and_inf_pick_the_same_element_as_torch() -> None:
    """Binary spikes (ties everywhere), all-zero windows, -inf and NaN: the gradient lands on
    the element torch's max_pool2d picks (the first maximum, a NaN winning)."""
    torch.manual_seed(1)
    x = (torch.rand(4, 3, 6, 6) < 0.3).float()
    x[0, 0, 0, 0], x[0, 0, 0, 1] = float("nan"), float("nan")
    x[1, 1, :2, :2] = float("-inf")
    x[2, 2, 2, 3] = float("nan")
    x = _cl(x).requires_grad_()
    ref_in = x.detach().clone().requires_grad_()
    y, ref = pool.maxpool2(EXT, x), F.max_pool2d(ref_in, 2)
    assert torch.equal(y.isnan(), ref.isnan())
    assert torch.equal(y.nan_to_num(), ref.nan_to_num())
    g = _cl(torch.arange(ref.numel(), dtype=torch.float32).reshape(ref.shape) + 1)
    y.backward(g)
    ref.backward(g)
    assert torch.equal(x.grad, ref_in.grad)


def test_maxpool_layer_uses_the_kernel_only_where_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = pool.maxpool2
    monkeypatch.setattr(pool, "maxpool2", lambda ext, x: calls.append(1) or original(ext, x))
    seq = _cl(torch.randn(3 * 2, 4, 6, 6)).unflatten(0, (3, 2))  # [T, B, C, H, W] channels-last
    out = layers.MaxPool2d(2)(seq)
    assert calls == [1] and torch.equal(
        out, F.max_pool2d(seq.flatten(0, 1), 2).unflatten(0, (3, 2))
    )
    step = seq[0]  # [B, C, H, W] channels-last, single-step mode
    single = layers.MaxPool2d(2, step_mode="s")(step)
    assert calls == [1, 1] and torch.equal(single, F.max_pool2d(step, 2))
    layers.MaxPool2d(2)(seq.contiguous())  # NCHW: planes of one channel
    assert calls == [1, 1, 1]
    layers.MaxPool2d(2)(seq.permute(0, 1, 2, 4, 3))  # neither layout: torch's pooling
    layers.MaxPool2d(2)(step)  # multi-step mode expects [T, B, C, H, W]: torch's path decides
    layers.MaxPool2d(3)(seq)  # another kernel size
    layers.MaxPool2d(2, padding=1)(seq)
    layers.MaxPool2d(2, ceil_mode=True)(seq)
    assert calls == [1, 1, 1]


def _expanded(step: torch.Tensor, steps: int) -> torch.Tensor:
    return repeat_steps(step, steps)


@pytest.mark.parametrize(
    "make",
    [
        lambda: N.LIF(ATan(alpha=2.0), tau=2.0, detach_reset=True),
        lambda: N.LIF(Sigmoid(alpha=4.0), tau=3.0, v_reset=None),
        lambda: N.IF(Sigmoid(alpha=4.0)),
        lambda: N.PLIF(ATan(alpha=2.0), init_tau=2.0),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_repeated_step_matches_the_materialised_repetition(make, channels_last: bool) -> None:
    torch.manual_seed(2)
    steps = 5
    base = torch.randn(1, 3, 4, 6, 6, dtype=torch.float64) * 1.5
    if channels_last:
        base = _cl(base[0]).unsqueeze(0)
    a_in = base.clone().requires_grad_()
    b_in = base.clone().requires_grad_()
    a, b = make().double(), make().double()
    b.load_state_dict(a.state_dict())
    out, _ = multi_step_repeated(a, a_in, steps)
    ref, _ = multi_step(b, _expanded(b_in, steps).contiguous())
    assert out.shape == ref.shape and torch.equal(out, ref)
    g = torch.randn_like(ref)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(a_in.grad, b_in.grad, rtol=1e-10, atol=1e-12)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-10, atol=1e-12)


def test_repeated_step_by_hand() -> None:
    """IF neuron, threshold 1, input 0.4 at every step: H = 0.4, 0.8, 1.2 -> spike at t = 2
    (hard reset to 0), then 0.4, 0.8. With L = Σ_t S(t), dL/dX = Σ_t g'(H(t) − 1) ·
    Σ_{τ ≤ t} Π_{τ ≤ k < t} (1 − S(k)) (the detached reset passes gV (1 − S) only)."""
    x = torch.full((1, 1, 1), 0.4, dtype=torch.float64, requires_grad=True)
    neuron = N.IF(Sigmoid(alpha=4.0), detach_reset=True).double()
    out, _ = multi_step_repeated(neuron, x, 5)
    assert out.flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    out.sum().backward()

    def sg(h: float) -> float:  # Sigmoid surrogate's derivative, alpha 4, at H - V_th
        z = 1.0 / (1.0 + math.exp(-4.0 * (h - 1.0)))
        return 4.0 * z * (1.0 - z)

    h = [0.4, 0.8, 1.2, 0.4, 0.8]
    s = [0, 0, 1, 0, 0]
    total = 0.0
    for t in range(5):  # dS(t)/dX summed over the steps τ ≤ t that reach it
        reach = 1
        for tau in range(t, -1, -1):
            total += sg(h[t]) * reach
            if tau > 0:
                reach *= 1 - s[tau - 1]
    assert float(x.grad) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 1000, 4099])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bit_packing_kernel_matches_the_pytorch_packing(n: int, dtype: torch.dtype) -> None:
    """The C++ pack/unpack give the bytes of bitpack.py's PyTorch path (bit j of byte i is
    value 8i + j, the tail zero) and round-trip every {0, 1} tensor exactly."""
    from snnkit.kernels import bitpack

    torch.manual_seed(n)
    x = (torch.rand(n) < 0.3).to(dtype)
    packed = bitpack.pack_bits(x)
    assert packed.dtype == torch.uint8 and packed.numel() == (n + 7) // 8
    weights = 2 ** torch.arange(8)
    padded = torch.cat([x, x.new_zeros((-n) % 8)]).view(-1, 8).long()
    assert torch.equal(packed.long(), (padded * weights).sum(1))
    shape = (n,) if n % 2 else (2, n // 2)
    assert torch.equal(bitpack.unpack_bits(packed, torch.Size(shape), dtype), x.reshape(shape))


def test_direct_input_without_a_neuron_after_the_prefix() -> None:
    """A model of per-sample layers only (no neuron): the prefix's output repeated over T, as
    the dense path computes it."""
    from snnkit.assembly.direct_input import direct_input_module
    from snnkit.assembly.forward import EncodedForward
    from snnkit.components.encoders import DirectEncoder

    torch.manual_seed(5)
    model = torch.nn.Sequential(layers.Flatten(), layers.Linear(12, 3))
    fast = direct_input_module(DirectEncoder(time_steps=3), model)
    assert fast is not None
    x = torch.rand(4, 2, 6)
    dense = EncodedForward.dense(DirectEncoder(time_steps=3), model)
    torch.testing.assert_close(fast(x), dense(x))
