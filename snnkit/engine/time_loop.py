"""Running a model on batches: the time loop, forward passes, evaluation and predictions.

:class:`TimeLoop` turns a model into one module mapping a sequence ``[T, B, *]`` to
``[T, B, C]`` whatever its step mode: multi-step models take the sequence at once, single-step
models are called once per step. Neuron state is cleared after every sequence (``reset_net``),
as in the reference's training loop. Being one module with one forward per batch, it is what
DistributedDataParallel wraps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit.components.functional import reset_net


class TimeLoop(nn.Module):
    """``[T, B, *] -> [T, B, C]`` through ``model`` in its own step mode, state cleared after."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        model = self.model
        if getattr(model, "step_mode", "m") == "s":
            out = torch.stack([model(seq[t]) for t in range(seq.shape[0])])
        else:
            out = model(seq)
        reset_net(model)
        return out


def forward_batch(exp: Any, x: torch.Tensor, net: nn.Module | None = None,
                  fused: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Encode ``x [B, *]`` and run the model over T steps: ``[T, B, C]``.

    ``net`` replaces the plain time loop (e.g. a DistributedDataParallel wrapper of it).
    ``fused`` (from :func:`snnkit.kernels.event_input.fuse_input`) replaces encoder + input
    layer by the event-driven input path when given.
    """
    if fused is not None:
        out = fused(x)
        reset_net(exp.model)
        return out
    seq = exp.encoder(x)
    return (net or TimeLoop(exp.model))(seq)


@torch.no_grad()
def evaluate(exp: Any, xs: torch.Tensor, ys: torch.Tensor,
             fused: Callable[[torch.Tensor], torch.Tensor] | None = None,
             ) -> tuple[float, float, dict[str, float]]:
    """Loss, accuracy and per-layer firing rates of ``exp.model`` over ``(xs, ys)``."""
    exp.model.eval()
    rates: dict[str, list[float]] = {}
    hooks = [m.register_forward_hook(_rate_hook(name, rates))
             for name, m in exp.model.named_modules() if is_spiking(m)]
    bs = exp.recipe.train.eval_batch_size or exp.recipe.train.batch_size
    total_loss, correct = 0.0, 0
    try:
        for i in range(0, len(ys), bs):
            x, y = xs[i:i + bs], ys[i:i + bs]
            out = forward_batch(exp, x, fused=fused)
            total_loss += float(exp.loss(out.float(), y)) * len(y)
            correct += int((predict(exp.loss, out) == y).sum())
    finally:
        for h in hooks:
            h.remove()
        exp.model.train()
    n = max(len(ys), 1)
    return total_loss / n, correct / n, {k: float(np.mean(v)) for k, v in rates.items()}


def predict(loss: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """The loss's own ``predict`` if it has one, else the class with the highest mean output."""
    if hasattr(loss, "predict"):
        return loss.predict(out)
    return out.mean(0).argmax(-1)


def is_spiking(module: nn.Module) -> bool:
    """A neuron layer: it has a surrogate and a step mode."""
    return hasattr(module, "surrogate") and hasattr(module, "step_mode")


def _rate_hook(name: str, rates: dict[str, list[float]]) -> Any:
    def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        rates.setdefault(name, []).append(float(out.float().mean()))

    return hook
