"""The model zoo builds at small sizes, runs one step in both step modes, and refuses bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from snnkit.assembly.assemble import make_builder
from snnkit.components.functional import reset_net, set_step_mode
from snnkit.components.zoo.spikformer import spiking_self_attention
from snnkit.errors import ParameterError
from snnkit.plugins.loader import get_registry
from snnkit.plugins.registry import Kind

pytestmark = pytest.mark.usefixtures("only_builtins")

SMALL: list[tuple[str, dict[str, Any]]] = [
    ("sew_resnet", {"depth": 18, "width": 2, "connect": "iand"}),
    ("sew_resnet", {"depth": 34, "width": 2, "stem": "imagenet"}),
    ("sew_resnet", {"depth": 50, "width": 2, "connect": "add"}),
    ("spiking_vgg", {"depth": 11, "width": 2}),
    ("spiking_vgg", {"depth": 16, "width": 2, "batch_norm": False}),
    ("spikformer", {"depth": 1, "dim": 16, "heads": 2}),
]


def _model(name: str, params: dict[str, Any]) -> torch.nn.Module:
    registry = get_registry()
    spec = {"name": name, "num_classes": 5, **params}
    return registry.build(Kind.MODEL, spec, at="model", build=make_builder(registry))


@pytest.mark.parametrize(("name", "params"), SMALL, ids=lambda v: str(v))
def test_zoo_model_runs_one_step_in_both_modes(name: str, params: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = _model(name, params).eval()
    x = torch.rand(2, 2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
        reset_net(model)
        set_step_mode(model, "s")
        ys = torch.stack([model(x[t]) for t in range(2)])
    assert y.shape == (2, 2, 5)
    torch.testing.assert_close(ys, y, rtol=1e-4, atol=1e-5)
    assert model.__doc__ and ("et al." in model.__doc__)


def test_spikformer_trains_a_step() -> None:
    model = _model("spikformer", {"depth": 1, "dim": 16, "heads": 2})
    model(torch.rand(2, 2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_spiking_self_attention_is_qktv_times_the_scale() -> None:
    q = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    k = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Q K^T = [[1, 0], [2, 1]]; times V (identity) = the same; times 0.125
    expect = torch.tensor([[0.125, 0.0], [0.25, 0.125]])
    torch.testing.assert_close(spiking_self_attention(q, k, v), expect)


def test_sew_resnet_has_the_depth_it_names() -> None:
    convs = lambda m: sum(isinstance(c, torch.nn.Conv2d) for c in m.modules())  # noqa: E731
    # 18: stem + 16 block convs + 3 downsampling shortcuts; 50: stem + 48 + 4
    assert convs(_model("sew_resnet", {"depth": 18, "width": 2})) == 1 + 16 + 3
    assert convs(_model("sew_resnet", {"depth": 50, "width": 2})) == 1 + 48 + 4


@pytest.mark.parametrize(
    ("name", "params", "text"),
    [
        ("sew_resnet", {"depth": 20}, "model.depth"),
        ("sew_resnet", {"connect": "xor"}, "model.connect"),
        ("spiking_vgg", {"depth": 19}, "model.depth"),
        ("spikformer", {"dim": 20, "heads": 3}, "multiple"),
    ],
)
def test_zoo_bad_parameters_are_one_line_errors(name: str, params: dict, text: str) -> None:
    with pytest.raises(ParameterError, match=text) as info:
        _model(name, params)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "params"), SMALL[::2], ids=lambda v: str(v))
def test_zoo_models_pass_the_conformance_check(name: str, params: dict[str, Any]) -> None:
    from snnkit.testing import check_model

    check_model(_model(name, params), [3, 32, 32], 5, time_steps=2)


def test_check_model_catches_a_state_leak() -> None:
    from snnkit.testing import check_model

    class Leaky(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return x * self.w * self.calls

    with pytest.raises(AssertionError, match="state leaks"):
        check_model(Leaky(), [4], 4)
