"""Which component an exception raised while training or evaluating came from.

Nothing runs on the hot path: the engine catches an exception around a whole step, and only
then reads its traceback. Contract of :func:`find_culprit`:

- **forward** (and the loss): the innermost traceback frame that runs a method of a module of
  the experiment (``self`` is the model, one of its submodules, the encoder or the loss) names
  it; a module that no registered component made (say a ``torch.nn.Conv2d`` inside a plugin's
  layer) passes the blame to the nearest enclosing module that one made;
- **backward** (autograd runs a component's ``Function.backward`` with no module in sight):
  the modules whose class is defined in the Python module of the innermost frame that raised
  (e.g. a neuron's surrogate) are the candidates.

The path reads as the recipe does: ``model.layers[2]`` for the third layer of a
``sequential`` model, else ``model`` plus the module names (``model[0].conv``), ``encoder``,
``loss``. The component (kind, name, plugin, version) comes from the registry: the registered
factory that is the module's class, else, for a recipe's ``layers`` list, the spec at that
position.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
from torch import nn

from snnkit.assembly.assemble import Experiment
from snnkit.errors import SnnkitError, TrainingError, one_line
from snnkit.plugins.loader import BUILTIN_PLUGIN
from snnkit.plugins.registry import Component, Kind, Registry

#: Kinds whose factories build the modules a traceback can point at.
MODULE_KINDS = (Kind.LAYER, Kind.NEURON, Kind.SURROGATE, Kind.MODEL, Kind.ENCODER, Kind.LOSS)


@dataclass(frozen=True)
class Culprit:
    """Where an exception came from: the module paths (one, or the candidates) and the
    component that built them (``None`` when no registered component did)."""

    paths: tuple[str, ...]
    component: Component | None
    phase: str  # "forward" or "backward"

    def describe(self) -> str:
        """E.g. ``layer 'explode' at model.layers[2] (plugin 'snnkit_explode' 0.1)``."""
        where = " or ".join(self.paths)
        c = self.component
        if c is None:
            return f"the module at {where}"
        version = f" {c.version}" if c.version else ""
        return f"{c.kind} '{c.name}' at {where} (plugin '{c.plugin}'{version})"

    @property
    def builtin(self) -> bool:
        """Made by snnkit itself (or by no registered component)."""
        return self.component is None or self.component.plugin == BUILTIN_PLUGIN


def component_error(
    err: Exception, exp: Experiment, when: str, *, rerun: str, kept: str
) -> TrainingError | None:
    """The one-line error for ``err``, raised by a step or an evaluation of ``exp``.

    ``when`` starts the message (``epoch 1, batch 3``); ``rerun`` is the command that repeats
    the failure (the message shows it with ``--debug``); ``kept`` says what is saved and how to
    continue. ``None``: re-raise ``err`` as it is (snnkit's own errors, and a failure that no
    component can be blamed for keeps its traceback).
    """
    if isinstance(err, SnnkitError):
        return None
    culprit = find_culprit(err, exp)
    where = f" in {culprit.describe()}" if culprit else ""
    if is_out_of_memory(err):
        return TrainingError(
            f"{when}: out of memory{where} ({one_line(err, 200, first_line=True)}) — lower "
            f"train.batch_size (or train.eval_batch_size) or time_steps; {kept} --set "
            "train.batch_size=N"
        )
    if culprit is None:
        return None
    if culprit.component is None or culprit.builtin:
        author = "snnkit's developers"
    else:
        author = f"the author of plugin '{culprit.component.plugin}'"
    debug = rerun.replace("snnkit ", "snnkit --debug ", 1)
    return TrainingError(
        f"{when}: {culprit.describe()} raised {one_line(err, 300, typed=True)} in its "
        f"{culprit.phase} pass — a bug in that component, not in the recipe: report it to "
        f"{author} with the traceback that {debug} (or SNNKIT_DEBUG=1) shows; {kept} once "
        "it is fixed"
    )


def find_culprit(err: BaseException, exp: Experiment) -> Culprit | None:
    """The component whose code raised ``err`` (see the module doc), or ``None``."""
    names = module_paths(exp)
    frames = _frames(err.__traceback__)
    phase = "backward" if any(_in_autograd_engine(f) for f in frames) else "forward"
    inner = [m for m in map(_self_module, reversed(frames)) if m is not None and id(m) in names]
    for module in inner:  # innermost first
        component = component_of(module, names[id(module)], exp)
        if component is not None:
            return Culprit((names[id(module)],), component, phase)
    if inner:
        return Culprit((names[id(inner[0])],), None, phase)
    by_source: dict[str, list[nn.Module]] = {}
    for module in _modules(exp):
        by_source.setdefault(type(module).__module__, []).append(module)
    for frame in reversed(frames):  # e.g. an autograd Function's backward: its module's classes
        found = by_source.get(frame.f_globals.get("__name__", ""), [])
        components = {component_of(m, names[id(m)], exp) for m in found}
        if found and len(components) == 1:
            return Culprit(tuple(names[id(m)] for m in found), components.pop(), phase)
    return None


def module_paths(exp: Experiment) -> dict[int, str]:
    """``id(module) -> path`` for the model's, the encoder's and the loss's modules."""
    out: dict[int, str] = {}
    sequential = exp.recipe.model.get("name") == "sequential" and isinstance(
        exp.recipe.model.get("layers"), list
    )
    for root, top in ((exp.model, "model"), (exp.encoder, "encoder"), (exp.loss, "loss")):
        for name, module in root.named_modules():
            out.setdefault(id(module), _path(top, name, sequential and top == "model"))
    return out


def component_of(module: nn.Module, path: str, exp: Experiment) -> Component | None:
    """The registered component that made ``module``: its class's factory, else the recipe's
    spec at ``path`` (``model.layers[i]``)."""
    registry: Registry = exp.registry
    made = [c for c in registry.list() if c.kind in MODULE_KINDS and c.factory is type(module)]
    spec = _spec_at(exp, path)
    if spec is not None:
        by_spec = [c for c in made if c.name == spec] or [
            registry.get(kind, spec)
            for kind in (Kind.NEURON, Kind.LAYER)
            if (kind, spec) in registry and not made
        ]
        if by_spec:
            return by_spec[0]
    return made[0] if len(made) == 1 else None


def _path(top: str, name: str, sequential: bool) -> str:
    """``model`` + module name ``2.conv`` -> ``model.layers[2].conv`` (sequential recipes) or
    ``model[2].conv``."""
    if not name:
        return top
    parts = name.split(".")
    out = top
    for i, part in enumerate(parts):
        if part.isdigit():
            out += f".layers[{part}]" if i == 0 and sequential else f"[{part}]"
        else:
            out += f".{part}"
    return out


def _spec_at(exp: Experiment, path: str) -> str | None:
    """The name in the recipe's spec for ``model.layers[i]`` (exactly that path), if any."""
    layers = exp.recipe.model.get("layers")
    if not (path.startswith("model.layers[") and path.endswith("]") and isinstance(layers, list)):
        return None
    index = path[len("model.layers[") : -1]
    if not index.isdigit() or int(index) >= len(layers):
        return None
    spec = layers[int(index)]
    name = spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) else None


def _modules(exp: Experiment) -> list[nn.Module]:
    """The experiment's modules, each once."""
    seen: dict[int, nn.Module] = {}
    for root in (exp.model, exp.encoder, exp.loss):
        for module in root.modules():
            seen.setdefault(id(module), module)
    return list(seen.values())


def _frames(tb: TracebackType | None) -> list[Any]:
    """The traceback's frames, outermost first."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _self_module(frame: Any) -> nn.Module | None:
    owner = frame.f_locals.get("self")
    return owner if isinstance(owner, nn.Module) else None


def _in_autograd_engine(frame: Any) -> bool:
    return frame.f_code.co_name == "_engine_run_backward" or (
        frame.f_code.co_name == "backward" and frame.f_globals.get("__name__") == "torch.autograd"
    )


def is_out_of_memory(err: BaseException) -> bool:
    """A device (or host) ran out of memory: no component's bug."""
    return isinstance(err, (MemoryError, torch.OutOfMemoryError))
