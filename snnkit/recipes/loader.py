"""Recipes: YAML (safe loader) -> validated :class:`Recipe`, in layers with one-line errors.

1. YAML syntax — ``file:line:col: ...``; read with a ``yaml.SafeLoader`` subclass that also
   refuses duplicate keys and non-string keys (no Python object tags, ever).
2. ``--set a.b=c`` overrides — values parsed as YAML; list items by index (``layers.1.tau=3``).
3. The skeleton — unknown sections and keys are refused with close matches; ``seed``,
   ``time_steps``, ``train`` and ``output`` values are type- and range-checked.
4. Component names and parameters — checked against the registry in :mod:`snnkit.assembly.assemble`.

:func:`check_resume_changes` says which overrides a resumed run may take.

Relative paths (``dataset.root``, ``output.dir``) follow one rule: a path written in a recipe
*file* is relative to that file's folder; a path given on the command line (``--set``,
``--out``) or in a mapping passed from Python is relative to the current working directory.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from snnkit.errors import ParameterError, RecipeError, did_you_mean
from snnkit.plugins.registry import normalize_spec
from snnkit.recipes.sizes import parse_size
from snnkit.recipes.yaml_source import apply_override, read_yaml

SECTIONS = (
    "seed",
    "time_steps",
    "dataset",
    "encoder",
    "model",
    "loss",
    "optimizer",
    "scheduler",
    "train",
    "output",
    "costs",
)
REQUIRED = ("time_steps", "dataset", "encoder", "model", "loss", "optimizer")
COMPONENT_SECTIONS = ("dataset", "encoder", "model", "loss", "optimizer", "scheduler")
PATH_KEYS = (("dataset", "root"), ("output", "dir"))
#: Sections a resumed run may not change (the weights or the data would mean something else),
#: and the keys of those sections that may change (e.g. the data moved to another folder).
RESUME_FIXED = ("seed", "time_steps", "dataset", "encoder", "model", "loss")
_LOADING = ("num_workers", "prefetch", "pin_memory", "persistent_workers")
LOADER_KEYS = ("transforms", "streaming", *_LOADING)  # the data path's keys, not the factory's
RESUME_FREE = {"dataset": ("root", "download", "streaming", *_LOADING)}
INT_FIELDS = (
    "seed",
    "time_steps",
    "epochs",
    "batch_size",
    "eval_batch_size",
    "max_batches",
    "num_threads",
    "log_every",
    "tbptt",
    "segment_steps",
    "recompute_macs",
)
#: ``train.memory``: how backpropagation through time keeps its activations (README: Memory).
MEMORY_MODES = ("full", "checkpoint", "online", "auto")

#: What a skeleton value means, shown after the rule it broke.
HELP = {
    "seed": "seeds Python, NumPy, torch and the data order",
    "time_steps": "simulation steps per sample, e.g. 100",
    "train.epochs": "passes over the training set, e.g. 10",
    "train.batch_size": "samples per optimizer step, e.g. 64",
    "train.eval_batch_size": "samples per evaluation batch; null = batch_size",
    "train.max_batches": "cap on training batches per epoch; null = all",
    "train.num_threads": "torch CPU threads; null = torch's default",
    "train.grad_clip": "max gradient norm; null = no clipping",
    "train.log_every": "TensorBoard logging interval in batches, e.g. 50",
    "train.cuda_graphs": "replay each CUDA training step as one CUDA graph (true/false)",
    "train.tbptt": "truncated BPTT: gradients flow back at most this many steps; null = all",
    "train.segment_steps": "checkpoint segment length in steps; null = about sqrt(time_steps)",
    "train.recompute_macs": (
        "memory modes: recompute a convolution on spikes with C_in*k_h*k_w up to this from its "
        "1-bit input instead of keeping its output, e.g. 1152; 0 = none"
    ),
    "costs.enabled": "count rates, SOPs, MACs and energy on every test pass (true/false)",
    "costs.fold_bn": "count BatchNorm as folded into the previous layer: 0 MACs (true/false)",
    "costs.energy.ac_pj": "picojoules per accumulate (SOP), e.g. 0.9",
    "costs.energy.mac_pj": "picojoules per multiply-accumulate, e.g. 4.6",
}


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, not {str(value).lower()}")
    return value


class TrainSettings(BaseModel):
    """How to train: ``epochs``, ``batch_size``, ``device`` and the rest (README: Recipe
    reference)."""

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
    cuda_graphs: bool = True
    memory: str = "full"
    tbptt: int | None = Field(None, gt=0)
    segment_steps: int | None = Field(None, gt=0)
    recompute_macs: int = Field(1152, ge=0)
    memory_budget: str | int | None = None

    _ints = field_validator(
        *(f for f in INT_FIELDS if f not in ("seed", "time_steps")), mode="before"
    )(classmethod(lambda cls, v: _no_bool(v)))

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
            return value
        raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {value!r}")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if value in MEMORY_MODES:
            return value
        hint = did_you_mean(value, MEMORY_MODES, n=1) or " —"
        raise ValueError(
            f"must be one of {', '.join(MEMORY_MODES)}, got {value!r}{hint} see README "
            "'Memory: checkpoint, online, truncated BPTT'"
        )

    @field_validator("memory_budget")
    @classmethod
    def _budget(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_size(value)
        return value

    @property
    def budget_bytes(self) -> int | None:
        """``memory_budget`` in bytes, or None when no budget is set."""
        return None if self.memory_budget is None else parse_size(self.memory_budget)


class DataLoading(BaseModel):
    """The ``dataset`` section's data-path keys (README: Recipe reference); ``streaming: auto``
    streams what is not in memory, declares itself streamed, or does not fit the device."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    transforms: dict[Literal["train", "test"], list[dict[str, Any]]] = {}
    streaming: Any = "auto"
    num_workers: int = Field(0, ge=0)
    prefetch: int = Field(2, gt=0)
    pin_memory: bool = True
    persistent_workers: bool = True

    _ints = field_validator("num_workers", "prefetch", mode="before")(
        classmethod(lambda cls, v: _no_bool(v))
    )

    @field_validator("transforms", mode="before")
    @classmethod
    def _transforms(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("must be a mapping {train: [...], test: [...]}")
        out: dict[str, Any] = {}
        for split, specs in value.items():
            if split not in ("train", "test"):
                raise ValueError(f"must have only the keys train and test, got '{split}'")
            specs = [] if specs is None else specs
            if not isinstance(specs, list):
                raise ValueError(f"{split} must be a list of transforms, got {_show(specs)}")
            at = f"dataset.transforms.{split}"
            out[split] = [normalize_spec(s, at=f"{at}[{i}]") for i, s in enumerate(specs)]
        return out

    @field_validator("streaming")
    @classmethod
    def _streaming(cls, value: Any) -> Any:
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError(f"must be auto, true or false, got {_show(value)}")


def split_dataset_spec(spec: Mapping[str, Any]) -> tuple[dict[str, Any], DataLoading]:
    """A ``dataset`` spec as (what the factory gets, the data-path settings); checked."""
    factory = {k: v for k, v in spec.items() if k not in LOADER_KEYS}
    loading = {k: v for k, v in spec.items() if k in LOADER_KEYS}
    try:
        return factory, DataLoading(**loading)
    except ValidationError as err:
        raise RecipeError(f"dataset.{_describe(err)}") from None
    except ParameterError as err:
        raise RecipeError(str(err)) from None


class OutputSettings(BaseModel):
    """Where a run writes: ``dir``/<name>/<timestamp>/ with TensorBoard and checkpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dir: str = "runs"
    name: str | None = None
    tensorboard: bool = True
    checkpoints: bool = True


class EnergySettings(BaseModel):
    """Picojoules per operation for the energy estimate ``E = SOPs · ac_pj + MACs · mac_pj``
    (default 45 nm CMOS, Horowitz 2014)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ac_pj: float = Field(0.9, ge=0, allow_inf_nan=False)
    mac_pj: float = Field(4.6, ge=0, allow_inf_nan=False)


class CostSettings(BaseModel):
    """What each test pass counts (docs/costs.md): ``enabled`` (default true), ``fold_bn``
    (BatchNorm folded into the previous layer: 0 MACs) and the ``energy`` constants."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    fold_bn: bool = False
    energy: EnergySettings = EnergySettings()


class Recipe(BaseModel):
    """A validated recipe. Component sections hold normalised specs ``{name: ..., **params}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = Field(0, ge=0, lt=2**63)
    time_steps: int = Field(gt=0)
    dataset: dict[str, Any]
    encoder: dict[str, Any]
    model: dict[str, Any]
    loss: dict[str, Any] | list[dict[str, Any]]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None
    train: TrainSettings = TrainSettings()
    output: OutputSettings = OutputSettings()
    costs: CostSettings = CostSettings()
    source: str | None = Field(None, exclude=True)

    _ints = field_validator("seed", "time_steps", mode="before")(
        classmethod(lambda cls, v: _no_bool(v))
    )

    @property
    def label(self) -> str:
        """What to call the run: ``output.name``, else the recipe file's stem, else 'recipe'."""
        if self.output.name:
            return self.output.name
        return Path(self.source).stem if self.source else "recipe"

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data (what a run folder's recipe.yaml holds)."""
        return self.model_dump(mode="json", exclude_none=False)


def load_recipe(
    source: str | Path | Mapping[str, Any], overrides: list[str] | None = None
) -> Recipe:
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
    raw = {k: v for k, v in raw.items() if v is not None}  # `train:` left empty = defaults
    try:
        for section in COMPONENT_SECTIONS:
            if section == "loss" and isinstance(raw.get(section), list):
                raw[section] = _loss_list(raw[section])
            elif section in raw:
                raw[section] = normalize_spec(raw[section], at=section)
    except ParameterError as err:
        raise RecipeError(f"{where}: {err}") from None
    if isinstance(raw.get("dataset"), dict):
        try:
            split_dataset_spec(raw["dataset"])
        except RecipeError as err:
            raise RecipeError(f"{where}: {err}") from None
    try:
        recipe = Recipe(**raw, source=None if isinstance(source, Mapping) else str(source))
    except ValidationError as err:
        raise RecipeError(f"{where}: {_describe(err)}") from None
    _check_time_windows(recipe, where)
    return recipe


def _loss_list(specs: list[Any]) -> list[dict[str, Any]]:
    """``loss: [spec, ...]``: the parts of a composed loss (summed), each a loss spec."""
    if not specs:
        raise ParameterError(
            "loss: an empty list — name a loss (loss: tet) or list its parts "
            "(loss: [{name: tet}, {name: rate_penalty}])"
        )
    return [normalize_spec(s, at=f"loss[{i}]") for i, s in enumerate(specs)]


def _check_time_windows(recipe: Recipe, where: str) -> None:
    """``tbptt`` and ``segment_steps`` are windows of the T steps: 1 <= K <= time_steps; the
    online mode has no window to truncate (it drops the whole temporal path)."""
    t, train = recipe.time_steps, recipe.train
    for key in ("tbptt", "segment_steps"):
        k = getattr(train, key)
        if k is not None and k > t:
            raise RecipeError(
                f"{where}: train.{key} must be <= time_steps ({t}), got {k} — set "
                f"train.{key} between 1 and {t}, or null"
            )
    if train.tbptt is not None and train.memory == "online":
        raise RecipeError(
            f"{where}: train.tbptt cannot be combined with train.memory: online (online "
            "already drops every step's temporal path) — set train.tbptt: null or "
            "train.memory: full"
        )


def check_resume_changes(saved: Recipe, wanted: Recipe, overrides: list[str]) -> None:
    """Refuse resume overrides that would change what the saved weights or data mean.

    ``train``, ``output``, ``scheduler`` and the optimizer's hyperparameters may change;
    ``RESUME_FIXED`` sections (but their ``RESUME_FREE`` keys) and ``optimizer.name`` may not.
    """
    old, new = saved.to_dict(), wanted.to_dict()
    for section in RESUME_FIXED:
        a, b = old[section], new[section]
        if isinstance(a, dict) and isinstance(b, dict):
            free = RESUME_FREE.get(section, ())
            a = {k: v for k, v in a.items() if k not in free}
            b = {k: v for k, v in b.items() if k not in free}
        if a != b:
            hits = [o for o in overrides if o.partition("=")[0].strip().split(".")[0] == section]
            how = "the run folder's recipe.yaml differs from the recipe saved in last.pt"
            fix = "undo the edit of recipe.yaml, or start a new run with snnkit run RECIPE"
            if hits:
                how, fix = f"--set {hits[0]}", "start a new run with snnkit run RECIPE instead"
            raise RecipeError(
                f"--resume: cannot change '{section}' of a run that has started ({how}) — {fix}"
            )
    if old["optimizer"]["name"] != new["optimizer"]["name"]:
        raise RecipeError(
            "--resume: cannot change optimizer.name of a run that has started — "
            "change its hyperparameters (e.g. --set optimizer.lr=1e-4) or start a "
            "new run"
        )


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
            raise RecipeError(
                f"{where}: unknown section '{key}'{_close(key, SECTIONS)} "
                f"Sections: {', '.join(SECTIONS)}"
            )
    settings: list[tuple[str, Any, type[BaseModel]]] = [
        ("train", raw.get("train"), TrainSettings),
        ("output", raw.get("output"), OutputSettings),
        ("costs", raw.get("costs"), CostSettings),
    ]
    if isinstance(raw.get("costs"), dict):
        settings.append(("costs.energy", raw["costs"].get("energy"), EnergySettings))
    for section, value, model in settings:
        if value is None:
            continue
        if not isinstance(value, dict):
            raise RecipeError(
                f"{where}: {section}: expected a mapping of settings such as "
                f"{{{next(iter(model.model_fields))}: ...}}, got {value!r}"
            )
        for key in value:
            if key not in model.model_fields:
                known = list(model.model_fields)
                raise RecipeError(
                    f"{where}: {section}: unknown key '{key}'{_close(key, known)} "
                    f"Keys: {', '.join(known)}"
                )
    missing = [s for s in REQUIRED if raw.get(s) is None]
    if missing:
        raise RecipeError(
            f"{where}: missing section '{missing[0]}' — every recipe needs "
            "time_steps, dataset, encoder, model, loss and optimizer "
            "(see recipes/lif_mnist.yaml)"
        )


def _close(word: str, choices: Any) -> str:
    return did_you_mean(word, choices, n=2) or " —"


_RULES = {
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping of settings",
    "missing": "is required",
    "finite_number": "must be a finite number",
    "union_type": "must be a size such as 8GB",
}


def _describe(err: ValidationError) -> str:
    """The first pydantic error as ``loc must be RULE (meaning), got VALUE``."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if p not in ("int", "float", "str", "bool"))
    kind, ctx, value = first["type"], first.get("ctx") or {}, first.get("input")
    if kind == "value_error":
        rule = first["msg"].removeprefix("Value error, ")
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op, bound = {
            "greater_than": (">", "gt"),
            "greater_than_equal": (">=", "ge"),
            "less_than": ("<", "lt"),
            "less_than_equal": ("<=", "le"),
        }[kind]
        rule = f"must be {op} {ctx.get(bound)}"
    else:
        rule = _RULES.get(kind) or first["msg"][:1].lower() + first["msg"][1:]
    if not rule.startswith(("must", "is ", "needs")):
        rule = f"must be valid: {rule}"
    help_text = HELP.get(loc)
    text = f"{loc} {rule}" + (f" ({help_text})" if help_text else "")
    if kind not in ("value_error", "missing"):
        text += f", got {_show(value)}"
    if kind == "int_parsing" and isinstance(value, str) and _is_whole(value):
        text += f" — YAML reads {value} as text; write {int(float(value))}"
    return text


def _is_whole(text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    return number.is_integer() and abs(number) < 2**63


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
