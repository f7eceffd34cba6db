"""Optimizer factories: the torch optimizer with the recipe's settings; fused Adam on CUDA."""

from __future__ import annotations

import pytest
import torch

from snnkit.components import optim


@pytest.mark.parametrize("factory", [optim.adam, optim.adamw])
def test_adam_family_on_cpu_is_torchs_default_implementation(factory) -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = factory([w], lr=0.5)
    assert not opt.defaults.get("fused") and opt.defaults["lr"] == 0.5


def test_adam_step_is_the_adam_rule() -> None:
    # First Adam step: m = (1-b1) g, v = (1-b2) g^2, m^ = g, v^ = g^2, w -= lr * g / (|g| + eps).
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = optim.adam([w], lr=0.1, eps=1e-8)
    w.grad = torch.tensor([0.5, -4.0], dtype=torch.float64)
    opt.step()
    want = torch.tensor(
        [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 4.0 / (4.0 + 1e-8)], dtype=torch.float64
    )
    torch.testing.assert_close(w.detach(), want, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("factory", [optim.adam, optim.adamw])
def test_adam_family_is_fused_on_cuda_and_matches_cpu(factory) -> None:
    g = torch.Generator().manual_seed(0)
    start, grads = torch.randn(50, generator=g), [torch.randn(50, generator=g) for _ in range(5)]
    results = []
    for device in ("cpu", "cuda"):
        w = torch.nn.Parameter(start.clone().to(device))  # .to("cpu") would alias start
        opt = factory([w], lr=0.01)
        assert bool(opt.defaults.get("fused")) == (device == "cuda")
        for grad in grads:
            w.grad = grad.to(device)
            opt.step()
        results.append(w.detach().cpu())
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_learning_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        optim.adam([torch.nn.Parameter(torch.ones(1))], lr=0.0)
