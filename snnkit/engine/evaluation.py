"""Running an Experiment on batches: evaluation and predictions.

Every forward pass goes through ``exp.forward_module`` (``x [B, *] -> [T, B, C]``, built by
assembly: encoder and time loop, or the fast input rewrite), which clears neuron state after
each batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def evaluate(
    exp: Any, data: Any, ys: torch.Tensor | None = None
) -> tuple[float, float, dict[str, float]]:
    """Loss, accuracy and per-layer firing rates of ``exp.model`` over a test set.

    ``data`` is a batch source (:mod:`snnkit.engine.batches`: ``len`` and ``in_order(size)``),
    or, with ``ys``, an input tensor ``xs [N, *]`` with its targets ``ys [N]``. Batches of
    ``train.eval_batch_size`` (default ``train.batch_size``), in order.
    """
    exp.model.eval()
    rates: dict[str, list[float]] = {}
    hooks = [
        m.register_forward_hook(_rate_hook(name, rates))
        for name, m in exp.model.named_modules()
        if is_spiking(m)
    ]
    bs = exp.recipe.train.eval_batch_size or exp.recipe.train.batch_size
    if ys is not None:
        from snnkit.engine.batches import MemoryBatches

        data = MemoryBatches(data, ys)
    total_loss, correct, n = 0.0, 0, 0
    try:
        for x, y in data.in_order(bs):
            n += len(y)
            out = exp.forward_module(x)
            total_loss += float(exp.loss(out.float(), y)) * len(y)
            correct += int((predict(exp.loss, out) == y).sum())
    finally:
        for h in hooks:
            h.remove()
        exp.model.train()
    n = max(n, 1)
    return total_loss / n, correct / n, {k: float(np.mean(v)) for k, v in rates.items()}


def predict(loss: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """The loss's own ``predict`` if it has one, else the class with the highest mean output."""
    own = getattr(loss, "predict", None)
    if own is not None:
        return own(out)
    return out.mean(0).argmax(-1)


def is_spiking(module: nn.Module) -> bool:
    """A neuron layer: it has a surrogate and a step mode."""
    return hasattr(module, "surrogate") and hasattr(module, "step_mode")


def _rate_hook(name: str, rates: dict[str, list[float]]) -> Any:
    def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        rates.setdefault(name, []).append(float(out.float().mean()))

    return hook
