"""Running an Experiment on batches: evaluation and predictions.

Every forward pass goes through ``exp.forward_module`` (``x [B, *] -> [T, B, C]``, built by
assembly: encoder and time loop, or the fast input rewrite), which clears neuron state after
each batch. With a :class:`~snnkit.costs.counting.CostCounter` (``recipe.costs.enabled``, the
default) the pass also counts every layer's spikes, SOPs and MACs; its firing rates then come
from those counts (spikes / (neurons · steps · samples)) instead of per-batch means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit.costs.counting import CostCounter
from snnkit.costs.energy import EnergyModel


@torch.no_grad()
def evaluate(
    exp: Any, data: Any, ys: torch.Tensor | None = None
) -> tuple[float, float, dict[str, float]]:
    """Loss, accuracy and per-layer firing rates of ``exp.model`` over a test set.

    ``data`` is a batch source (:mod:`snnkit.engine.batches`: ``len`` and ``in_order(size)``),
    or, with ``ys``, an input tensor ``xs [N, *]`` with its targets ``ys [N]``. Batches of
    ``train.eval_batch_size`` (default ``train.batch_size``), in order. The rates are the mean
    over batches of each batch's mean output.
    """
    rates: dict[str, list[float]] = {}
    hooks = [
        m.register_forward_hook(_rate_hook(name, rates))
        for name, m in exp.model.named_modules()
        if is_spiking(m)
    ]
    try:
        loss, acc = _test_pass(exp, data, ys, None)
    finally:
        for h in hooks:
            h.remove()
    return loss, acc, {k: float(np.mean(v)) for k, v in rates.items()}


@torch.no_grad()
def evaluate_counted(
    exp: Any, data: Any, counter: CostCounter, ys: torch.Tensor | None = None
) -> tuple[float, float]:
    """:func:`evaluate`'s loss and accuracy, counting the pass with ``counter`` (attached for
    the pass, told the samples; read it with ``counter.report()``)."""
    counter.attach()
    try:
        return _test_pass(exp, data, ys, counter)
    finally:
        counter.detach()


def _test_pass(
    exp: Any, data: Any, ys: torch.Tensor | None, counter: CostCounter | None
) -> tuple[float, float]:
    exp.model.eval()
    bs = exp.recipe.train.eval_batch_size or exp.recipe.train.batch_size
    if ys is not None:
        from snnkit.engine.batches import MemoryBatches

        data = MemoryBatches(data, ys)
    total_loss, correct, n = 0.0, 0, 0
    try:
        for x, y in data.in_order(bs):
            n += len(y)
            out = exp.forward_module(x)
            total_loss += float(eval_loss(exp.loss, out.float(), y)) * len(y)
            correct += int((predict(exp.loss, out) == y).sum())
            if counter is not None:
                counter.add_samples(len(y))
    finally:
        exp.model.train()
    n = max(n, 1)
    return total_loss / n, correct / n


def make_counter(exp: Any) -> CostCounter | None:
    """The test pass's :class:`~snnkit.costs.counting.CostCounter` under ``recipe.costs``
    (None when ``costs.enabled`` is false)."""
    costs = exp.recipe.costs
    if not costs.enabled:
        return None
    energy = EnergyModel(ac_pj=costs.energy.ac_pj, mac_pj=costs.energy.mac_pj)
    return CostCounter(exp.model, fold_bn=costs.fold_bn, energy=energy, types=layer_types(exp))


def layer_types(exp: Any) -> dict[str, str]:
    """Module name -> the recipe's name for it (``'1' -> 'linear'``) for ``model.layers``."""
    layers = exp.recipe.model.get("layers")
    if not isinstance(layers, list) or len(layers) != len(exp.model._modules):
        return {}
    names = {}
    for i, spec in enumerate(layers):
        name = (
            spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
        )
        if isinstance(name, str):
            names[str(i)] = name
    return names


def eval_loss(loss: nn.Module, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of a test batch: a composed loss's task parts only when it has ``task``
    (penalties on the training pass's activity are not part of the test loss)."""
    task = getattr(loss, "task", None)
    return task(out, y) if task is not None else loss(out, y)


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
