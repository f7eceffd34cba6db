"""NIR round trips of the recurrent layer (a subgraph whose edges hold the recurrence cycle)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from snnkit.components import layers as L  # noqa: E402
from snnkit.components import neurons as N  # noqa: E402
from snnkit.components.recurrent import Recurrent  # noqa: E402
from snnkit.errors import SnnkitError  # noqa: E402
from snnkit.interop import export_nir, load  # noqa: E402


def _model(mode: str, neuron: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(L.Linear(6, 5), Recurrent(5, neuron, mode=mode), L.Linear(5, 3))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[0].bias.fill_(1.5)
        model[1].weight.mul_(2.0)
        model[1].bias.uniform_(-0.3, 0.3)
    return model


@pytest.mark.parametrize("mode", ["all_to_all", "one_to_one"])
@pytest.mark.parametrize("neuron", [N.LIF(tau=3.0), N.IF()], ids=["lif", "if"])
def test_round_trip_of_a_recurrent_layer(mode, neuron, tmp_path) -> None:
    model = _model(mode, neuron)
    graph, _ = export_nir(model, (6,))
    sub = next(n for n in graph.nodes.values() if isinstance(n, nir.NIRGraph))
    assert ("neuron", "rec") in sub.edges and ("rec", "neuron") in sub.edges  # the cycle
    nir.write(tmp_path / "r.nir", graph)
    back = load(tmp_path / "r.nir")
    layer = back[1]
    assert isinstance(layer, Recurrent) and layer.mode == mode
    assert type(layer.neuron) is type(neuron)
    assert torch.equal(layer.weight, model[1].weight) and torch.equal(layer.bias, model[1].bias)
    x = torch.rand(10, 4, 6)
    expected = model(x)
    with torch.no_grad():
        assert 0 < float(model[1](model[0](x)).mean()) < 1
    assert torch.equal(back(x), expected)


def test_a_recurrent_alif_is_refused_naming_the_layer() -> None:
    with pytest.raises(SnnkitError, match="layer 1 .*ALIF"):
        export_nir(_model("all_to_all", N.ALIF()), (6,))


def test_import_refuses_a_subgraph_of_another_shape() -> None:
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": torch.tensor([2]).numpy()}),
            "a": nir.Affine(weight=torch.eye(2).numpy(), bias=torch.zeros(2).numpy()),
            "b": nir.Affine(weight=torch.eye(2).numpy(), bias=torch.zeros(2).numpy()),
            "output": nir.Output(output_type={"output": torch.tensor([2]).numpy()}),
        },
        edges=[("input", "a"), ("a", "b"), ("b", "output")],
    )
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": torch.tensor([2]).numpy()}),
            "sub": sub,
            "output": nir.Output(output_type={"output": torch.tensor([2]).numpy()}),
        },
        edges=[("input", "sub"), ("sub", "output")],
    )
    from snnkit.interop import import_nir

    with pytest.raises(SnnkitError, match="node 'sub'"):
        import_nir(graph)
