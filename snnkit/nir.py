"""Export snnkit models to NIR (the Neuromorphic Intermediate Representation) and import them back.

snnkit neurons are discrete-time; NIR neurons are continuous-time ODEs. One snnkit step is an
explicit Euler step of length ``dt`` of the NIR equation, with the step's input X(t) read as a
current held constant over the step. Under that reading the mapping is exact (docs/nir.md)::

    IF       H = V + X                              nir.IF      r = 1/dt
    LIF      H = V + (X − (V − V_reset)) / tau      nir.LIF     tau = tau·dt, r = 1, v_leak = V_reset
             (decay_input=False: H = V − (V − V_reset)/tau + X)          r = tau
    CubaLIF  I = I(1 − 1/tau_syn) + X; H = V + (I − (V − V_reset))/tau_mem
                                                    nir.CubaLIF tau_syn = tau_syn·dt, tau_mem =
                                                                tau_mem·dt, w_in = tau_syn, r = 1
    LI       V = V + (X − V) / tau                  nir.LI      tau = tau·dt, r = 1, v_leak = 0

Losses are reported, never hidden: :func:`export_nir` returns a list of warnings (soft reset,
detach_reset, the surrogate, PLIF's learned tau frozen, dropout, folded batch norm), and
``strict=True`` turns the lossy ones into errors. Neurons NIR cannot express (QIF, EIF,
Izhikevich, ALIF, plugin neurons) raise :class:`~snnkit.errors.SnnkitError` naming the layer.

``nir`` is an optional dependency, imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from snnkit import layers as L
from snnkit import neurons as N
from snnkit.errors import SnnkitError
from snnkit.surrogates import Sigmoid

if TYPE_CHECKING:
    import nir as nir_lib

__all__ = ["export_nir", "import_nir", "load", "save"]

#: Neurons whose dynamics NIR has no node for.
_INEXPRESSIBLE = (N.QIF, N.EIF, N.Izhikevich, N.ALIF)
_RTOL = 1e-6


def _nir() -> Any:
    try:
        import nir
    except ImportError:  # pragma: no cover - depends on the environment
        raise SnnkitError("nir: the package 'nir' is not installed — pip install 'snnkit[nir]' "
                          "(or pip install nir)") from None
    return nir


# ============================================================================================
# export
# ============================================================================================
def export_nir(model: nn.Module, input_shape: Sequence[int], *, dt: float = 1.0,
               strict: bool = False) -> tuple[nir_lib.NIRGraph, list[str]]:
    """Translate a sequential snnkit model into a ``nir.NIRGraph``; return it and the warnings.

    ``input_shape`` is one sample's shape per time step (e.g. ``[1, 28, 28]``); ``dt`` is the
    duration of one snnkit step in NIR's time unit (time constants are multiplied by it).
    With ``strict=True`` any lossy mapping raises :class:`SnnkitError` instead of a warning.
    """
    nir = _nir()
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise SnnkitError(f"export: dt must be a finite number > 0 (one step's duration), got {dt!r}")
    stages = _stages(model)
    shapes = _trace_shapes(stages, tuple(int(d) for d in input_shape))
    out = _Exporter(nir, dt, strict)
    binary = False  # whether the current signal is made of 0/1 spikes
    skip: set[int] = set()
    for index, (name, module) in enumerate(stages):
        if index in skip:
            continue
        shape_in, shape_out = shapes[index], shapes[index + 1]
        follower = stages[index + 1][1] if index + 1 < len(stages) else None
        if out.layer(name, module, shape_in, shape_out, binary, follower):
            skip.add(index + 1)  # a batch norm folded into this layer
        binary = _binary_after(module, binary)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shapes[0])})}
    nodes.update(out.nodes)
    nodes["output"] = nir.Output(output_type={"output": np.array(shapes[-1])})
    names = list(nodes)
    edges = [(a, b) for a, b in zip(names[:-1], names[1:])]
    from snnkit import __version__

    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={"source": "snnkit", "snnkit_version": __version__, "dt": dt})
    return graph, out.finish()


class _Exporter:
    """Collects NIR nodes and warnings for one model."""

    def __init__(self, nir: Any, dt: float, strict: bool) -> None:
        self.nir, self.dt, self.strict = nir, dt, strict
        self.nodes: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.surrogates: list[str] = []

    def lossy(self, message: str) -> None:
        if self.strict:
            raise SnnkitError(f"{message} (refused under strict export)")
        self.warnings.append(message)

    def add(self, name: str, kind: str, node: Any) -> None:
        self.nodes[f"{name.replace('.', '_')}_{kind}"] = node

    def finish(self) -> list[str]:
        if self.surrogates:
            self.warnings.append(
                "surrogate gradients are not part of NIR (they only shape training): "
                + ", ".join(self.surrogates) + "; snnkit.nir.load gives every neuron a fresh Sigmoid()")
        return self.warnings

    # -- one stage --------------------------------------------------------------------------
    def layer(self, name: str, module: nn.Module, shape_in: tuple[int, ...],
              shape_out: tuple[int, ...], binary: bool, follower: nn.Module | None) -> bool:
        """Add the nodes for ``module``; True when it folded the following batch norm."""
        where = f"export: layer {name} ({type(module).__name__})"
        nir = self.nir
        if isinstance(module, N.BaseNeuron):
            self.neuron(where, name, module, shape_out)
            return False
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            weight = module.weight.detach().double()
            bias = None if module.bias is None else module.bias.detach().double()
            folded = isinstance(follower, (nn.BatchNorm1d, nn.BatchNorm2d))
            if folded:
                weight, bias = _fold_batchnorm(where, weight, bias, follower)
                self.warnings.append(
                    f"layer {name}: the batch norm after it was folded into its weights and bias "
                    "(running statistics, eval mode); load() returns the folded layer")
            dtype = module.weight.dtype
            w = weight.to(dtype).numpy()
            b = None if bias is None else bias.to(dtype).numpy()
            if isinstance(module, nn.Linear):
                node = nir.Linear(weight=w) if b is None else nir.Affine(weight=w, bias=b)
                self.add(name, "linear" if b is None else "affine", node)
                return folded
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise SnnkitError(f"{where}: only explicit zero padding maps to NIR, got "
                                  f"padding={module.padding!r}, padding_mode={module.padding_mode!r}")
            if b is None:
                b = np.zeros(w.shape[0], dtype=w.dtype)
            if isinstance(module, nn.Conv1d):
                node = nir.Conv1d(input_shape=int(shape_in[1]), weight=w, stride=module.stride[0],
                                  padding=module.padding[0], dilation=module.dilation[0],
                                  groups=module.groups, bias=b)
            else:
                node = nir.Conv2d(input_shape=tuple(shape_in[1:]), weight=w,
                                  stride=tuple(module.stride), padding=tuple(module.padding),
                                  dilation=tuple(module.dilation), groups=module.groups, bias=b)
            self.add(name, "conv", node)
            return folded
        if isinstance(module, nn.MaxPool2d):
            self.maxpool(where, name, module, shape_out, binary)
            return False
        if isinstance(module, nn.AvgPool2d):
            if module.ceil_mode or module.divisor_override is not None:
                raise SnnkitError(f"{where}: NIR's AvgPool2d has no ceil_mode or divisor_override "
                                  "— use ceil_mode: false")
            padding = _pair(module.padding)
            if any(padding):
                if not module.count_include_pad:
                    raise SnnkitError(f"{where}: NIR's AvgPool2d counts padded zeros; "
                                      "count_include_pad: false cannot be exported — use "
                                      "padding 0 or count_include_pad: true")
                self.warnings.append(f"layer {name}: NIR does not say whether AvgPool2d padding "
                                     "counts in the average; snnkit writes and reads "
                                     "count_include_pad=True")
            kernel = _pair(module.kernel_size)
            stride = _pair(module.stride if module.stride is not None else module.kernel_size)
            self.add(name, "avgpool", nir.AvgPool2d(kernel_size=np.array(kernel),
                                                    stride=np.array(stride),
                                                    padding=np.array(padding)))
            return False
        if isinstance(module, nn.AdaptiveAvgPool2d):
            (h, w), (oh, ow) = shape_in[1:], shape_out[1:]
            if h % oh or w % ow:
                raise SnnkitError(f"{where}: input {h}x{w} is not a multiple of the output "
                                  f"{oh}x{ow}, so it is no fixed-window pooling NIR can express — "
                                  "use avgpool2d with an explicit kernel_size")
            kernel = np.array([h // oh, w // ow])
            self.add(name, "avgpool", nir.AvgPool2d(kernel_size=kernel, stride=kernel.copy(),
                                                    padding=np.array([0, 0])))
            return False
        if isinstance(module, nn.Flatten):
            self.add(name, "flatten", nir.Flatten(input_type={"input": np.array(shape_in)},
                                                  start_dim=0, end_dim=-1))
            return False
        if isinstance(module, (nn.Dropout, nn.Dropout2d)):
            if module.p > 0:
                self.warnings.append(f"layer {name}: dropout (p={module.p}) is the identity at "
                                     "inference and is left out of the graph")
            return False
        if isinstance(module, nn.Identity):
            return False
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise SnnkitError(f"{where}: NIR has no batch norm and this one does not directly "
                              "follow a linear or convolution layer it could be folded into — "
                              "move it right after one")
        raise SnnkitError(f"{where}: no NIR counterpart for this layer — NIR export supports "
                          "linear, conv1d, conv2d, batchnorm (folded), maxpool2d (on spikes), "
                          "avgpool2d, adaptive_avgpool2d, flatten, dropout, identity and the "
                          "neurons if, lif, plif, cuba_lif, li")

    def maxpool(self, where: str, name: str, module: nn.MaxPool2d, shape_out: tuple[int, ...],
                binary: bool) -> None:
        """Max pooling of 0/1 spikes is SumPool2d followed by Threshold(0.5), exactly."""
        if not binary:
            raise SnnkitError(f"{where}: NIR has no max pooling; snnkit writes it as SumPool2d → "
                              "Threshold(0.5), which equals max pooling only on 0/1 spikes, and "
                              "this layer's input is not the output of a spiking neuron — put it "
                              "after a spiking neuron, or use avgpool2d")
        if _pair(module.dilation) != (1, 1) or module.ceil_mode:
            raise SnnkitError(f"{where}: NIR pooling has no dilation or ceil_mode — use "
                              "dilation: 1 and ceil_mode: false")
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        self.add(name, "sumpool", self.nir.SumPool2d(kernel_size=np.array(kernel),
                                                     stride=np.array(stride),
                                                     padding=np.array(_pair(module.padding))))
        self.add(name, "threshold", self.nir.Threshold(threshold=np.full(shape_out, 0.5)))

    def neuron(self, where: str, name: str, module: N.BaseNeuron, shape: tuple[int, ...]) -> None:
        nir, dt = self.nir, self.dt
        if isinstance(module, _INEXPRESSIBLE) or not isinstance(
                module, (N.IF, N.LIF, N.PLIF, N.CubaLIF, N.LI)):
            raise SnnkitError(f"{where}: NIR has no {type(module).__name__} neuron (it expresses "
                              "IF, LIF, CubaLIF and LI) — replace this layer with one of if, lif, "
                              "plif, cuba_lif, li to export the model")

        def full(value: float) -> np.ndarray:
            return np.full(shape, float(value), dtype=np.float64)

        if isinstance(module, N.LI):
            self.add(name, "li", nir.LI(tau=full(module.tau * dt), r=full(1.0), v_leak=full(0.0)))
            return
        assert isinstance(module, N.SpikingNeuron)
        self.surrogates.append(f"layer {name} {_describe(module.surrogate)}")
        if module.v_reset is None:
            self.lossy(f"layer {name} ({type(module).__name__}): soft reset (V = H − V_th·S) "
                       "does not exist in NIR; exported as a hard reset to 0, so spikes after "
                       "the first one can differ")
        if module.detach_reset:
            self.warnings.append(f"layer {name}: detach_reset only changes gradients and is not "
                                 "part of NIR; dropped")
        rest = 0.0 if module.v_reset is None else module.v_reset
        v_th, v_reset = full(module.v_threshold), full(rest)
        if isinstance(module, N.IF):
            self.add(name, "if", nir.IF(r=full(1.0 / dt), v_threshold=v_th, v_reset=v_reset))
        elif isinstance(module, N.CubaLIF):
            self.add(name, "cubalif", nir.CubaLIF(
                tau_syn=full(module.tau_syn * dt), tau_mem=full(module.tau_mem * dt), r=full(1.0),
                v_leak=full(rest), v_threshold=v_th, v_reset=v_reset, w_in=full(module.tau_syn)))
        else:  # LIF or PLIF
            tau = module.tau
            if isinstance(module, N.PLIF):
                self.lossy(f"layer {name} (PLIF): exported as a LIF with its learned tau = "
                           f"{tau:.6g} (no longer learnable; load() returns a LIF)")
            r = 1.0 if module.decay_input else tau
            self.add(name, "lif", nir.LIF(tau=full(tau * dt), r=full(r), v_leak=full(rest),
                                          v_threshold=v_th, v_reset=v_reset))


def _describe(surrogate: Any) -> str:
    shape = surrogate._shape_repr() if hasattr(surrogate, "_shape_repr") else ""
    return f"{type(surrogate).__name__}({shape})"


def _fold_batchnorm(where: str, weight: torch.Tensor, bias: torch.Tensor | None,
                    bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """y = γ (Wx + b − μ) / √(σ² + ε) + β  →  W' = s W, b' = s (b − μ) + β with s = γ/√(σ² + ε)."""
    if bn.running_mean is None or bn.running_var is None:
        raise SnnkitError(f"{where}: the batch norm after it has no running statistics "
                          "(track_running_stats: false), so it cannot be folded — enable them")
    mean, var = bn.running_mean.double(), bn.running_var.double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    shift = torch.zeros_like(mean)
    if bn.affine:
        scale = scale * bn.weight.detach().double()
        shift = bn.bias.detach().double()
    b = torch.zeros_like(mean) if bias is None else bias
    new_w = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return new_w, (b - mean) * scale + shift


def _binary_after(module: nn.Module, binary: bool) -> bool:
    """Whether a module's output is 0/1 spikes (given whether its input was)."""
    if isinstance(module, N.SpikingNeuron):
        return True
    if isinstance(module, (nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d)):
        return binary
    return False


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules of a (possibly nested) ``nn.Sequential`` in order, with dotted names."""
    if not isinstance(model, nn.Sequential):
        if isinstance(model, (N.BaseNeuron, nn.Linear, nn.Conv2d, nn.Flatten)):
            return [("0", model)]
        raise SnnkitError(f"export: the model is a {type(model).__name__}; NIR export walks "
                          "sequential models (model: sequential or mlp) — build it as a sequence "
                          "of layers and neurons")
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            out += [(f"{name}.{sub}", m) for sub, m in _stages(child)]
        else:
            out.append((name, child))
    if not out:
        raise SnnkitError("export: the model has no layers")
    return out


def _trace_shapes(stages: list[tuple[str, nn.Module]],
                  input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Per-sample shapes before the first stage and after each, from one dummy multi-step pass."""
    if not input_shape or any(d < 1 for d in input_shape):
        raise SnnkitError(f"export: input_shape must list sizes >= 1 (one sample per step, e.g. "
                          f"[1, 28, 28]), got {list(input_shape)}")
    from snnkit.functional import reset_net

    modes = {m: m.step_mode for _, s in stages for m in s.modules() if hasattr(m, "step_mode")}
    training = {m: m.training for _, s in stages for m in s.modules()}
    shapes = [input_shape]
    x = torch.zeros((1, 1, *input_shape))
    try:
        for _, stage in stages:
            for m in stage.modules():
                if hasattr(m, "step_mode"):
                    m.step_mode = "m"
            stage.eval()
        with torch.no_grad():
            for name, stage in stages:
                try:
                    x = stage(x.to(_dtype_of(stage, x.dtype)))
                except (RuntimeError, ValueError) as err:
                    raise SnnkitError(f"export: layer {name} ({type(stage).__name__}) cannot take "
                                      f"input of shape {list(x.shape[2:])} per step "
                                      f"({str(err).strip().splitlines()[0]}) — check input_shape"
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


def save(source: nn.Module | str | Path, out: str | Path, *,
         input_shape: Sequence[int] | None = None, dt: float = 1.0,
         strict: bool = False) -> tuple[Path, list[str]]:
    """Export a model, a checkpoint (``.pt``) or a run folder to a NIR file; return (path, warnings).

    For a checkpoint or run folder the model is rebuilt from the saved recipe and weights, and
    ``input_shape`` defaults to the recipe's dataset's sample shape (building that dataset).
    """
    if isinstance(source, nn.Module):
        if input_shape is None:
            raise SnnkitError("export: pass input_shape (one sample's shape per time step, e.g. "
                              "[1, 28, 28]) when exporting a model object")
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


def model_from_checkpoint(path: str | Path, *, need_input_shape: bool = True,
                          ) -> tuple[nn.Module, tuple[int, ...] | None]:
    """The model of a checkpoint or run folder (weights loaded) and its dataset's sample shape."""
    from snnkit.assemble import make_builder
    from snnkit.checkpoint import load_checkpoint
    from snnkit.plugins import get_registry
    from snnkit.recipe import load_recipe
    from snnkit.registry import Kind

    state = load_checkpoint(path)
    recipe = load_recipe(state["recipe"])
    registry = get_registry()
    model = registry.build(Kind.MODEL, recipe.model, at="model", build=make_builder(registry))
    model.load_state_dict(state["model"])
    model.eval()
    shape = None
    if need_input_shape:
        data = registry.build(Kind.DATASET, recipe.dataset, at="dataset", train=False)
        shape = tuple(int(d) for d in data.input_shape)
    return model, shape


# ============================================================================================
# import
# ============================================================================================
def load(path: str | Path, *, dt: float | None = None) -> nn.Module:
    """Read a NIR file and rebuild it as an snnkit Sequential (see :func:`import_nir`)."""
    path = Path(path)
    if not path.exists():
        raise SnnkitError(f"{path}: no such NIR file — check the path")
    try:
        graph = _nir().read(path)
    except (OSError, ValueError, KeyError, AssertionError) as err:
        raise SnnkitError(f"{path}: not a readable NIR file ({type(err).__name__}: "
                          f"{str(err).strip()[:200]}) — write it with nir.write or snnkit export"
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
    chain = _chain(nir, graph)
    modules: list[nn.Module] = []
    i = 0
    while i < len(chain):
        name, node = chain[i]
        nxt = chain[i + 1][1] if i + 1 < len(chain) else None
        module, used = _module_for(nir, name, node, nxt, dt)
        modules.append(module)
        i += used
    if not modules:
        raise SnnkitError("import: the NIR graph has no computational nodes")
    from snnkit.models import Sequential

    return Sequential(lambda module, _at: module, modules, step_mode="m")


def _chain(nir: Any, graph: Any) -> list[tuple[str, Any]]:
    """The nodes between the single Input and Output, in order; refuses branches."""
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise SnnkitError(f"import: the graph has {len(inputs)} Input nodes; snnkit imports "
                          "graphs with exactly one input")
    after: dict[str, list[str]] = {}
    for a, b in graph.edges:
        after.setdefault(a, []).append(b)
    order: list[tuple[str, Any]] = []
    key = inputs[0]
    seen = {key}
    while True:
        nexts = after.get(key, [])
        if len(nexts) != 1:
            if not nexts and isinstance(graph.nodes[key], nir.Output):
                return order
            raise SnnkitError(f"import: node '{key}' feeds {len(nexts)} nodes {nexts}; snnkit "
                              "imports chains (each node feeds exactly one other, ending in an "
                              "Output)")
        key = nexts[0]
        if key in seen:
            raise SnnkitError(f"import: the graph has a cycle through '{key}'; snnkit imports "
                              "feed-forward chains")
        seen.add(key)
        node = graph.nodes[key]
        if isinstance(node, nir.Output):
            if after.get(key):
                raise SnnkitError(f"import: Output node '{key}' feeds other nodes")
            return order
        order.append((key, node))


def _uniform(where: str, field: str, value: Any) -> float:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        raise SnnkitError(f"{where}: {field} is empty")
    first = float(arr.reshape(-1)[0])
    if not np.all(arr == first):
        raise SnnkitError(f"{where}: {field} varies across neurons ({arr.min():g} … {arr.max():g}); "
                          "snnkit neurons hold one value per layer — make it uniform")
    return first


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_RTOL, abs_tol=1e-12)


def _ints(value: Any, n: int) -> tuple[int, ...]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return (int(arr[0]),) * n
    return tuple(int(v) for v in arr)


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
                raise SnnkitError(f"{where}: weight must be 2-D [out, in], got {list(weight.shape)}")
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
            if not (isinstance(nxt, nir.Threshold)
                    and 0 <= _uniform(where, "next threshold", nxt.threshold) < 1):
                raise SnnkitError(f"{where}: snnkit has no sum pooling; it reads SumPool2d "
                                  "followed by Threshold(0 ≤ θ < 1) as max pooling of spikes, and "
                                  "this one is not followed by such a Threshold")
            return L.MaxPool2d(_ints(node.kernel_size, 2), stride=_ints(node.stride, 2),
                               padding=_ints(node.padding, 2)), 2
        if isinstance(node, nir.AvgPool2d):
            return L.AvgPool2d(_ints(node.kernel_size, 2), stride=_ints(node.stride, 2),
                               padding=_ints(node.padding, 2)), 1
        if isinstance(node, nir.Flatten):
            shape = node.input_type.get("input") if node.input_type else None
            last = None if shape is None else len(np.asarray(shape)) - 1
            if int(node.start_dim) != 0 or int(node.end_dim) not in (-1, last):
                raise SnnkitError(f"{where}: snnkit's flatten flattens a whole sample "
                                  f"(start_dim 0, end_dim -1), got start_dim={node.start_dim}, "
                                  f"end_dim={node.end_dim}")
            return L.Flatten(), 1
        if isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF, nir.LI)):
            return _neuron(nir, where, node, dt), 1
    except ValueError as err:
        raise SnnkitError(f"{where}: {err}") from None
    raise SnnkitError(f"{where}: snnkit has no counterpart for NIR {kind} — snnkit imports "
                      "Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d→Threshold (max "
                      "pooling of spikes), Flatten, IF, LIF, CubaLIF and LI")


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
            raise SnnkitError(f"{where}: padding {padding!r} has no explicit equivalent here "
                              "(snnkit needs 'valid', or 'same' with odd kernels and stride 1)")
    else:
        padding = _ints(padding, n)
    groups = int(np.asarray(node.groups))
    in_channels, out_channels = weight.shape[1] * groups, weight.shape[0]
    cls = L.Conv2d if two_d else L.Conv1d
    size = (lambda t: t) if two_d else (lambda t: t[0])
    layer = cls(in_channels, out_channels, size(kernel), stride=size(_ints(node.stride, n)),
                padding=size(padding), dilation=size(dilation), groups=groups, bias=True)
    with torch.no_grad():
        layer.weight.copy_(weight)
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
        need(_close(r * dt, 1.0), f"snnkit's IF adds the input once per step, so r·dt must be 1, "
                                  f"got r={r:g}, dt={dt:g}")
        return N.IF(Sigmoid(), v_threshold=v_th, v_reset=v_reset)
    v_leak, r = get("v_leak"), get("r")
    need(_close(v_leak, v_reset),
         f"snnkit's leaky neurons rest at v_reset, got v_leak={v_leak:g}, v_reset={v_reset:g}")
    if isinstance(node, nir.LIF):
        tau = get("tau") / dt
        if _close(r, 1.0):
            decay_input = True
        elif _close(r, tau):
            decay_input = False
        else:
            raise SnnkitError(f"{where}: snnkit's LIF needs r = 1 (decay_input) or r = tau/dt = "
                              f"{tau:g} (decay_input false), got r={r:g}")
        return N.LIF(Sigmoid(), tau=tau, decay_input=decay_input, v_threshold=v_th,
                     v_reset=v_reset)
    tau_syn, tau_mem, w_in = get("tau_syn") / dt, get("tau_mem") / dt, get("w_in")
    need(_close(r, 1.0), f"snnkit's CubaLIF needs r = 1, got r={r:g}")
    need(_close(w_in, tau_syn), f"snnkit's CubaLIF adds the input to the current once per step, "
                                f"so w_in must be tau_syn/dt = {tau_syn:g}, got {w_in:g}")
    return N.CubaLIF(Sigmoid(), tau_syn=tau_syn, tau_mem=tau_mem, v_threshold=v_th,
                     v_reset=v_reset)
