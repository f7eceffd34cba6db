"""Export: walk a sequential snnkit model, trace its shapes, build the ``nir.NIRGraph``.

:func:`export_nir` translates a model object; :func:`save` also accepts a checkpoint or a
run folder (rebuilt by :func:`model_from_checkpoint`) and writes the NIR file. The per-layer
mapping lives in :mod:`snnkit.interop.mapping`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from snnkit.components import neurons as N
from snnkit.components.blocks import Branches, Residual
from snnkit.components.recurrent import Recurrent
from snnkit.errors import SnnkitError, one_line
from snnkit.interop.common import _nir
from snnkit.interop.mapping import _Exporter

if TYPE_CHECKING:
    import nir as nir_lib


def export_nir(
    model: nn.Module, input_shape: Sequence[int], *, dt: float = 1.0, strict: bool = False
) -> tuple[nir_lib.NIRGraph, list[str]]:
    """Translate a sequential snnkit model into a ``nir.NIRGraph``; return it and the warnings.

    ``input_shape`` is one sample's shape per time step (e.g. ``[1, 28, 28]``); ``dt`` is the
    duration of one snnkit step in NIR's time unit (time constants are multiplied by it).
    With ``strict=True`` any lossy mapping raises :class:`SnnkitError` instead of a warning.
    """
    nir = _nir()
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise SnnkitError(
            f"export: dt must be a finite number > 0 (one step's duration), got {dt!r}"
        )
    stages = _stages(model)
    shapes = _trace_shapes(stages, tuple(int(d) for d in input_shape))
    out = _Exporter(nir, dt, strict)
    edges: list[tuple[str, str]] = []
    last, _ = _emit(out, stages, shapes, ["input"], False, edges)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shapes[0])})}
    nodes.update(out.nodes)
    nodes["output"] = nir.Output(output_type={"output": np.array(shapes[-1])})
    edges += [(key, "output") for key in last]
    from snnkit.version import __version__

    graph = nir.NIRGraph(
        nodes=nodes,
        edges=edges,
        metadata={"source": "snnkit", "snnkit_version": __version__, "dt": dt},
    )
    return graph, out.finish()


def _emit(
    out: _Exporter,
    stages: list[tuple[str, nn.Module]],
    shapes: list[tuple[int, ...]],
    prev: list[str],
    binary: bool,
    edges: list[tuple[str, str]],
) -> tuple[list[str], bool]:
    """Add the nodes of ``stages`` after the nodes ``prev`` (whose outputs are summed), with
    their edges; return the nodes the next one reads and whether they carry 0/1 spikes."""
    skip: set[int] = set()
    for index, (name, module) in enumerate(stages):
        if index in skip:
            continue
        shape_in, shape_out = shapes[index], shapes[index + 1]
        if isinstance(module, (Residual, Branches)):
            prev, binary = _emit_block(out, name, module, shape_in, prev, binary, edges)
            continue
        follower = stages[index + 1][1] if index + 1 < len(stages) else None
        before = set(out.nodes)
        if out.layer(name, module, shape_in, shape_out, binary, follower):
            skip.add(index + 1)  # a batch norm folded into this layer
        added = [key for key in out.nodes if key not in before]
        for key in added:
            edges += [(p, key) for p in prev]
            prev = [key]
        binary = _binary_after(module, binary)
    return prev, binary


def _emit_block(
    out: _Exporter,
    name: str,
    block: Residual | Branches,
    shape_in: tuple[int, ...],
    prev: list[str],
    binary: bool,
    edges: list[tuple[str, str]],
) -> tuple[list[str], bool]:
    """A residual block or added branches as a fork and a join (NIR sums a node's inputs):
    each path's nodes from ``prev``, joined at a ``Scale(1)`` node (``add``, ``membrane``) or
    at the block's neuron (``spiking``). AND, IAND and concatenation have no NIR form."""
    where = f"export: layer {name} ({type(block).__name__})"
    if isinstance(block, Residual):
        if block.connect in ("and", "iand"):
            raise SnnkitError(
                f"{where}: NIR has no node for the SEW connect function '{block.connect}' "
                "(only sums, at a node's inputs) — use connect: add to export"
            )
        paths = [("body", block.body), ("shortcut", block.shortcut)]
    elif block.join != "add":
        raise SnnkitError(
            f"{where}: NIR has no concatenation node — join the branches with add to export"
        )
    else:
        paths = [(f"branches.{j}", path) for j, path in enumerate(block.paths)]
    ends: list[str] = []
    shape_out: tuple[int, ...] = shape_in
    for label, path in paths:
        inner = [] if isinstance(path, nn.Identity) else _stages(path)
        inner = [(f"{name}.{label}.{sub}", m) for sub, m in inner]
        shapes = _trace_shapes(inner, shape_in) if inner else [shape_in]
        shape_out = shapes[-1]
        start = prev
        if inner and isinstance(inner[0][1], (Residual, Branches)):
            # a block opening this path gets its own fork node, so the two forks stay apart
            start = [f"{name.replace('.', '_')}_{label.replace('.', '_')}_in"]
            out.nodes[start[0]] = out.nir.Scale(scale=np.ones(shape_in, dtype=np.float32))
            edges += [(p, start[0]) for p in prev]
        ends += _emit(out, inner, shapes, start, binary, edges)[0]
    neuron = getattr(block, "neuron", None)
    if neuron is not None:
        before = set(out.nodes)
        out.layer(f"{name}.neuron", neuron, shape_out, shape_out, False, None)
        join = next(key for key in out.nodes if key not in before)
    else:
        join = f"{name.replace('.', '_')}_join"
        out.nodes[join] = out.nir.Scale(scale=np.ones(shape_out, dtype=np.float32))
    edges += [(end, join) for end in ends]
    return [join], neuron is not None


def _binary_after(module: nn.Module, binary: bool) -> bool:
    """Whether a module's output is 0/1 spikes (given whether its input was)."""
    if isinstance(module, (N.SpikingNeuron, Recurrent)):
        return True
    if isinstance(module, (nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d)):
        return binary
    return False


def _stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules of a (possibly nested) ``nn.Sequential`` in order, with dotted names."""
    if not isinstance(model, nn.Sequential):
        if isinstance(model, (N.BaseNeuron, nn.Linear, nn.Conv2d, nn.Flatten)):
            return [("0", model)]
        raise SnnkitError(
            f"export: the model is a {type(model).__name__}; NIR export walks "
            "sequential models (model: sequential or mlp) — build it as a sequence "
            "of layers and neurons"
        )
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            out += [(f"{name}.{sub}", m) for sub, m in _stages(child)]
        else:
            out.append((name, child))
    if not out:
        raise SnnkitError("export: the model has no layers")
    return out


def _trace_shapes(
    stages: list[tuple[str, nn.Module]], input_shape: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """Per-sample shapes before the first stage and after each, from one dummy multi-step pass."""
    if not input_shape or any(d < 1 for d in input_shape):
        raise SnnkitError(
            f"export: input_shape must list sizes >= 1 (one sample per step, e.g. "
            f"[1, 28, 28]), got {list(input_shape)}"
        )
    from snnkit.components.functional import reset_net

    modes = {m: m.step_mode for _, s in stages for m in s.modules() if hasattr(m, "step_mode")}
    training = {m: m.training for _, s in stages for m in s.modules()}
    shapes = [input_shape]
    x = torch.zeros((1, 1, *input_shape))
    try:
        for _, stage in stages:
            for m in stage.modules():
                if hasattr(m, "step_mode"):
                    setattr(m, "step_mode", "m")  # noqa: B010 - any module with the attribute
            stage.eval()
        with torch.no_grad():
            for name, stage in stages:
                try:
                    x = stage(x.to(_dtype_of(stage, x.dtype)))
                except (RuntimeError, ValueError) as err:
                    raise SnnkitError(
                        f"export: layer {name} ({type(stage).__name__}) cannot take "
                        f"input of shape {list(x.shape[2:])} per step "
                        f"({one_line(err, first_line=True)}) — check input_shape"
                    ) from None
                shapes.append(tuple(x.shape[2:]))
    finally:
        for m, mode in modes.items():
            m.step_mode = mode
        for m, was in training.items():
            m.train(was)
        for _, stage in stages:
            reset_net(stage)
    return shapes


def _dtype_of(module: nn.Module, default: torch.dtype) -> torch.dtype:
    for p in module.parameters():
        return p.dtype
    return default


def save(
    source: nn.Module | str | Path,
    out: str | Path,
    *,
    input_shape: Sequence[int] | None = None,
    dt: float = 1.0,
    strict: bool = False,
) -> tuple[Path, list[str]]:
    """Export a model, a checkpoint (``.pt``) or a run folder to a NIR file; return
    ``(path, warnings)``.

    For a checkpoint or run folder the model is rebuilt from the saved recipe and weights, and
    ``input_shape`` defaults to the recipe's dataset's sample shape (building that dataset).
    """
    if isinstance(source, nn.Module):
        if input_shape is None:
            raise SnnkitError(
                "export: pass input_shape (one sample's shape per time step, e.g. "
                "[1, 28, 28]) when exporting a model object"
            )
        model = source
    else:
        model, shape = model_from_checkpoint(source, need_input_shape=input_shape is None)
        input_shape = input_shape if input_shape is not None else shape
    assert input_shape is not None
    graph, warnings = export_nir(model, input_shape, dt=dt, strict=strict)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    _nir().write(path, graph)
    return path, warnings


def model_from_checkpoint(
    path: str | Path,
    *,
    need_input_shape: bool = True,
) -> tuple[nn.Module, tuple[int, ...] | None]:
    """The model of a checkpoint or run folder (``best.pt`` first; weights loaded, eval mode)
    and its dataset's sample shape (read only when ``need_input_shape``)."""
    from snnkit.assembly.data import build_data
    from snnkit.engine.restore import restore_model
    from snnkit.plugins.loader import get_registry

    model, recipe, _ = restore_model(path, prefer="best")
    model.eval()
    shape = None
    if need_input_shape:
        data = build_data(recipe, get_registry(), train=False)
        shape = tuple(int(d) for d in data.input_shape)
    return model, shape
