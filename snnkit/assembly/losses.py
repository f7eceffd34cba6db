"""The ``loss`` section -> a loss module: one loss spec, or a list of them summed
(:class:`~snnkit.components.penalties.ComposedLoss`), with each penalty's layers resolved.

A penalty's ``layers`` are recipe paths of spiking layers (``model.layers[2]``, or as ``--set``
writes it, ``model.layers.2``, which needs no quotes in a YAML flow list; a counting label
such as ``model.layers[2] lif`` is accepted too), default every spiking layer; a path
that names no spiking layer is a one-line error with the closest paths. Penalties record the
spikes of the training forward pass once, so they need ``train.memory: full`` (checkpoint,
truncated and online modes re-run or cut the forward pass); anything else is refused.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from snnkit.components.penalties import ComposedLoss
from snnkit.components.recurrent import Recurrent
from snnkit.errors import RecipeError, did_you_mean
from snnkit.plugins.registry import Kind, Registry
from snnkit.recipes.loader import Recipe


def loss_label(spec: Any) -> str:
    """``'tet'`` for one loss, ``'tet + rate_penalty'`` for a list."""
    specs = spec if isinstance(spec, list) else [spec]
    return " + ".join(str(s.get("name")) if isinstance(s, dict) else str(s) for s in specs)


def build_loss(recipe: Recipe, registry: Registry) -> nn.Module:
    """The loss of ``recipe.loss``: a single loss as registered, a list as a ComposedLoss."""
    spec = recipe.loss
    if not isinstance(spec, list):
        loss = registry.build(Kind.LOSS, spec, at="loss")
        if getattr(loss, "penalty", False):
            raise RecipeError(
                f"loss: '{spec['name']}' is a penalty on the network's activity, not a task "
                f"loss — list it after one: loss: [{{name: tet}}, {{name: {spec['name']}}}]"
            )
        return loss
    parts = [(s["name"], registry.build(Kind.LOSS, s, at=f"loss[{i}]")) for i, s in enumerate(spec)]
    if all(getattr(m, "penalty", False) for _, m in parts):
        raise RecipeError(
            f"loss: [{loss_label(spec)}] has no task loss — put one first, e.g. "
            "loss: [{name: tet}, {name: rate_penalty}]"
        )
    return ComposedLoss(parts)


def attach_penalties(
    loss: nn.Module, model: nn.Module, forward: nn.Module, memory: str, paths: Any
) -> nn.Module:
    """Point each penalty of ``loss`` at its layers; clear them when ``forward`` starts a
    batch. ``paths``: module -> (recipe path, spec name) of every built layer. Returns
    ``forward``."""
    if not isinstance(loss, ComposedLoss):
        return forward
    penalties = [(i, part) for i, (part, pen) in enumerate(zip(loss.parts, loss.is_penalty)) if pen]
    if not penalties:
        return forward
    if memory != "full":
        i, part = penalties[0]
        raise RecipeError(
            f"loss[{i}] ({loss.names[i]}): a penalty on spikes needs train.memory: full, but "
            f"training runs in {memory} mode (it re-runs or cuts the forward pass, so the spikes "
            "would be recorded twice or not at all) — set train.memory: full"
        )
    spiking = _spiking_layers(model, paths)
    for i, part in penalties:
        watch = getattr(part, "watch", None)
        if watch is None:
            continue
        wanted = getattr(part, "layers", None)
        if wanted is None:
            watch(spiking.values())
            continue
        chosen = []
        for j, path in enumerate(wanted):
            key = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path.strip().split(" ")[0])
            if key not in spiking:
                hint = did_you_mean(key, list(spiking), n=2) or " —"
                raise RecipeError(
                    f"loss[{i}].layers[{j}]: '{path}' is not a spiking layer{hint} spiking "
                    f"layers: {', '.join(spiking) or 'none'}"
                )
            chosen.append(spiking[key])
        watch(chosen)
    forward.register_forward_pre_hook(lambda _m, _a: loss.clear())
    return forward


def _spiking_layers(model: nn.Module, paths: Any) -> dict[str, nn.Module]:
    """Recipe path -> module of every spiking layer (a neuron that runs on its own: not the
    neuron a recurrent layer steps itself), in model order."""
    inner = {id(m.neuron) for m in model.modules() if isinstance(m, Recurrent)}
    out = {}
    for m in model.modules():
        spiking = hasattr(m, "surrogate") and hasattr(m, "step_mode")
        if spiking and id(m) not in inner and m in paths:
            out[paths[m][0]] = m
    return out
