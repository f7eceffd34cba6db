"""Every built-in component passes the conformance kit that plugin authors use (snnkit.testing).

The components come from the registry (built-ins only, no installed plugins), never from a
hand-written list, and are built exactly as snnkit.assembly.assemble builds them: ``registry.build``
with the arguments snnkit supplies (a neuron's surrogate, an encoder's time_steps).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from snnkit.plugins.loader import build_registry
from snnkit.plugins.registry import Kind
from snnkit.testing import check_encoder, check_loss, check_neuron, check_surrogate

REGISTRY = build_registry(entry_points=False)
TIME_STEPS = 4


def names(kind: Kind) -> list[str]:
    return [component.name for component in REGISTRY.list(kind)]


DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]


def test_every_checked_kind_has_components() -> None:
    # Guards the parametrisations below against an empty registry (which would check nothing).
    for kind in (Kind.SURROGATE, Kind.NEURON, Kind.ENCODER, Kind.LOSS):
        assert names(kind), kind


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", names(Kind.SURROGATE))
def test_surrogate_conforms(name: str, device: str) -> None:
    check_surrogate(REGISTRY.build(Kind.SURROGATE, name), device=device)


@pytest.mark.parametrize("name", names(Kind.SURROGATE))
def test_surrogate_conforms_with_other_parameters(name: str) -> None:
    # Doubling every float shape parameter moves the kinks (rect's ±1/(2α) and the like):
    # the check must still find and skip them by itself.
    params = {
        p.name: 2 * p.default
        for p in REGISTRY.get(Kind.SURROGATE, name).parameters().values()
        if isinstance(p.default, float)
    }
    check_surrogate(REGISTRY.build(Kind.SURROGATE, {"name": name, **params}), dtype=torch.float64)


def neuron_factory(name: str) -> Any:
    """Build like assemble.make_builder: registry.build with a supplied surrogate (if given)."""

    def factory(surrogate: nn.Module | None = None) -> nn.Module:
        if surrogate is None:  # the component's own default surrogate
            return REGISTRY.build(Kind.NEURON, name, at=f"neuron {name}")
        return REGISTRY.build(Kind.NEURON, name, at=f"neuron {name}", surrogate=surrogate)

    return factory


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", names(Kind.NEURON))
def test_neuron_conforms(name: str, device: str) -> None:
    def surrogate() -> nn.Module:
        return REGISTRY.build(Kind.SURROGATE, "sigmoid")

    check_neuron(neuron_factory(name), surrogate=surrogate, device=device)


@pytest.mark.parametrize("name", names(Kind.NEURON))
def test_neuron_conforms_in_float64_with_soft_reset(name: str) -> None:
    params = REGISTRY.get(Kind.NEURON, name).parameters()
    spec = {"name": name, **({"v_reset": None} if "v_reset" in params else {})}
    check_neuron(
        REGISTRY.build(Kind.NEURON, spec, surrogate=REGISTRY.build(Kind.SURROGATE, "atan")),
        dtype=torch.float64,
        shapes=((5, 3, 4),),
    )


# Encoders that consume a dimension of the sample as time (documented in their docstrings);
# every other encoder maps [B, *] to [T, B, *].
ENCODER_OPTIONS: dict[str, dict[str, Any]] = {
    # delta: x[B, L, *] with time along dim 1 -> [T, B, *]
    "delta": {
        "shapes": ((3, 6, 5), (2, 2, 4, 4)),
        "expected_shape": lambda x, t: (t, x.shape[0], *x.shape[2:]),
    },
    # sequence (time_dim=-2 by default): sample [..., T, W] -> [T, B, ..., W]
    "sequence": {
        "shapes": ((3, TIME_STEPS, 5), (2, 1, TIME_STEPS, 4)),
        "expected_shape": lambda x, t: (t, *x.shape[:-2], x.shape[-1]),
    },
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", names(Kind.ENCODER))
def test_encoder_conforms(name: str, device: str) -> None:
    encoder = REGISTRY.build(Kind.ENCODER, name, at="encoder", time_steps=TIME_STEPS)
    check_encoder(encoder, TIME_STEPS, device=device, **ENCODER_OPTIONS.get(name, {}))


# penalties (rate_penalty) read the network's spikes, not the output: tests/test_penalties.py
TASK_LOSSES = [c.name for c in REGISTRY.list(Kind.LOSS) if not getattr(c.factory, "penalty", 0)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", TASK_LOSSES)
def test_loss_conforms(name: str, device: str) -> None:
    check_loss(REGISTRY.build(Kind.LOSS, name, at="loss"), device=device)


def _spiking_neurons() -> list[str]:
    return [n for n in names(Kind.NEURON) if n != "li"]


@pytest.mark.parametrize("mode", ["all_to_all", "one_to_one"])
@pytest.mark.parametrize("name", _spiking_neurons())
def test_recurrent_layer_conforms_around_every_spiking_neuron(name: str, mode: str) -> None:
    from snnkit.assembly.assemble import make_builder
    from snnkit.testing import check_recurrent

    build = make_builder(REGISTRY)
    spec = {"name": "recurrent", "features": 6, "neuron": name, "mode": mode}

    def factory() -> nn.Module:
        layer = build(spec, "layers[0]")
        with torch.no_grad():
            layer.weight.mul_(2.0)  # strong enough feedback to change spikes
            layer.bias.fill_(0.1)
        return layer

    check_recurrent(factory)


@pytest.mark.parametrize("mode", ["all_to_all", "one_to_one"])
def test_rsnn_model_conforms(mode: str) -> None:
    from snnkit.assembly.assemble import make_builder
    from snnkit.testing import check_recurrent_model

    spec = {"name": "rsnn", "input_features": 5, "hidden_sizes": [6, 4], "mode": mode}

    def factory() -> nn.Module:
        model = REGISTRY.build(Kind.MODEL, spec, at="model", build=make_builder(REGISTRY))
        with torch.no_grad():
            for layer in model:
                if hasattr(layer, "bias") and layer.bias is not None:
                    layer.bias.fill_(0.5)
        return model

    check_recurrent_model(factory, (8, 3, 5))
