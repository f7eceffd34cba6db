"""Composed losses and the firing-rate penalty.

A recipe's ``loss:`` may be a list of loss specs, e.g.
``[{name: tet}, {name: rate_penalty, target: 0.05, weight: 0.1, layers: [model.layers[2]]}]``;
:class:`ComposedLoss` adds them up::

    L = Σ_k L_k(O, y)

Its parts are the *task* losses (the losses of :mod:`snnkit.components.losses`, on the output
``O[T, B, C]`` against ``y``) and the *penalties* (``penalty = True``: they read the network's
activity, not only its output). ``predict`` is the first task loss's; :meth:`ComposedLoss.task`
is the sum of the task parts (the test loss: penalties act on training only). After each call,
``last_parts`` holds each part's value (detached), keyed by its name (``tet``, ``rate_penalty``;
a repeated name gets ``_2``, ``_3``, ...).

:class:`RatePenalty` (``rate_penalty``), for chosen spiking layers l with per-neuron firing
rates ``r_l,i`` = mean over the T steps and the B samples of the batch of neuron i's spikes::

    l2 (default):  P = weight · mean_l mean_i (r_l,i − target)²
    upper:         P = weight · mean_l mean_i relu(r_l,i − target)²

The gradient flows into the spikes through each neuron's surrogate. The layers' outputs are
recorded by forward hooks while gradients are enabled, cleared when the forward module starts a
batch and consumed by the loss call; a layer called once per step (single-step mode) has its
T outputs stacked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ComposedLoss", "RatePenalty"]

PENALTY_MODES = ("l2", "upper")


class RatePenalty(nn.Module):
    """Firing-rate penalty: weight · mean_l mean_i (r_l,i − target)² (``upper``: only above)."""

    penalty = True

    def __init__(
        self,
        target: float = 0.05,
        weight: float = 0.1,
        mode: str = "l2",
        layers: list[str] | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= target <= 1:
            raise ValueError(f"target must be a firing rate in [0, 1], got {target!r}")
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0 (it multiplies the penalty), got {weight!r}")
        if mode not in PENALTY_MODES:
            raise ValueError(f"mode must be l2 or upper, got {mode!r}")
        if layers is not None and (
            not isinstance(layers, list) or not all(isinstance(p, str) for p in layers)
        ):
            raise ValueError(
                f"layers must be a list of layer paths such as model.layers[2], got {layers!r}"
            )
        self.target, self.weight, self.mode = float(target), float(weight), mode
        self.layers = layers
        self._watched: list[nn.Module] = []
        self._seen: dict[nn.Module, list[Tensor]] = {}
        self._handles: list[Any] = []

    def watch(self, modules: Iterable[nn.Module]) -> None:
        """Record the spikes of ``modules`` (the chosen layers) on every forward with grad."""
        for h in self._handles:
            h.remove()
        self._watched = list(modules)
        self._handles = [m.register_forward_hook(self._record) for m in self._watched]
        self.clear()

    def clear(self) -> None:
        """Forget what was recorded (a new batch starts)."""
        self._seen = {m: [] for m in self._watched}

    def _record(self, module: nn.Module, _inputs: Any, output: Any) -> None:
        if torch.is_grad_enabled() and isinstance(output, Tensor):
            seen = self._seen[module]
            axis = 0 if getattr(module, "step_mode", "m") == "s" else 1
            if seen and seen[-1].shape[axis] != output.shape[axis]:
                seen.clear()  # another batch size: what was kept belongs to another pass
            seen.append(output)

    def rates(self) -> list[Tensor]:
        """Per layer, the per-neuron rates r_l = mean over (T, B) of the recorded spikes."""
        out = []
        for m in self._watched:
            seen = self._seen.get(m) or []
            if not seen:
                continue
            if getattr(m, "step_mode", "m") == "s":
                spikes = torch.stack(seen)  # T calls of [B, *] -> [T, B, *]
            else:
                spikes = torch.cat(seen)  # [T, B, *] (several calls: more steps)
            out.append(spikes.float().mean((0, 1)))
        return out

    def forward(self, output: Tensor, _target: Tensor) -> Tensor:
        rates = self.rates()
        self.clear()
        if not rates:  # nothing recorded (no gradients, e.g. a shape check)
            return output.new_zeros(())
        per_layer = []
        for r in rates:
            gap = r - self.target
            if self.mode == "upper":
                gap = torch.relu(gap)
            per_layer.append(gap.square().mean())
        return self.weight * torch.stack(per_layer).mean()

    def extra_repr(self) -> str:
        return f"target={self.target}, weight={self.weight}, mode={self.mode!r}"


class ComposedLoss(nn.Module):
    """Σ of named loss parts; ``predict`` and :meth:`task` from the task parts (module doc)."""

    #: the penalties' hooks keep Python lists of tensors: no CUDA graph capture
    capturable = False

    def __init__(self, parts: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        names: list[str] = []
        for name, _ in parts:
            base, k = name, 2
            while name in names:
                name, k = f"{base}_{k}", k + 1
            names.append(name)
        self.names = names
        self.parts = nn.ModuleList([m for _, m in parts])
        self.is_penalty = [bool(getattr(m, "penalty", False)) for _, m in parts]
        if all(self.is_penalty):
            raise ValueError("a composed loss needs a task loss (e.g. tet) besides penalties")
        self.first_task = self.parts[self.is_penalty.index(False)]
        self.last_parts: dict[str, Tensor] = {}

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        values = [part(output, target) for part in self.parts]
        self.last_parts = {n: v.detach() for n, v in zip(self.names, values)}
        return torch.stack(values).sum()

    def task(self, output: Tensor, target: Tensor) -> Tensor:
        """The sum of the task parts (no penalty): the test loss."""
        values = [p(output, target) for p, pen in zip(self.parts, self.is_penalty) if not pen]
        return torch.stack(values).sum()

    def predict(self, output: Tensor) -> Tensor:
        """The first task loss's prediction (else the class with the highest mean output)."""
        own = getattr(self.first_task, "predict", None)
        if own is not None:
            return own(output)
        return output.detach().mean(0).argmax(-1)

    def penalties(self) -> list[nn.Module]:
        """The parts that read the network's activity."""
        return [p for p, pen in zip(self.parts, self.is_penalty) if pen]

    def clear(self) -> None:
        """A new batch starts: every penalty forgets what it recorded."""
        for p in self.penalties():
            clear = getattr(p, "clear", None)
            if clear is not None:
                clear()
