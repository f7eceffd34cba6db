"""Declared parameter ranges: written once, in a factory's signature, checked everywhere.

A parameter declares its range in its annotation, with the bounds of ``annotated_types``
(``Gt``, ``Ge``, ``Lt``, ``Le``; pydantic's ``Field(gt=...)`` carries the same objects) and two
markers of this module::

    tau: Annotated[float, Gt(1), Why("the charge equation divides by tau")] = 2.0
    v_rest: Annotated[float, FINITE] = 0.0

- :class:`Why` says why the range exists; it is shown in the error.
- :data:`FINITE` refuses inf and NaN.

One mechanism serves three readers: the registry checks recipe values against the declaration
(:func:`check`), ``snnkit show`` prints it (:func:`describe`: ``float > 1``), and constructors
called from Python check their arguments with :func:`check_arguments` (plain functions with
the :func:`checked` decorator). Every violation reads
``NAME must be OP BOUND (WHY), got VALUE`` (a ``ValueError``); NaN fails every bound.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from annotated_types import Ge, Gt, Le, Lt

__all__ = ["FINITE", "Finite", "Why", "check", "check_arguments", "checked", "describe", "split"]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Why:
    """The reason for a parameter's range, e.g. ``Why("the charge equation divides by tau")``."""

    text: str


@dataclass(frozen=True)
class Finite:
    """The value must be a finite number (not inf, not NaN); ``None`` passes where allowed."""


FINITE = Finite()

#: (bound class, its attribute, the operator as written, the test the value must pass)
_BOUNDS: tuple[tuple[type, str, str, Callable[[Any, Any], bool]], ...] = (
    (Gt, "gt", ">", operator.gt),
    (Ge, "ge", ">=", operator.ge),
    (Lt, "lt", "<", operator.lt),
    (Le, "le", "<=", operator.le),
)


def split(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(base type, constraints)`` of an annotation: ``Annotated[float, Gt(1)]`` ->
    ``(float, (Gt(gt=1),))``; a plain annotation has no constraints. The constraints of a
    pydantic ``FieldInfo`` in the metadata are taken out of it."""
    if typing.get_origin(annotation) is not Annotated:
        return annotation, ()
    base, *metadata = typing.get_args(annotation)
    flat: list[Any] = []
    for item in metadata:
        inner = getattr(item, "metadata", None)  # pydantic.Field(gt=0) -> FieldInfo([Gt(0)])
        flat.extend(inner if isinstance(inner, list) else [item])
    return base, tuple(flat)


def describe(constraints: tuple[Any, ...]) -> str:
    """The declared range as ``snnkit show`` prints it after the type: ``"> 1"``,
    ``">= 0 (finite)"``; ``""`` when nothing is declared."""
    parts = [
        f"{op} {getattr(c, attr)}"
        for c in constraints
        for cls, attr, op, _ in _BOUNDS
        if isinstance(c, cls)
    ]
    if any(isinstance(c, Finite) for c in constraints):
        parts.append("(finite)")
    return " ".join(parts)


def check(name: str, value: Any, constraints: tuple[Any, ...]) -> None:
    """Raise ``ValueError`` ``NAME must be > 1 (WHY), got VALUE`` if ``value`` breaks one of
    ``constraints``. ``None`` and values that are not numbers are left to the type check."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    why = next((f" ({c.text})" for c in constraints if isinstance(c, Why)), "")
    if any(isinstance(c, Finite) for c in constraints) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{why}, got {value!r}")
    for item in constraints:
        for cls, attr, op, passes in _BOUNDS:
            bound = getattr(item, attr, None)
            if isinstance(item, cls) and not passes(value, bound):  # NaN fails every test
                raise ValueError(f"{name} must be {op} {bound}{why}, got {value!r}")


def check_arguments(function: Callable[..., Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (arguments of ``function`` by name) converted to their declared ``float`` or
    ``bool`` type and checked against the declared ranges, for constructors called directly.

    Names ``function`` does not declare pass unchanged.
    """
    declared = _declared(function)
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in declared:
            base, constraints = declared[name]
            value = _convert(value, base)
            check(name, value, constraints)
        out[name] = value
    return out


_DECLARED: dict[Any, dict[str, tuple[Any, tuple[Any, ...]]]] = {}


def _declared(function: Callable[..., Any]) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """``{name: (base type, constraints)}`` from ``function``'s signature, cached."""
    try:
        return _DECLARED[function]
    except KeyError:
        pass
    try:
        signature = inspect.signature(function, eval_str=True)
    except Exception:  # noqa: BLE001 - unresolvable hints: nothing is declared
        signature = inspect.signature(function)
    declared = {p.name: split(p.annotation) for p in signature.parameters.values()}
    _DECLARED[function] = declared
    return declared


def _convert(value: Any, base: Any) -> Any:
    """``float(value)`` for a ``float`` (or ``float | None``) parameter, ``bool(value)`` for a
    ``bool`` one; anything else (and None) unchanged."""
    if value is None or base is Any:
        return value
    union = typing.get_origin(base) in (typing.Union, types.UnionType)
    options = typing.get_args(base) if union else (base,)
    if float in options:
        return float(value)
    if options == (bool,):
        return bool(value)
    return value


def checked(function: _F) -> _F:
    """``function`` checking its declared ranges on every call (``ValueError`` as in
    :func:`check`): how a factory that is a plain function validates direct calls. Its
    signature, name and docstring stay those of ``function`` (the registry reads them)."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        check_arguments(function, bound.arguments)
        return function(*args, **kwargs)

    return typing.cast(_F, call)
