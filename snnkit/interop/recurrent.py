"""NIR form of a recurrent layer: a subgraph with a cycle.

``I(t) = X(t) + W_rec S(t−1) + b_rec`` into a neuron is written as a nested ``nir.NIRGraph``::

    input → neuron → output,   neuron → rec → neuron   (rec: Affine(W_rec, b_rec))

NIR edges carry a neuron's spikes to the next step's input, so the cycle is the recurrence.
A one-to-one layer's vector w_rec is written as the diagonal matrix diag(w_rec) (without bias:


"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit.components.recurrent import Recurrent
from snnkit.errors import SnnkitError

NEURON, REC = "neuron", "rec"


def export_recurrent(exporter: Any, name: str, module: Recurrent, shape: tuple[int, ...]) -> Any:
    """The subgraph of ``module`` (``exporter`` maps the neuron: its ``neuron`` method adds one
    node to ``exporter.nodes``, which is swapped for a scratch dict here)."""
    nir = exporter.nir
    where = f"export: layer {name} (Recurrent)"
    outer, exporter.nodes = exporter.nodes, {}
    try:
        exporter.neuron(where, name, module.neuron, shape)
        (neuron,) = exporter.nodes.values()
    finally:
        exporter.nodes = outer
    w = module.weight.detach()
    matrix = w if w.dim() == 2 else torch.diag(w)
    bias = module.bias.detach() if module.bias is not None else torch.zeros_like(matrix[0])
    size = np.array(shape)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": size}),
            NEURON: neuron,
            REC: nir.Affine(weight=matrix.numpy(), bias=bias.numpy()),
            "output": nir.Output(output_type={"output": size}),
        },
        edges=[("input", NEURON), (NEURON, REC), (REC, NEURON), (NEURON, "output")],
    )


def is_recurrent(nir: Any, graph: Any) -> bool:
    """Whether a nested graph has the shape :func:`export_recurrent` writes."""
    if not isinstance(graph, nir.NIRGraph):
        return False
    inner = [k for k, n in graph.nodes.items() if not isinstance(n, (nir.Input, nir.Output))]
    return len(inner) == 2 and any(
        isinstance(graph.nodes[k], (nir.Affine, nir.Linear)) for k in inner
    )


def import_recurrent(
    nir: Any, where: str, graph: Any, make_neuron: Callable[[Any, str], nn.Module]
) -> Recurrent:
    """A :class:`Recurrent` from a nested graph ``input → neuron ⇄ rec → output``.

    ``make_neuron(node, where)`` maps the neuron node. A subgraph of another shape raises
    :class:`SnnkitError` naming it.
    """
    nodes = graph.nodes
    edges = {tuple(e) for e in graph.edges}
    rec = next((k for k, n in nodes.items() if isinstance(n, (nir.Affine, nir.Linear))), None)
    neuron = next(
        (k for k, n in nodes.items() if k != rec and not isinstance(n, (nir.Input, nir.Output))),
        None,
    )
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    expected = (
        {(inputs[0], neuron), (neuron, rec), (rec, neuron), (neuron, outputs[0])}
        if rec and neuron and len(inputs) == 1 and len(outputs) == 1
        else None
    )
    if expected is None or edges != expected:
        raise SnnkitError(
            f"{where}: snnkit reads a subgraph as a recurrent layer only when it is "
            "input → neuron → output with neuron → Affine → neuron (the recurrence); got edges "
            f"{sorted(edges)}"
        )
    node = nodes[rec]
    weight = torch.as_tensor(np.asarray(node.weight))
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise SnnkitError(
            f"{where}: the recurrent weight must be square [N, N], got {list(weight.shape)}"
        )
    diagonal = bool(torch.equal(weight, torch.diag(torch.diagonal(weight))))
    bias = torch.as_tensor(np.asarray(node.bias)).reshape(-1) if hasattr(node, "bias") else None
    layer = Recurrent(
        weight.shape[0],
        make_neuron(nodes[neuron], f"{where} node '{neuron}'"),
        mode="one_to_one" if diagonal else "all_to_all",
        bias=bias is not None,
    )
    with torch.no_grad():
        layer.weight.copy_(torch.diagonal(weight) if diagonal else weight)
        if layer.bias is not None and bias is not None:
            layer.bias.copy_(bias)
    return layer.to(weight.dtype)
