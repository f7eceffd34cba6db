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


class RSNN(nn.Sequential):
    """Recurrent spiking network: flatten → (Linear → recurrent neuron layer) per hidden size →
    Linear → LI readout: ``[T, B, *] -> [T, B, num_classes]`` (the LI membrane potentials).

    Each hidden layer is ``recurrent`` (:class:`~snnkit.components.recurrent.Recurrent`): its
    neurons charge with I(t) = W_in X(t) + W_rec S(t−1) + b_rec (``mode`` all_to_all or
    one_to_one); ``neuron`` is a neuron spec reused for every hidden layer (adaptive ``alif``
    by default, each layer its own instance and surrogate); the readout is a leaky integrator
    with time constant ``readout_tau``. Sources: Bellec et al., "Long short-term memory and
    learning-to-learn in networks of spiking neurons", NeurIPS 2018 (LSNN: recurrent adaptive
    neurons, leaky readout); Yin et al., "Accurate and efficient time-domain classification
    with adaptive spiking recurrent neural networks", Nature Machine Intelligence 2021 (SRNN).
    """

    def __init__(
        self,
        build: Build,
        input_features: int,
        hidden_sizes: list[int],
        num_classes: int = 10,
        neuron: Any = "alif",
        mode: str = "all_to_all",
        bias: bool = True,
        readout_tau: float = 2.0,
        step_mode: str = "m",
    ) -> None:
        sizes = [input_features, *hidden_sizes, num_classes]
        if not hidden_sizes or any(not isinstance(s, int) or s <= 0 for s in sizes):
            raise ValueError(
                "input_features, hidden_sizes (at least one) and num_classes must be positive "
                f"ints, got {input_features!r}, {hidden_sizes!r}, {num_classes!r}"
            )
        specs: list[Any] = ["flatten"]
        for n_in, n_out in itertools.pairwise([input_features, *hidden_sizes]):
            specs += [
                {"name": "linear", "in_features": n_in, "out_features": n_out},
                {
                    "name": "recurrent",
                    "features": n_out,
                    "neuron": neuron,
                    "mode": mode,
                    "bias": bias,
                },
            ]
        specs += [
            {"name": "linear", "in_features": hidden_sizes[-1], "out_features": num_classes},
            {"name": "li", "tau": readout_tau},
        ]
        super().__init__()
        _build_all(self, build, specs, step_mode)
