"""Import: rebuild a chain-shaped NIR graph as an snnkit ``Sequential`` (multi-step).

Each node maps back to one snnkit module (SumPool2d followed by Threshold to one max
pooling); neuron nodes must hold uniform parameters that match snnkit's equations (see
:mod:`snnkit.interop`), else :class:`~snnkit.errors.SnnkitError` names the node and the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from snnkit.components import layers as L
from snnkit.components import neurons as N
from snnkit.components.blocks import Branches, Residual
from snnkit.components.surrogates import Sigmoid
from snnkit.errors import SnnkitError, one_line
from snnkit.interop.common import _nir
from snnkit.interop.recurrent import import_recurrent, is_recurrent

if TYPE_CHECKING:
    import nir as nir_lib

_RTOL = 1e-6


def load(path: str | Path, *, dt: float | None = None) -> nn.Module:
    """Read a NIR file and rebuild it as an snnkit Sequential (see :func:`import_nir`)."""
    path = Path(path)
    if not path.exists():
        raise SnnkitError(f"{path}: no such NIR file — check the path")
    try:
        graph = _nir().read(path)
    except (OSError, ValueError, KeyError, AssertionError) as err:
        raise SnnkitError(
            f"{path}: not a readable NIR file ({one_line(err, 200, typed=True)})"
            " — write it with nir.write or snnkit export"
        ) from None
    return import_nir(graph, dt=dt)


def import_nir(graph: nir_lib.NIRGraph, *, dt: float | None = None) -> nn.Module:
    """Build an snnkit ``Sequential`` (multi-step) from a chain-shaped NIR graph.

    ``dt`` (one step's duration) defaults to the graph's ``metadata['dt']``, else 1.0. Neuron
    parameters must be uniform per node (snnkit neurons hold one value per layer), and each
    neuron must match snnkit's equations (e.g. LIF with r = 1 or r = tau/dt and
    v_leak = v_reset); anything else raises :class:`SnnkitError` naming the node. Every
    spiking neuron gets a fresh ``Sigmoid()`` surrogate.
    """
    nir = _nir()
    if dt is None:
        meta = graph.metadata if isinstance(graph.metadata, dict) else {}
        dt = float(np.asarray(meta.get("dt", 1.0)))
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise SnnkitError(f"import: dt must be a finite number > 0, got {dt!r}")
    modules = _modules(nir, _chain(nir, graph), dt)
    if not modules:
        raise SnnkitError("import: the NIR graph has no computational nodes")
    from snnkit.components.models import Sequential

    return Sequential(lambda module, _at: module, modules, step_mode="m")


def _chain(nir: Any, graph: Any) -> list[Any]:
    """The nodes between the single Input and Output in order, a fork and its join (a residual
    block or added branches) as one ``_Fork`` item; refuses other shapes of graph."""
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise SnnkitError(
            f"import: the graph has {len(inputs)} Input nodes; snnkit imports "
            "graphs with exactly one input"
        )
    after: dict[str, list[str]] = {}
    before: dict[str, list[str]] = {}
    for a, b in graph.edges:
        after.setdefault(a, []).append(b)
        before.setdefault(b, []).append(a)
    return _walk(nir, graph, after, before, inputs[0], None, set())


@dataclass
class _Fork:
    """Paths leaving one node and summed at ``join`` (a ``Scale(1)`` node or a neuron)."""

    paths: list[list[Any]]
    join: tuple[str, Any]


def _walk(
    nir: Any,
    graph: Any,
    after: dict[str, list[str]],
    before: dict[str, list[str]],
    key: str,
    end: str | None,
    seen: set[str],
) -> list[Any]:
    """The items after node ``key`` up to ``end`` (exclusive; None: up to the Output)."""
    items: list[Any] = []
    while True:
        nexts = after.get(key, [])
        if not nexts:
            if end is None and isinstance(graph.nodes[key], nir.Output):
                return items
            raise SnnkitError(
                f"import: node '{key}' feeds no node; snnkit imports graphs that end in an Output"
            )
        if len(nexts) > 1:
            join = _join_of(after, nexts)
            if join is None or isinstance(graph.nodes[join], nir.Output):
                raise SnnkitError(
                    f"import: node '{key}' feeds {len(nexts)} nodes {nexts} that never meet "
                    "again; snnkit imports chains, residual blocks and added branches"
                )
            paths = [
                [] if n == join else _walk(nir, graph, after, before, _enter(n, items, graph, seen),
                                           join, seen)
                for n in nexts
            ]  # fmt: skip
            paths = [p if n == join else [(n, graph.nodes[n]), *p] for n, p in zip(nexts, paths)]
            items.append(_Fork(paths, (join, graph.nodes[join])))
            key = join
            continue
        key = nexts[0]
        if key == end:
            return items
        _enter(key, items, graph, seen)
        node = graph.nodes[key]
        if isinstance(node, nir.Output):
            if after.get(key):
                raise SnnkitError(f"import: Output node '{key}' feeds other nodes")
            if end is not None:
                raise SnnkitError(f"import: a branch reaches Output '{key}' before it joins")
            return items
        if len(before.get(key, [])) > 1:
            raise SnnkitError(
                f"import: node '{key}' sums {len(before[key])} inputs that do not come from one "
                "fork; snnkit imports chains, residual blocks and added branches"
            )
        items.append((key, node))


def _enter(key: str, items: list[Any], graph: Any, seen: set[str]) -> str:
    """Mark ``key`` visited; a second visit is a cycle."""
    del items, graph
    if key in seen:
        raise SnnkitError(
            f"import: the graph has a cycle through '{key}'; snnkit imports feed-forward graphs"
        )
    seen.add(key)
    return key


def _join_of(after: dict[str, list[str]], starts: list[str]) -> str | None:
    """The first node every path from ``starts`` reaches (breadth-first from the first)."""
    reach: list[set[str]] = []
    for start in starts:
        found, todo = {start}, [start]
        while todo:
            for nxt in after.get(todo.pop(), []):
                if nxt not in found:
                    found.add(nxt)
                    todo.append(nxt)
        reach.append(found)
    common = set.intersection(*reach)
    order, todo, seen = [], [starts[0]], {starts[0]}
    while todo:
        key = todo.pop(0)
        order.append(key)
        for nxt in after.get(key, []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return next((key for key in order if key in common), None)


def _modules(nir: Any, items: list[Any], dt: float) -> list[nn.Module]:
    """snnkit modules for walked items (a SumPool2d→Threshold pair is one max pooling)."""
    modules: list[nn.Module] = []
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, _Fork):
            modules.append(_block(nir, item, dt))
            i += 1
            continue
        name, node = item
        nxt = items[i + 1] if i + 1 < len(items) else None
        module, used = _module_for(nir, name, node, None if isinstance(nxt, _Fork) or nxt is None
                                   else nxt[1], dt)  # fmt: skip
        modules.append(module)
        i += used
    return modules


def _block(nir: Any, fork: _Fork, dt: float) -> nn.Module:
    """A fork of two paths as a residual block (``add``, or ``spiking`` when it joins at a
    neuron); of more paths as branches joined by ``add``."""
    name, node = fork.join
    same = lambda module, _at: module  # noqa: E731 - modules are built already
    paths = [_modules(nir, path, dt) for path in fork.paths]
    neuron = None
    if not isinstance(node, nir.Scale):
        neuron, _ = _module_for(nir, name, node, None, dt)
        if not isinstance(neuron, N.BaseNeuron):
            raise SnnkitError(
                f"import: node '{name}' ({type(node).__name__}) sums the paths of a fork; snnkit "
                "reads a Scale(1) or a neuron there"
            )
    elif not np.allclose(np.asarray(node.scale, dtype=np.float64), 1.0):
        raise SnnkitError(
            f"import: node '{name}' (Scale) joins a fork with a scale other than 1; snnkit's "
            "residual blocks and branches add their paths unscaled"
        )
    if len(paths) == 2 and paths[0]:
        return Residual(same, paths[0], paths[1] or None, "spiking" if neuron else "add", neuron)
    if neuron is not None:
        raise SnnkitError(f"import: node '{name}' joins {len(paths)} paths at a neuron; snnkit "
                          "reads that only for a residual block (two paths)")  # fmt: skip
    return Branches(same, [list(p) for p in paths], "add")


def _uniform(where: str, field: str, value: Any) -> float:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        raise SnnkitError(f"{where}: {field} is empty")
    first = float(arr.reshape(-1)[0])
    if not np.all(arr == first):
        raise SnnkitError(
            f"{where}: {field} varies across neurons "
            f"({arr.min():g} … {arr.max():g}); "
            "snnkit neurons hold one value per layer — make it uniform"
        )
    return first


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_RTOL, abs_tol=1e-12)


def _ints(value: Any, n: int) -> tuple[int, ...]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return (int(arr[0]),) * n
    return tuple(int(v) for v in arr)


def _pair(value: Any) -> tuple[int, int]:
    """A 2-D size: ``(v, v)`` for a scalar, else the first two entries."""
    a, b = _ints(value, 2)[:2]
    return a, b


def _tensor(value: Any) -> torch.Tensor:
    arr = np.asarray(value)
    if arr.dtype not in (np.float32, np.float64, np.float16):
        arr = arr.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _module_for(nir: Any, name: str, node: Any, nxt: Any, dt: float) -> tuple[nn.Module, int]:
    """The snnkit module for ``node`` and how many chain nodes it consumed (1 or 2)."""
    kind = type(node).__name__
    where = f"import: node '{name}' ({kind})"
    try:
        if isinstance(node, (nir.Affine, nir.Linear)):
            weight = _tensor(node.weight)
            if weight.dim() != 2:
                raise SnnkitError(
                    f"{where}: weight must be 2-D [out, in], got {list(weight.shape)}"
                )
            has_bias = isinstance(node, nir.Affine)
            layer = L.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
            with torch.no_grad():
                layer.weight.copy_(weight)
                if has_bias:
                    layer.bias.copy_(_tensor(node.bias).reshape(-1))
            return layer.to(weight.dtype), 1
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            return _conv(nir, where, node), 1
        if isinstance(node, nir.SumPool2d):
            if not (
                isinstance(nxt, nir.Threshold)
                and 0 <= _uniform(where, "next threshold", nxt.threshold) < 1
            ):
                raise SnnkitError(
                    f"{where}: snnkit has no sum pooling; it reads SumPool2d "
                    "followed by Threshold(0 ≤ θ < 1) as max pooling of spikes, and "
                    "this one is not followed by such a Threshold"
                )
            return L.MaxPool2d(
                _pair(node.kernel_size),
                stride=_pair(node.stride),
                padding=_pair(node.padding),
            ), 2
        if isinstance(node, nir.AvgPool2d):
            return L.AvgPool2d(
                _pair(node.kernel_size),
                stride=_pair(node.stride),
                padding=_pair(node.padding),
            ), 1
        if isinstance(node, nir.Flatten):
            shape = node.input_type.get("input") if node.input_type else None
            last = None if shape is None else len(np.asarray(shape)) - 1
            if int(node.start_dim) != 0 or int(node.end_dim) not in (-1, last):
                raise SnnkitError(
                    f"{where}: snnkit's flatten flattens a whole sample "
                    f"(start_dim 0, end_dim -1), got start_dim={node.start_dim}, "
                    f"end_dim={node.end_dim}"
                )
            return L.Flatten(), 1
        if isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF, nir.LI)):
            return _neuron(nir, where, node, dt), 1
        if isinstance(node, nir.NIRGraph) and is_recurrent(nir, node):
            return import_recurrent(nir, where, node, lambda n, at: _neuron(nir, at, n, dt)), 1
        if isinstance(node, nir.Scale) and np.allclose(np.asarray(node.scale, float), 1.0):
            return L.Identity(), 1  # a fork node written before a nested block
    except ValueError as err:
        raise SnnkitError(f"{where}: {err}") from None
    raise SnnkitError(
        f"{where}: snnkit has no counterpart for NIR {kind} — snnkit imports "
        "Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d→Threshold (max "
        "pooling of spikes), Flatten, Scale(1), IF, LIF, CubaLIF and LI, recurrent subgraphs "
        "(input → neuron ⇄ Affine → output), and forks joined at a Scale(1) or a neuron "
        "(residual blocks)"
    )


def _conv(nir: Any, where: str, node: Any) -> nn.Module:
    two_d = isinstance(node, nir.Conv2d)
    n = 2 if two_d else 1
    weight = _tensor(node.weight)
    padding: Any = node.padding
    kernel = tuple(weight.shape[2:])
    dilation = _ints(node.dilation, n)
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            padding = (0,) * n
        elif padding == "same" and all(k % 2 for k in kernel) and _ints(node.stride, n) == (1,) * n:
            padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
        else:
            raise SnnkitError(
                f"{where}: padding {padding!r} has no explicit equivalent here "
                "(snnkit needs 'valid', or 'same' with odd kernels and stride 1)"
            )
    else:
        padding = _ints(padding, n)
    groups = int(np.asarray(node.groups))
    in_channels, out_channels = weight.shape[1] * groups, weight.shape[0]
    cls = L.Conv2d if two_d else L.Conv1d

    def size(t: tuple[int, ...]) -> Any:
        return t if two_d else t[0]

    layer = cls(
        in_channels,
        out_channels,
        size(kernel),
        stride=size(_ints(node.stride, n)),
        padding=size(padding),
        dilation=size(dilation),
        groups=groups,
        bias=True,
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
        assert layer.bias is not None  # built with bias=True
        layer.bias.copy_(_tensor(node.bias).reshape(-1))
    return layer.to(weight.dtype)


def _neuron(nir: Any, where: str, node: Any, dt: float) -> nn.Module:
    def get(field: str) -> float:
        return _uniform(where, field, getattr(node, field))

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise SnnkitError(f"{where}: {what}")

    if isinstance(node, nir.LI):
        tau, r, v_leak = get("tau") / dt, get("r"), get("v_leak")
        need(_close(r, 1.0), f"snnkit's LI needs r = 1, got r={r:g}")
        need(_close(v_leak, 0.0), f"snnkit's LI rests at 0, got v_leak={v_leak:g}")
        return N.LI(tau=tau)
    v_th, v_reset = get("v_threshold"), get("v_reset")
    if isinstance(node, nir.IF):
        r = get("r")
        need(
            _close(r * dt, 1.0),
            f"snnkit's IF adds the input once per step, so r·dt must be 1, got r={r:g}, dt={dt:g}",
        )
        return N.IF(Sigmoid(), v_threshold=v_th, v_reset=v_reset)
    v_leak, r = get("v_leak"), get("r")
    need(
        _close(v_leak, v_reset),
        f"snnkit's leaky neurons rest at v_reset, got v_leak={v_leak:g}, v_reset={v_reset:g}",
    )
    if isinstance(node, nir.LIF):
        tau = get("tau") / dt
        if _close(r, 1.0):
            decay_input = True
        elif _close(r, tau):
            decay_input = False
        else:
            raise SnnkitError(
                f"{where}: snnkit's LIF needs r = 1 (decay_input) or r = tau/dt = "
                f"{tau:g} (decay_input false), got r={r:g}"
            )
        return N.LIF(Sigmoid(), tau=tau, decay_input=decay_input, v_threshold=v_th, v_reset=v_reset)
    tau_syn, tau_mem, w_in = get("tau_syn") / dt, get("tau_mem") / dt, get("w_in")
    need(_close(r, 1.0), f"snnkit's CubaLIF needs r = 1, got r={r:g}")
    need(
        _close(w_in, tau_syn),
        f"snnkit's CubaLIF adds the input to the current once per step, "
        f"so w_in must be tau_syn/dt = {tau_syn:g}, got {w_in:g}",
    )
    return N.CubaLIF(Sigmoid(), tau_syn=tau_syn, tau_mem=tau_mem, v_threshold=v_th, v_reset=v_reset)
