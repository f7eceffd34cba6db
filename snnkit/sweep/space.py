"""Search spaces: a YAML mapping from recipe paths to distributions, checked against a recipe.

A space file maps dotted recipe paths (list items by index, as ``--set`` writes them) to one
distribution each::

    model.layers.2.tau: {float: [1.5, 8.0], log: true}   # low <= x <= high, log-uniform
    optimizer.lr: {float: [1.0e-4, 1.0e-2], log: true}
    time_steps: {int: [4, 32], step: 4}                   # 4, 8, ..., 32
    model.layers.2.surrogate.name: {choice: [sigmoid, atan]}

``float: [low, high]`` takes ``log`` (bool) or ``step`` (> 0); ``int: [low, high]`` takes
``log`` or ``step`` (int >= 1); ``choice: [v, ...]`` lists plain values (text, numbers,
booleans, null). A path must exist in the recipe: every part but the last must be there, and
the last must be a key written in the recipe, a field of ``train``/``output``, or a parameter
of the component named at that place (e.g. ``tau`` of ``{name: lif}``). Each sampled point
becomes ``--set PATH=VALUE`` overrides of a normal run. Bad input is a one-line
:class:`~snnkit.errors.RecipeError` naming the path, with close matches.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snnkit.errors import RecipeError
from snnkit.plugins.registry import Kind, Registry
from snnkit.recipes.loader import OutputSettings, TrainSettings
from snnkit.recipes.yaml_source import read_yaml

__all__ = ["Dimension", "check_paths", "load_space", "parse_space"]

DISTRIBUTIONS = ("float", "int", "choice")
#: Options each distribution takes besides its range / values.
OPTIONS = {"float": ("log", "step"), "int": ("log", "step"), "choice": ()}
#: The component kinds a spec at a recipe place may name.
_PLACE_KINDS = {
    "dataset": ("dataset",),
    "encoder": ("encoder",),
    "model": ("model",),
    "loss": ("loss",),
    "optimizer": ("optimizer",),
    "scheduler": ("scheduler",),
    "layers": ("layer", "neuron"),
    "surrogate": ("surrogate",),
    "neuron": ("neuron",),
}
_SKELETON = {"train": set(TrainSettings.model_fields), "output": set(OutputSettings.model_fields)}


@dataclass(frozen=True)
class Dimension:
    """One searched recipe value: ``path`` and its distribution."""

    path: str
    kind: str  # "float", "int" or "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this dimension's value from an Optuna trial (named by its path)."""
        if self.kind == "float":
            return trial.suggest_float(self.path, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.path, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return trial.suggest_categorical(self.path, list(self.choices))

    def override(self, value: Any) -> str:
        """The ``--set`` text that puts ``value`` at this path (the value written as YAML)."""
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        return f"{self.path}={text.removesuffix('...').strip()}"


def load_space(path: str | Path) -> list[Dimension]:
    """Read and check a space file (YAML, snnkit's safe loader)."""
    path = Path(path)
    return parse_space(read_yaml(path), str(path))


def parse_space(raw: Any, where: str = "space") -> list[Dimension]:
    """Check a space mapping ``{path: {float|int|choice: ..., ...}}`` and build its dimensions."""
    if not isinstance(raw, dict) or not raw:
        raise RecipeError(
            f"{where}: a space must map recipe paths to distributions, e.g. "
            "'optimizer.lr: {float: [1.0e-4, 1.0e-2], log: true}'"
        )
    return [_dimension(str(key), spec, f"{where}: {key}") for key, spec in raw.items()]


def _dimension(path: str, spec: Any, where: str) -> Dimension:
    if not isinstance(spec, dict):
        raise RecipeError(
            f"{where}: expected a distribution such as {{float: [low, high]}}, "
            f"{{int: [low, high]}} or {{choice: [a, b]}}, got {spec!r}"
        )
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    if len(kinds) != 1:
        unknown = [k for k in spec if k not in (*DISTRIBUTIONS, "log", "step")]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), DISTRIBUTIONS, n=1, cutoff=0.5)
            hint = f" — did you mean '{close[0]}'?" if close else " —"
            raise RecipeError(
                f"{where}: unknown distribution '{unknown[0]}'{hint} use one of "
                f"{', '.join(DISTRIBUTIONS)}"
            )
        raise RecipeError(
            f"{where}: give exactly one of {', '.join(DISTRIBUTIONS)}, got "
            f"{', '.join(map(str, spec)) or 'none'}"
        )
    kind = kinds[0]
    extra = [k for k in spec if k != kind and k not in OPTIONS[kind]]
    if extra:
        allowed = ", ".join(OPTIONS[kind]) or "no options"
        raise RecipeError(f"{where}: '{extra[0]}' is not an option of {kind} (it takes {allowed})")
    if kind == "choice":
        values = spec["choice"]
        if not isinstance(values, list) or not values:
            raise RecipeError(
                f"{where}: choice needs a non-empty list of values, e.g. "
                "{choice: [sigmoid, atan]}"
            )
        if any(v is not None and not isinstance(v, (bool, int, float, str)) for v in values):
            raise RecipeError(
                f"{where}: choice values must be text, numbers, booleans or null "
                f"(one value per trial), got {values!r}"
            )
        return Dimension(path, kind, choices=tuple(values))
    return _range(path, kind, spec, where)


def _range(path: str, kind: str, spec: dict[str, Any], where: str) -> Dimension:
    bounds = spec[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, number) for b in bounds)
        or any(isinstance(b, float) and not math.isfinite(b) for b in bounds)
    ):
        raise RecipeError(
            f"{where}: {kind} needs [low, high] with two "
            f"{'integers' if kind == 'int' else 'finite numbers'}, got {bounds!r}"
        )
    low, high = bounds
    if not low < high:
        raise RecipeError(f"{where}: empty range [{low}, {high}] — low must be below high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise RecipeError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise RecipeError(f"{where}: a log range needs low > 0, got [{low}, {high}]")
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
            raise RecipeError(
                f"{where}: step must be a {'whole ' if kind == 'int' else ''}"
                f"number > 0, got {step!r}"
            )
        if log:
            raise RecipeError(f"{where}: give log or step, not both")
    return Dimension(
        path, kind, float(low), float(high), log, None if step is None else float(step)
    )


def check_paths(
    dims: list[Dimension], raw: dict[str, Any], registry: Registry, where: str = "space"
) -> None:
    """Refuse a path that does not exist in the (overridden) raw recipe mapping."""
    for dim in dims:
        _check_path(dim.path, raw, registry, f"{where}: {dim.path}")


def _check_path(path: str, raw: dict[str, Any], registry: Registry, where: str) -> None:
    parts = path.split(".")
    node: Any = raw
    place = ""
    for i, part in enumerate(parts):
        here = ".".join(parts[:i]) or "the recipe"
        if isinstance(node, str) and place in _PLACE_KINDS:
            node = {"name": node}  # a component given by name: `lif` -> {name: lif}
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise RecipeError(
                    f"{where}: '{here}' is a list — '{part}' must be an index 0..{len(node) - 1}"
                )
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise RecipeError(
                f"{where}: '{here}' holds the value {node!r}, not a section — "
                "search that path itself"
            )
        if part in node:
            node, place = node[part], part
            continue
        if i == 0 and part in _SKELETON and len(parts) == 2 and parts[1] in _SKELETON[part]:
            return  # a train/output field the recipe leaves at its default
        known = set(node) | (_SKELETON.get(parts[0], set()) if i == 1 else set())
        known |= _parameters(node, place, registry)
        if part in known:
            return  # a default not written in the recipe: it can still be set
        close = difflib.get_close_matches(part, sorted(known), n=2, cutoff=0.6)
        hint = f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else " —"
        keys = ", ".join(sorted(map(str, known))) or "nothing"
        raise RecipeError(f"{where}: '{part}' is not in '{here}'{hint} it has: {keys}")


def _parameters(node: dict[str, Any], place: str, registry: Registry) -> set[str]:
    """The parameters of the component a spec mapping names (empty if none or unknown)."""
    name = node.get("name")
    if not isinstance(name, str):
        return set()
    kinds = _PLACE_KINDS.get(place, tuple(k.value for k in Kind))
    for kind in kinds:
        try:
            component = registry.get(kind, name)
        except LookupError:
            continue
        try:  # the signature: parameters snnkit supplies from a spec (surrogate) included
            named = set(component.signature().parameters)
        except (TypeError, ValueError):
            named = set()
        return (named | set(component.parameters()) | {"name"}) - {"build", "self"}
    return set()
