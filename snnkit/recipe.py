"""Recipes: YAML (``safe_load``) -> validated :class:`Recipe`, in layers with one-line errors.

1. YAML syntax — ``file:line:col: ...``; only ``yaml.safe_load`` (no Python object tags).
2. ``--set a.b=c`` overrides — values parsed as YAML; list items by index (``layers.1.tau=3``).
3. The skeleton — unknown sections and keys are refused with close matches; ``train`` and
   ``output`` values are type- and range-checked.
4. Component names and parameters — checked against the registry in :mod:`snnkit.assemble`.

Relative paths (``dataset.root``, ``output.dir``) follow one rule: a path written in a recipe
*file* is relative to that file's folder; a path given on the command line (``--set``,
``--out``) or in a mapping passed from Python is relative to the current working directory.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from snnkit.errors import RecipeError

SECTIONS = ("seed", "time_steps", "dataset", "encoder", "model", "loss", "optimizer",
            "scheduler", "train", "output")
COMPONENT_SECTIONS = ("dataset", "encoder", "model", "loss", "optimizer", "scheduler")
PATH_KEYS = (("dataset", "root"), ("output", "dir"))


class TrainSpec(BaseModel):
    """How to train: ``epochs``, ``batch_size``, ``device`` and the rest (README: Recipe reference)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    epochs: int = Field(1, gt=0)
    batch_size: int = Field(64, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    device: str = "auto"
    max_batches: int | None = Field(None, gt=0)
    num_threads: int | None = Field(None, gt=0)
    amp: bool = False
    grad_clip: float | None = Field(None, gt=0)
    log_every: int = Field(50, gt=0)
    fast_input: bool = True

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or value.startswith("cuda:"):
            return value
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")


class OutputSpec(BaseModel):
    """Where a run writes: ``dir``/<name>/<timestamp>/ with TensorBoard and checkpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dir: str = "runs"
    name: str | None = None
    tensorboard: bool = True
    checkpoints: bool = True


class Recipe(BaseModel):
    """A validated recipe. Component sections hold normalised specs ``{name: ..., **params}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = 0
    time_steps: int = Field(gt=0)
    dataset: dict[str, Any]
    encoder: dict[str, Any]
    model: dict[str, Any]
    loss: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None
    train: TrainSpec = TrainSpec()
    output: OutputSpec = OutputSpec()
    source: str | None = Field(None, exclude=True)

    @field_validator(*COMPONENT_SECTIONS, mode="before")
    @classmethod
    def _spec(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, Mapping) and not isinstance(value.get("name"), str):
            raise ValueError("needs a 'name' (write {name: ..., ...} or just the name)")
        return value

    @property
    def label(self) -> str:
        """What to call the run: ``output.name``, else the recipe file's stem, else 'recipe'."""
        if self.output.name:
            return self.output.name
        return Path(self.source).stem if self.source else "recipe"

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data (what a run folder's recipe.yaml holds)."""
        return self.model_dump(mode="json", exclude_none=False)


def load_recipe(source: str | Path | Mapping[str, Any], overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe from a YAML path or a mapping."""
    if isinstance(source, Mapping):
        raw, where, base = copy.deepcopy(dict(source)), "recipe", Path.cwd()
    else:
        path = Path(source)
        raw, where, base = read_yaml(path), str(path), path.resolve().parent
    raw = _resolve_paths(raw, base)
    for text in overrides or []:
        apply_override(raw, text)
    _check_sections(raw, where)
    try:
        return Recipe(**raw, source=None if isinstance(source, Mapping) else str(source))
    except ValidationError as err:
        raise RecipeError(f"{where}: {_describe(err)}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """``yaml.safe_load`` the file; every failure is a one-line RecipeError."""
    if not path.exists():
        raise RecipeError(f"{path}: no such file — check the path (recipes live in recipes/)")
    if path.is_dir():
        raise RecipeError(f"{path}: is a directory — pass a recipe file such as {path}/lif_mnist.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: cannot read the file ({err.__class__.__name__}: {err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as err:
        mark = err.problem_mark
        pos = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RecipeError(f"{pos}: YAML tag not allowed ({err.problem}); recipes are read with "
                          "yaml.safe_load and may hold plain data only — remove the tag") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        pos = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise RecipeError(f"{pos}: invalid YAML: {problem} — fix the syntax at that position") from None
    if data is None:
        raise RecipeError(f"{path}: the recipe is empty — start from recipes/lif_mnist.yaml")
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections (seed, dataset, model, "
                          f"...), got a {type(data).__name__} — start from recipes/lif_mnist.yaml")
    return data


def apply_override(raw: dict[str, Any], text: str) -> None:
    """Apply one ``a.b.c=value`` override in place; ``value`` is parsed as YAML."""
    key, sep, value_text = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or any(not p for p in parts):
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. "
                          "--set train.epochs=1")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        raise RecipeError(f"--set {text!r}: the value is not valid YAML — quote it") from None
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where, text)]
        elif isinstance(node, dict):
            if isinstance(node.get(part), str) and part in COMPONENT_SECTIONS + ("surrogate",):
                node[part] = {"name": node[part]}
            node = node.setdefault(part, {})
            if node is None:
                node = {}
        else:
            raise RecipeError(f"--set {text!r}: '{where}' is a value, not a section")
        if not isinstance(node, (dict, list)):
            if isinstance(node, str):
                raise RecipeError(f"--set {text!r}: '{where}' is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key, text)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"--set {text!r}: cannot set '{key}'")


def _index(part: str, node: list, where: str, text: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"--set {text!r}: '{where}' must be an index 0..{len(node) - 1}")
    return int(part)


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    for section, key in PATH_KEYS:
        spec = raw.get(section)
        if isinstance(spec, dict) and isinstance(spec.get(key), str):
            path = Path(spec[key]).expanduser()
            spec[key] = str(path if path.is_absolute() else (base / path).resolve())
    return raw


def _check_sections(raw: dict[str, Any], where: str) -> None:
    for key in raw:
        if key not in SECTIONS:
            raise RecipeError(f"{where}: unknown section '{key}'{_close(key, SECTIONS)} "
                              f"Sections: {', '.join(SECTIONS)}")
    for section, model in (("train", TrainSpec), ("output", OutputSpec)):
        value = raw.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: {section}: expected a mapping of settings, got {value!r}")
        for key in value:
            if key not in model.model_fields:
                known = list(model.model_fields)
                raise RecipeError(f"{where}: {section}: unknown key '{key}'{_close(key, known)} "
                                  f"Keys: {', '.join(known)}")
    missing = [s for s in ("time_steps", "dataset", "encoder", "model", "loss", "optimizer")
               if raw.get(s) is None]
    if missing:
        raise RecipeError(f"{where}: missing section '{missing[0]}' — every recipe needs "
                          "time_steps, dataset, encoder, model, loss and optimizer")


def _close(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=2, cutoff=0.6)
    return f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else " —"


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    value = first.get("input")
    msg = first["msg"].removeprefix("Value error, ")
    got = f", got {value!r}" if not isinstance(value, (dict, list)) else ""
    return f"{loc}: {msg}{got}"
