"""Architectures built from recipe specs.

A model factory receives ``build(spec, at) -> nn.Module`` from snnkit, which turns a layer or
neuron spec (a name or ``{name: ..., **params}``) into a module, so architectures stay
recipe-driven and any registered layer or neuron (a plugin's too) can appear in them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from torch import nn

from snnkit.components.functional import check_step_mode, set_step_mode

Build = Callable[[Any, str], nn.Module]


def _build_all(model: nn.Sequential, build: Build, specs: list[Any], step_mode: str) -> None:
    """Fill ``model`` with ``build(spec, "layers[i]")`` for each spec, then set ``step_mode``
    on the model and every layer and neuron in it."""
    check_step_mode(step_mode)
    for i, spec in enumerate(specs):
        model.append(build(spec, f"layers[{i}]"))
    setattr(model, "step_mode", step_mode)  # noqa: B010 - a plain attribute of the container
    set_step_mode(model, step_mode)


class Sequential(nn.Sequential):
    """Layers and neurons applied in order, as ``nn.Sequential``: ``[T, B, *] -> [T, B, C]``.

    ``layers`` is a list of specs; each names a registered layer or neuron. ``step_mode``
    ('m' multi-step, 's' single-step) is set on every layer and neuron.
    """

    def __init__(self, build: Build, layers: list[Any], step_mode: str = "m") -> None:
        if not layers:
            raise ValueError("layers must list at least one layer or neuron")
        super().__init__()
        _build_all(self, build, layers, step_mode)


class MLP(nn.Sequential):
    """Fully connected spiking network: (Linear → neuron) for each consecutive pair of ``sizes``.

    ``sizes = [784, 10]`` with ``bias: false`` and neuron ``lif`` is the reference network
    (after a flatten). ``neuron`` is a neuron spec reused for every layer (each layer gets its
    own instance and surrogate).
    """

    def __init__(
        self,
        build: Build,
        sizes: list[int],
        neuron: Any = "lif",
        bias: bool = True,
        step_mode: str = "m",
    ) -> None:
        if len(sizes) < 2 or any(s <= 0 for s in sizes):
            raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
        specs: list[Any] = ["flatten"]
        for n_in, n_out in itertools.pairwise(sizes):
            specs += [
                {"name": "linear", "in_features": n_in, "out_features": n_out, "bias": bias},
                neuron,
            ]
        super().__init__()
        _build_all(self, build, specs, step_mode)
