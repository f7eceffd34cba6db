"""Direct input and channels-last: the prefix before the first neuron runs once per sample and
conv nets run channels-last, with the dense path's outputs, gradients, running statistics and
random draws (float64: to 1e-10; the layout and the summation order are all that differ)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnkit.assembly.direct_input import (
    DirectInput,
    batch_norm_repeated,
    direct_input_module,
    prefer_channels_last,
)
from snnkit.assembly.fast_input import build_forward
from snnkit.assembly.forward import EncodedForward
from snnkit.components import encoders, layers
from snnkit.components import neurons as N
from snnkit.components.surrogates import ATan
from snnkit.kernels import multi_step

T = 4


def _lif() -> N.LIF:
    return N.LIF(ATan(alpha=2.0), tau=2.0, detach_reset=True)


def _csnn() -> nn.Sequential:
    """csnn_mnist's layer list at a small size: shift, [conv-BN-LIF-pool] x 2, dropout, linear."""
    torch.manual_seed(0)
    model = nn.Sequential(
        layers.RandomShift(max_shift=1),
        layers.Conv2d(1, 4, 3, padding=1, bias=False),
        layers.BatchNorm2d(4),
        _lif(),
        layers.MaxPool2d(2),
        layers.Conv2d(4, 6, 3, padding=1, bias=False),
        layers.BatchNorm2d(6),
        _lif(),
        layers.MaxPool2d(2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Linear(6 * 2 * 2, 5),
        _lif(),
        layers.Linear(5, 3),
        N.LI(tau=2.0),
    ).double()
    with torch.no_grad():  # firing in every layer: gradients reach every weight
        model[1].weight.mul_(4.0)
        model[5].weight.mul_(4.0)
        model[11].weight.mul_(6.0)
    return model


def _run(forward: nn.Module, model: nn.Module, x: torch.Tensor, seed: int) -> tuple:
    torch.manual_seed(seed)
    out = forward(x)
    (out * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return out.detach(), grads, buffers


def _assert_same(a: tuple, b: tuple, tol: float = 1e-10) -> None:
    torch.testing.assert_close(a[0], b[0], rtol=tol, atol=tol)
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], rtol=tol, atol=tol, msg=name)
    for name in a[2]:
        torch.testing.assert_close(a[2][name], b[2][name], rtol=tol, atol=tol, msg=name)


def test_repeated_batch_norm_hand_computed() -> None:
    # x = [1, 3] (one channel), 3 copies: μ = 2, σ² = 1, n = 6 values:
    # out = (x − 2) / sqrt(1 + eps); r_μ = 0.9·0 + 0.1·2 = 0.2; r_σ² = 0.9·1 + 0.1·1·6/5 = 1.02
    bn = layers.BatchNorm1d(1).double()
    x = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    out = batch_norm_repeated(bn, x, 3)
    torch.testing.assert_close(
        out, torch.tensor([[-1.0], [1.0]], dtype=torch.float64) / (1 + 1e-5) ** 0.5
    )
    assert bn.running_mean.item() == pytest.approx(0.2, abs=1e-12)
    assert bn.running_var.item() == pytest.approx(1.02, abs=1e-12)
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("mode", ["train", "eval", "no_stats"])
def test_repeated_batch_norm_equals_batch_norm_over_the_copies(momentum, mode: str) -> None:
    torch.manual_seed(0)
    bns = []
    for _ in range(2):
        bn = nn.BatchNorm2d(3, momentum=momentum, track_running_stats=mode != "no_stats")
        bn = bn.double()
        if bn.running_mean is not None:
            bn.running_mean.fill_(0.3)
            bn.running_var.fill_(2.0)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
            bn.bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
        bn.train(mode != "eval")
        bns.append(bn)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64) * 2 + 1
    g = torch.randn(T, 5, 3, 4, 4, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    for _ in range(2):  # twice: momentum None averages over the batches seen
        dense = bns[0](xa.expand(T, *x.shape).flatten(0, 1)).unflatten(0, (T, 5))
        once = batch_norm_repeated(bns[1], xb, T)
        torch.testing.assert_close(once.expand(T, *x.shape), dense, rtol=1e-12, atol=1e-12)
    (dense * g).sum().backward()
    (once * g.sum(0)).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-10, atol=1e-12)
    for pa, pb in zip(bns[0].parameters(), bns[1].parameters(), strict=True):
        torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-10, atol=1e-12)
    for ba, bb in zip(bns[0].buffers(), bns[1].buffers(), strict=True):
        torch.testing.assert_close(bb, ba, rtol=1e-12, atol=1e-12)


def test_repeated_batch_norm_with_one_value_per_channel_runs_the_copies() -> None:
    # x [1, 2]: one value per channel, so torch could not normalise x alone; over 3 copies
    # μ = x, σ² = 0: out = β, r_μ = 0.1 x, r_σ² = 0.9 (σ² n / (n − 1) = 0)
    bn = layers.BatchNorm1d(2).double()
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[2.0, -4.0]], dtype=torch.float64, requires_grad=True)
    out = batch_norm_repeated(bn, x, 3)
    torch.testing.assert_close(out, torch.tensor([[0.5, -0.5]], dtype=torch.float64))
    torch.testing.assert_close(bn.running_mean, torch.tensor([0.2, -0.4], dtype=torch.float64))
    torch.testing.assert_close(bn.running_var, torch.full((2,), 0.9, dtype=torch.float64))
    out.sum().backward()
    assert x.grad is not None  # Σ of normalised values is constant: zero gradient
    torch.testing.assert_close(x.grad, torch.zeros_like(x), rtol=0, atol=1e-10)


def test_direct_input_equals_dense_path() -> None:
    enc = encoders.DirectEncoder(time_steps=T)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64) * 2
    model_a, model_b = _csnn(), _csnn()
    dense = EncodedForward.dense(enc, model_a)
    fast = direct_input_module(enc, model_b)
    assert isinstance(fast, DirectInput) and len(fast.prefix) == 3  # shift, conv, BN
    for seed in (1, 2):  # two batches: the running statistics carry over
        a, b = _run(dense, model_a, x, seed), _run(fast, model_b, x, seed)
        _assert_same(a, b)
        assert a[0].shape == (T, 6, 3) and all(g.abs().sum() > 0 for g in a[1].values())
    for m in (model_a, model_b):
        m.eval()
    _assert_same(_run(dense, model_a, x, 3), _run(fast, model_b, x, 3))


def test_channels_last_conv_net_equals_contiguous_one() -> None:
    enc = encoders.DirectEncoder(time_steps=T)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64) * 2
    model_a, model_b = _csnn(), _csnn()
    assert prefer_channels_last(model_b)
    assert model_b[1].channels_last and model_b[5].weight.is_contiguous(
        memory_format=torch.channels_last
    )
    fast = build_forward(enc, model_b, fast_input=True)  # direct input and channels-last
    seen: list[bool] = []
    model_b[3].register_forward_hook(
        lambda m, a, out: seen.append(out[0].is_contiguous(memory_format=torch.channels_last))
    )
    a = _run(EncodedForward.dense(enc, model_a), model_a, x, 5)
    b = _run(fast, model_b, x, 5)
    _assert_same(a, b)
    assert seen == [True]  # the neuron's spikes came out channels-last
    assert b[1]["5.weight"].is_contiguous(memory_format=torch.channels_last)


def test_neuron_kernels_take_channels_last_steps() -> None:
    torch.manual_seed(0)
    x = torch.randn(T, 3, 5, 4, 4, dtype=torch.float64) * 2
    x_cl = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (T, 3))
    a, b = _lif(), _lif()
    a.record_v = b.record_v = True
    xa, xb = x.clone().requires_grad_(), x_cl.detach().requires_grad_()
    out_a, v_a = multi_step(a, xa)
    out_b, v_b = multi_step(b, xb)
    assert out_b.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out_a, out_b) and v_a is not None and v_b is not None
    torch.testing.assert_close(v_b, v_a, rtol=0, atol=0)
    g = torch.randn_like(x)
    (out_a * g).sum().backward()
    (out_b * g).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-12, atol=1e-12)


def test_flatten_hands_channels_last_gradient_back() -> None:
    x = torch.randn(2, 3, 4, 5, 5).flatten(0, 1).contiguous(memory_format=torch.channels_last)
    x = x.unflatten(0, (2, 3)).requires_grad_()
    out = layers.Flatten()(x)
    assert out.shape == (2, 3, 100) and torch.equal(out, x.detach().reshape(2, 3, 100))
    g = torch.randn(2, 3, 100)
    out.backward(g)
    assert x.grad is not None and torch.equal(x.grad, g.view(2, 3, 4, 5, 5))
    assert x.grad.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)


def test_direct_input_fits_only_direct_encoders_and_per_sample_prefixes() -> None:
    direct = encoders.DirectEncoder(time_steps=T)
    assert direct_input_module(encoders.PoissonEncoder(time_steps=T), _csnn()) is None
    assert direct_input_module(encoders.DirectEncoder(time_steps=1), _csnn()) is None
    assert direct_input_module(direct, nn.Sequential(_lif(), layers.Linear(2, 2))) is None
    shift_only = nn.Sequential(layers.RandomShift(1), _lif())
    assert direct_input_module(direct, shift_only) is None  # nothing to save

    class Conv(layers.Conv2d):  # a subclass may compute per step: not rewritten
        pass

    sub = nn.Sequential(Conv(1, 2, 3), _lif())
    assert direct_input_module(direct, sub) is None
    assert not prefer_channels_last(sub)
    assert not prefer_channels_last(nn.Sequential(layers.Conv2d(1, 2, 3), nn.ReLU()))


def test_direct_input_runs_dense_path_when_hooked() -> None:
    enc = encoders.DirectEncoder(time_steps=T)
    model = _csnn()
    fast = direct_input_module(enc, model)
    assert fast is not None
    shapes: list[tuple[int, ...]] = []
    model[1].register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape)))
    fast(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    assert shapes == [(T, 2, 4, 8, 8)]  # the hook saw every step, as in the dense path


def test_build_forward_uses_direct_input_only_when_asked() -> None:
    enc = encoders.DirectEncoder(time_steps=T)
    assert isinstance(build_forward(enc, _csnn(), fast_input=True), DirectInput)
    model = _csnn()
    assert isinstance(build_forward(enc, model, fast_input=False), EncodedForward)
    assert not model[1].channels_last
