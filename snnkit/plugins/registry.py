"""The component registry: ``(kind, name) -> Component`` with provenance, checks and building.

pluggy fills it (see :mod:`snnkit.plugins.loader`); afterwards it is a plain lookup table.
A factory's signature is the component's schema: recipe values are coerced to its type hints
and checked against the ranges it declares (``Annotated[float, Gt(1)]``, see
:mod:`snnkit.constraints`) before anything is built. Arguments that snnkit supplies itself
(``SUPPLIED``) may not be set by a recipe.
"""

from __future__ import annotations

import contextlib
import enum
import fnmatch
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from snnkit import constraints
from snnkit.errors import (
    ComponentBuildError,
    ParameterError,
    PluginError,
    SnnkitError,
    UnknownComponentError,
    did_you_mean,
    one_line,
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class Kind(str, enum.Enum):
    """The kinds of component a plugin can register; each has one hook ``register_<kind>s``."""

    NEURON = "neuron"
    SURROGATE = "surrogate"
    ENCODER = "encoder"
    LOSS = "loss"
    LAYER = "layer"
    MODEL = "model"
    OPTIMIZER = "optimizer"
    SCHEDULER = "scheduler"
    DATASET = "dataset"

    def __str__(self) -> str:
        return self.value

    @property
    def hook(self) -> str:
        """Name of the hook that registers this kind, e.g. ``register_losses``."""
        return "register_" + ("losses" if self is Kind.LOSS else self.value + "s")

    @classmethod
    def parse(cls, value: Kind | str) -> Kind:
        """Accept ``Kind.NEURON``, ``"neuron"`` or ``"neurons"`` (case-insensitive)."""
        if isinstance(value, Kind):
            return value
        text = str(value).strip().lower()
        for kind in cls:
            if text in (kind.value, kind.hook.removeprefix("register_")):
                return kind
        known = ", ".join(k.value for k in cls)
        raise UnknownComponentError(f"unknown component kind '{value}' — use one of: {known}")


#: Arguments snnkit passes to factories of each kind; a recipe may not set them.
SUPPLIED: dict[Kind, frozenset[str]] = {
    Kind.NEURON: frozenset({"surrogate"}),
    Kind.SURROGATE: frozenset(),
    Kind.ENCODER: frozenset({"time_steps"}),
    Kind.LOSS: frozenset(),
    Kind.LAYER: frozenset({"build"}),
    Kind.MODEL: frozenset({"build"}),
    Kind.OPTIMIZER: frozenset({"params"}),
    Kind.SCHEDULER: frozenset({"optimizer", "epochs"}),
    Kind.DATASET: frozenset({"train"}),
}

_MISSING = object()


@dataclass(frozen=True)
class Parameter:
    """One recipe-settable parameter of a factory: its type (``annotation``, without the
    range), default and declared range (``constraints``, e.g. ``(Gt(gt=1),)``)."""

    name: str
    annotation: Any
    default: Any = _MISSING
    constraints: tuple[Any, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)

    @property
    def range(self) -> str:
        """The declared range as text, e.g. ``"> 1"``; ``""`` if none."""
        return constraints.describe(self.constraints)

    def check(self, value: Any, *, at: str) -> Any:
        """``value`` coerced to the type, then checked against the range (``ValueError``)."""
        value = coerce(value, self.annotation, at=at)
        constraints.check(self.name, value, self.constraints)
        return value

    def describe(self) -> str:
        return self.name if self.required else f"{self.name}={self.default!r}"


@dataclass(frozen=True)
class Component:
    """A registered factory and where it came from."""

    kind: Kind
    name: str
    factory: Callable[..., Any]
    plugin: str
    version: str = ""

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.factory) or ""

    @property
    def summary(self) -> str:
        """First line of the factory's docstring (what ``snnkit list`` shows)."""
        return self.doc.partition("\n")[0].strip()

    def signature(self) -> inspect.Signature:
        target = self.factory
        try:
            return inspect.signature(target, eval_str=True)
        except Exception:  # noqa: BLE001 - unresolvable string hints (NameError,
            return inspect.signature(target)  # AttributeError, SyntaxError...): use the raw ones

    def parameters(self) -> dict[str, Parameter]:
        """Parameters a recipe may set: the signature minus supplied and variadic ones."""
        out: dict[str, Parameter] = {}
        for p in self.signature().parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in SUPPLIED[self.kind]:
                continue
            default = _MISSING if p.default is p.empty else p.default
            annotation, declared = constraints.split(p.annotation)
            if annotation is p.empty:
                annotation = type(default) if isinstance(default, (bool, int, float, str)) else Any
            out[p.name] = Parameter(p.name, annotation, default, declared)
        return out

    def accepts_extra(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in self.signature().parameters.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "plugin": self.plugin,
            "version": self.version,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class PluginInfo:
    """A plugin as ``snnkit plugins`` shows it."""

    name: str
    version: str
    hooks: tuple[str, ...] = ()
    status: str = "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "hooks": list(self.hooks),
            "status": self.status,
        }


def normalize_spec(spec: Any, *, at: str) -> dict[str, Any]:
    """A component spec as a mapping: ``"atan"`` -> ``{"name": "atan"}``, a mapping copied.

    The one rule for every spec (recipe sections, layers, neurons, surrogates): a non-empty
    name, or a mapping whose ``name`` is one. Anything else is a :class:`ParameterError`
    ``{at}: ...``.
    """
    if isinstance(spec, str) and spec:
        return {"name": spec}
    if isinstance(spec, Mapping):
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise ParameterError(
                f"{at}: missing 'name' — write {{name: ..., ...}} or just the name"
            )
        return dict(spec)
    shown = type(spec).__name__ if isinstance(spec, (list, tuple, set)) else repr(spec)
    raise ParameterError(
        f"{at}: expected a component name or a mapping {{name: ..., ...}}, got {shown}"
    )


@dataclass
class Registry:
    """Every registered component, by kind and name, plus the plugins that failed."""

    _components: dict[Kind, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in Kind}
    )
    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    # -- filling -----------------------------------------------------------------------------
    def add(
        self, kind: Kind | str, name: str, factory: Any, *, plugin: str, version: str = ""
    ) -> Component:
        """Register ``factory`` as ``name``; raises :class:`PluginError` on any rule broken."""
        kind = Kind.parse(kind)
        where = f"plugin '{plugin}' registers {kind} '{name}'"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            hint = re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<!^)(?=[A-Z])", "_", str(name)).lower())
            raise PluginError(f"{where}: names must be lower_snake_case, e.g. '{hint.strip('_')}'")
        if not callable(factory):
            raise PluginError(f"{where}: the factory {factory!r} is not callable")
        component = Component(kind, name, factory, plugin, version)
        try:
            component.parameters()
        except (ValueError, TypeError) as err:
            raise PluginError(f"{where}: its signature cannot be inspected ({err})") from None
        taken = self._components[kind].get(name)
        if taken is not None:
            raise PluginError(
                f"{where}, already registered by '{taken.plugin}'; skipped — "
                "register it under another name"
            )
        self._components[kind][name] = component
        return component

    def note_plugin(self, info: PluginInfo) -> None:
        self.plugins[info.name] = info

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status != "ok"]

    # -- looking up --------------------------------------------------------------------------
    def names(self, kind: Kind | str) -> list[str]:
        return sorted(self._components[Kind.parse(kind)])

    def __contains__(self, key: tuple[Kind | str, str]) -> bool:
        kind, name = key
        return name in self._components[Kind.parse(kind)]

    def __iter__(self) -> Iterator[Component]:
        return iter(self.list())

    def list(self, kind: Kind | str | None = None, pattern: str = "*") -> list[Component]:
        """Components of ``kind`` (all kinds if None) whose name matches the glob ``pattern``."""
        kinds = list(Kind) if kind is None else [Kind.parse(kind)]
        return [
            self._components[k][n]
            for k in kinds
            for n in sorted(self._components[k])
            if fnmatch.fnmatchcase(n, pattern)
        ]

    def get(self, kind: Kind | str, name: str, *, at: str | None = None) -> Component:
        """The component called ``name``; an unknown name lists close matches and all names."""
        kind = Kind.parse(kind)
        try:
            return self._components[kind][name]
        except (KeyError, TypeError):
            pass
        known = self.names(kind)
        where = f"{at}: " if at else ""
        hint = did_you_mean(str(name).lower(), known)
        msg = (
            f"{where}unknown {kind} '{name}'{hint} Known: {', '.join(known) or 'none'}"
            f" (snnkit list {kind})"
        )
        failed = [f"plugin '{p.name}' {p.status}" for p in self.failures]
        if failed:
            msg += f" (note: {'; '.join(failed)})"
        raise UnknownComponentError(msg)

    # -- checking and building ---------------------------------------------------------------
    def check(
        self, kind: Kind | str, spec: Any, *, at: str | None = None
    ) -> tuple[Component, dict[str, Any]]:
        """Resolve ``spec`` and return the component with its coerced parameters; builds nothing."""
        kind = Kind.parse(kind)
        at = at or str(kind)
        spec = normalize_spec(spec, at=at)
        component = self.get(kind, spec["name"], at=at)
        params = {k: v for k, v in spec.items() if k != "name"}
        accepted = component.parameters()
        supplied = SUPPLIED[kind] & set(params)
        if supplied:
            key = sorted(supplied)[0]
            raise ParameterError(
                f"{at}.{key}: '{key}' is supplied by snnkit; remove it from the recipe"
            )
        coerced: dict[str, Any] = {}
        for key, value in params.items():
            if key not in accepted:
                if component.accepts_extra():
                    coerced[key] = value
                    continue
                hint = did_you_mean(key, accepted)
                valid = ", ".join(p.describe() for p in accepted.values()) or "none"
                raise ParameterError(
                    f"{at}: {kind} '{component.name}' has no parameter '{key}'"
                    f"{hint} Parameters: {valid}"
                )
            try:
                coerced[key] = accepted[key].check(value, at=f"{at}.{key}")
            except ValueError as err:  # out of the declared range: as if the factory said so
                raise ParameterError(f"{at}: {kind} '{component.name}': {err}") from None
        missing = [p.name for p in accepted.values() if p.required and p.name not in coerced]
        if missing:
            raise ParameterError(
                f"{at}: {kind} '{component.name}' needs '{missing[0]}' — add "
                f"{missing[0]}: <{accepted[missing[0]].type_name}> to the recipe"
            )
        return component, coerced

    def build(self, kind: Kind | str, spec: Any, *, at: str | None = None, **supplied: Any) -> Any:
        """Check ``spec`` then call the factory with its parameters and the supplied arguments.

        A factory that raises ``ValueError`` or ``TypeError`` (a bad value it rejects) becomes a
        :class:`ParameterError`; any other exception a :class:`ComponentBuildError` naming the
        plugin, with the original exception chained.
        """
        kind = Kind.parse(kind)
        at = at or str(kind)
        component, params = self.check(kind, spec, at=at)
        sig_names = set(component.signature().parameters)
        extra = {k: v for k, v in supplied.items() if k in sig_names or component.accepts_extra()}
        try:
            return component.factory(**params, **extra)
        except SnnkitError:
            raise
        except (ValueError, TypeError) as err:
            raise ParameterError(f"{at}: {kind} '{component.name}': {one_line(err)}") from err
        except Exception as err:  # a plugin's fault, reported with provenance
            raise ComponentBuildError(
                f"{at}: building {kind} '{component.name}' (plugin '{component.plugin}') failed: "
                f"{one_line(err, typed=True)}"
            ) from err


def coerce(value: Any, annotation: Any, *, at: str) -> Any:
    """Convert ``value`` to ``annotation`` with pydantic's lax rules (``"1e-3"`` -> 0.001).

    Exact conversions only: ``"64"`` -> 64 and ``2.0`` -> 2 are accepted, ``1.5`` -> int is not.
    Annotations pydantic cannot express are passed through unchecked.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    adapter = _adapter(annotation)
    if adapter is None:
        return value
    import pydantic

    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else "" for p in first.get("loc", ()))
        raise ParameterError(
            f"{at}{loc}: expected {_type_name(annotation)}, got {value!r} ({first['msg'].lower()})"
        ) from None


_ADAPTERS: dict[Any, Any] = {}


def _adapter(annotation: Any) -> Any:
    try:
        return _ADAPTERS[annotation]
    except (KeyError, TypeError):
        pass
    import pydantic

    try:
        config = pydantic.ConfigDict(arbitrary_types_allowed=True)
        adapter = pydantic.TypeAdapter(annotation, config=config)
    except Exception:  # noqa: BLE001 - types pydantic cannot model are not coerced
        adapter = None
    with contextlib.suppress(TypeError):
        _ADAPTERS[annotation] = adapter
    return adapter


def _type_name(annotation: Any) -> str:
    if annotation is Any:
        return "any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
