"""Residual blocks, repeats and branches: golden joins, both step modes, located errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from snnkit.assembly.assemble import assemble, make_builder
from snnkit.components import connect as C
from snnkit.components.blocks import Branches, Repeat, Residual
from snnkit.components.functional import reset_net, set_step_mode
from snnkit.errors import ParameterError, RecipeError
from snnkit.plugins.loader import get_registry
from snnkit.recipes.loader import load_recipe

pytestmark = pytest.mark.usefixtures("only_builtins")

A = torch.tensor([0.0, 0.0, 1.0, 1.0])
S = torch.tensor([0.0, 1.0, 0.0, 1.0])


def test_connect_functions_match_their_truth_tables() -> None:
    assert C.add(A, S).tolist() == [0, 1, 1, 2]
    assert C.and_(A, S).tolist() == [0, 0, 0, 1]
    assert C.iand(A, S).tolist() == [0, 1, 0, 0]  # (not A) and S


def test_iand_gradient_is_the_product_rule() -> None:
    a, s = A.clone().requires_grad_(), S.clone().requires_grad_()
    C.iand(a, s).sum().backward()
    assert a.grad.tolist() == (-S).tolist()  # d/dA (1 - A) S = -S
    assert s.grad.tolist() == (1 - A).tolist()


def _build(spec: Any) -> torch.nn.Module:
    return make_builder(get_registry())(spec, "layers[0]")


def _same(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Multi-step output, checked equal to the single-step loop."""
    module.eval()
    y = module(x)
    reset_net(module)
    set_step_mode(module, "s")
    ys = torch.stack([module(x[t]) for t in range(x.shape[0])])
    reset_net(module)
    set_step_mode(module, "m")
    torch.testing.assert_close(y, ys)
    return y


def test_residual_iand_on_known_spikes() -> None:
    # body: an IF neuron with threshold 2 on the input spikes S = x: it fires on the second
    # spike it integrates; IAND lets through the input spikes where the body is silent.
    block = _build(
        {"name": "residual", "connect": "iand", "body": [{"name": "if", "v_threshold": 2.0}]}
    )
    assert isinstance(block, Residual)
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]).view(4, 1, 2)
    # IF threshold 2, hard reset to 0: channel 0 sums 1, 2 (fire, reset), 1, 1 -> A = 0 1 0 0
    # channel 1 sums 0, 1, 2 (fire), 1 -> A = 0 0 1 0
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]).view(4, 1, 2)
    y = _same(block, x)  # both step modes
    torch.testing.assert_close(y, (1 - a) * x)
    assert y.view(4, 2).tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]


@pytest.mark.parametrize(("connect", "expect"), [("add", [2, 0.5]), ("and", [1, 0])])
def test_residual_add_and_with_a_spiking_body(connect: str, expect: list[float]) -> None:
    block = _build({"name": "residual", "connect": connect, "body": [{"name": "if"}]})
    x = torch.tensor([1.0, 0.5]).view(1, 1, 2)  # IF fires on 1, not on 0.5
    assert _same(block, x).view(-1).tolist() == expect


def test_spiking_shortcut_fires_on_the_sum_and_membrane_adds() -> None:
    spiking = _build(
        {
            "name": "residual",
            "connect": "spiking",
            "body": [{"name": "linear", "in_features": 2, "out_features": 2, "bias": False}],
            "neuron": {"name": "if", "v_threshold": 1.0},
        }
    )
    with torch.no_grad():
        spiking.body[0].weight.copy_(torch.eye(2) * 0.5)
    x = torch.tensor([1.0, 0.5]).view(1, 1, 2)  # sum: 1.5 (fires), 0.75 (does not)
    assert _same(spiking, x).view(-1).tolist() == [1.0, 0.0]
    membrane = _build({"name": "residual", "connect": "membrane", "body": [{"name": "if"}]})
    assert _same(membrane, x).view(-1).tolist() == [2.0, 0.5]  # SN(x) + x


def test_repeat_builds_independent_copies_and_branches_join() -> None:
    rep = _build(
        {
            "name": "repeat",
            "times": 3,
            "layers": [{"name": "linear", "in_features": 2, "out_features": 2}],
        }
    )
    assert isinstance(rep, Repeat) and len(rep) == 3
    assert rep[0][0].weight.data_ptr() != rep[1][0].weight.data_ptr()
    x = torch.randn(3, 2, 2)
    expect = x
    for copy in rep:
        expect = copy[0](expect)
    torch.testing.assert_close(_same(rep, x), expect)
    cat = _build({"name": "branches", "join": "concat", "branches": [[], [{"name": "if"}]]})
    assert isinstance(cat, Branches)
    x = torch.tensor([1.0, 0.2]).view(1, 1, 2)
    torch.testing.assert_close(_same(cat, x).view(-1), torch.tensor([1.0, 0.2, 1.0, 0.0]))
    added = _build({"name": "branches", "join": "add", "branches": [[], [{"name": "if"}]]})
    torch.testing.assert_close(_same(added, x).view(-1), torch.tensor([2.0, 0.2]))


def _recipe(layers: list[Any], **extra: Any) -> Any:
    return load_recipe(
        {
            "time_steps": 2,
            "dataset": {
                "name": "synthetic",
                "num_samples": 8,
                "shape": [1, 8, 8],
                "num_classes": 10,
            },
            "encoder": "direct",
            "model": {"name": "sequential", "layers": layers},
            "loss": "ce_rate",
            "optimizer": "adam",
            "train": {"epochs": 1, "batch_size": 4, "device": "cpu"},
            **extra,
        }
    )


CONV = {"name": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1}
HEAD = ["flatten", {"name": "linear", "in_features": 64, "out_features": 10}]


def test_a_recipe_with_blocks_assembles_and_trains_one_step() -> None:
    body = [
        {"name": "conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"name": "batchnorm2d", "num_features": 4},
        "lif",
    ]
    layers = [
        CONV,
        "lif",
        {"name": "residual", "connect": "iand", "body": body},
        {"name": "repeat", "times": 2, "layers": [{"name": "residual", "body": body}]},
        {"name": "maxpool2d", "kernel_size": 2},
        *HEAD,
    ]
    exp = assemble(_recipe(layers), get_registry())
    x, _ = exp.train_data.inputs[:4], None
    out = exp.forward_module(x)
    assert out.shape == (2, 4, 10)
    out.sum().backward()


def test_shortcut_shape_mismatch_names_the_block() -> None:
    body = [{"name": "conv2d", "in_channels": 4, "out_channels": 8, "kernel_size": 3, "padding": 1}]
    layers = [CONV, "lif", {"name": "residual", "body": body}, *HEAD]
    with pytest.raises(RecipeError) as info:
        assemble(_recipe(layers), get_registry())
    message = str(info.value)
    assert message.startswith("model.layers[2] (residual): residual: the body gives per-step")
    assert "[8, 8, 8] but the shortcut gives [4, 8, 8]" in message and "\n" not in message


def test_a_nested_layer_that_does_not_fit_is_located() -> None:
    body = [
        {"name": "conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"name": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1},
    ]
    layers = [
        CONV,
        "lif",
        {"name": "repeat", "layers": [{"name": "residual", "body": body}]},
        *HEAD,
    ]
    with pytest.raises(RecipeError, match=r"^model\.layers\[2\]\.layers\[0\]\.body\[1\] \(conv2d\): "
                       r"expects in_channels=3"):  # fmt: skip
        assemble(_recipe(layers), get_registry())


def test_bad_nested_specs_are_located() -> None:
    layers = [CONV, {"name": "residual", "body": [{"name": "lif", "tau": 0.5}]}, *HEAD]
    with pytest.raises(ParameterError, match=r"model\.layers\[1\]\.body\[0\]"):
        assemble(_recipe(layers), get_registry())
    layers = [CONV, {"name": "residual", "connect": "xor", "body": ["lif"]}, *HEAD]
    with pytest.raises(ParameterError, match=r"model\.layers\[1\]\.connect"):
        assemble(_recipe(layers), get_registry())
    layers = [CONV, {"name": "residual", "connect": "spiking", "body": ["lif"]}, *HEAD]
    with pytest.raises(ParameterError, match="add neuron"):
        assemble(_recipe(layers), get_registry())
    layers = [CONV, {"name": "residual", "body": ["lif"], "build": 1}, *HEAD]
    with pytest.raises(ParameterError, match="supplied by snnkit"):
        assemble(_recipe(layers), get_registry())
