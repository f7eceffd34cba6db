"""NIR export and import of residual blocks and added branches (graph edges), and what is
refused: the SEW AND / IAND connect functions, concatenation and synaptic delays."""

from __future__ import annotations

import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from snnkit.assembly.assemble import make_builder  # noqa: E402
from snnkit.components.blocks import Branches, Residual  # noqa: E402
from snnkit.components.functional import reset_net  # noqa: E402
from snnkit.components.models import Sequential  # noqa: E402
from snnkit.errors import SnnkitError  # noqa: E402
from snnkit.interop import export_nir, load  # noqa: E402
from snnkit.plugins.loader import get_registry  # noqa: E402

pytestmark = pytest.mark.usefixtures("only_builtins")

LIN = {"name": "linear", "in_features": 6, "out_features": 6, "bias": False}


def _model(layers: list) -> nn.Module:
    torch.manual_seed(0)
    model = Sequential(make_builder(get_registry()), layers).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(3.0)  # enough input for the neurons to spike
    return model


def _round_trip(model: nn.Module, tmp_path) -> tuple[nn.Module, object]:
    graph, _ = export_nir(model, [6])
    nir.write(tmp_path / "m.nir", graph)
    return load(tmp_path / "m.nir"), graph


def _same_outputs(a: nn.Module, b: nn.Module) -> None:
    x = (torch.rand(5, 3, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    with torch.no_grad():
        ya, yb = a(x), b(x)
    reset_net(a)
    reset_net(b)
    assert ya.abs().sum() > 0
    torch.testing.assert_close(ya, yb)


@pytest.mark.parametrize(
    "block",
    [
        {"name": "residual", "connect": "add", "body": [LIN, "if"]},
        {
            "name": "residual",
            "connect": "add",
            "body": [LIN, "if"],
            "shortcut": [LIN, "if"],
        },
        {"name": "residual", "connect": "spiking", "body": [LIN], "neuron": "if"},
        {"name": "branches", "join": "add", "branches": [[LIN, "if"], [LIN, "if"], []]},
    ],
    ids=["identity-shortcut", "shortcut-path", "spiking", "branches"],
)
def test_residual_round_trip_as_graph_edges(block: dict, tmp_path) -> None:
    model = _model([LIN, "if", block, LIN, "if"])
    loaded, graph = _round_trip(model, tmp_path)
    fan_in = {b for a, b in graph.edges if sum(1 for _, c in graph.edges if c == b) > 1}
    assert len(fan_in) == 1  # the join: a node summing the paths
    assert any(isinstance(m, (Residual, Branches)) for m in loaded.modules())
    _same_outputs(model, loaded)


def test_nested_residual_round_trip(tmp_path) -> None:
    inner = {"name": "residual", "body": [LIN, "if"]}
    model = _model([LIN, "if", {"name": "residual", "body": [inner, LIN, "if"]}, LIN, "if"])
    loaded, _ = _round_trip(model, tmp_path)
    _same_outputs(model, loaded)


@pytest.mark.parametrize("connect", ["and", "iand"])
def test_and_iand_are_refused(connect: str) -> None:
    model = _model([LIN, "if", {"name": "residual", "connect": connect, "body": [LIN, "if"]}])
    with pytest.raises(SnnkitError, match=f"SEW connect function '{connect}'.*connect: add"):
        export_nir(model, [6])


def test_concat_and_delays_are_refused() -> None:
    cat = {"name": "branches", "join": "concat", "branches": [[LIN], [LIN]]}
    with pytest.raises(SnnkitError, match="no concatenation node"):
        export_nir(_model([LIN, "if", cat]), [6])
    with pytest.raises(SnnkitError, match=r"layer 2 \(Delay\): synaptic delays are not exported"):
        export_nir(_model([LIN, "if", {"name": "delay", "delays": 1}]), [6])
    dcls = {"name": "dcls_delay", "in_features": 6, "out_features": 6, "max_delay": 2}
    with pytest.raises(SnnkitError, match="synaptic delays are not exported"):
        export_nir(_model([LIN, "if", dcls]), [6])


def test_import_refuses_a_fork_that_never_joins() -> None:
    import numpy as np

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "a": nir.Linear(weight=np.eye(2, dtype=np.float32)),
            "b": nir.Linear(weight=np.eye(2, dtype=np.float32)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "a"), ("input", "b"), ("a", "output")],
    )
    from snnkit.interop import import_nir

    with pytest.raises(SnnkitError, match="import: node 'input' feeds 2 nodes"):
        import_nir(graph)
