"""snnkit: spiking neural networks with surrogate gradients, assembled from YAML recipes.

The public API is small on purpose; everything else lives in its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snnkit.errors import SnnkitError
from snnkit.hookspecs import hookimpl
from snnkit.plugins.registry import Kind, Registry
from snnkit.version import __version__

__all__ = [
    "Kind",
    "Registry",
    "SnnkitError",
    "__version__",
    "get_registry",
    "hookimpl",
    "load_recipe",
    "run",
]

if TYPE_CHECKING:
    from snnkit.engine.trainer import RunResult
    from snnkit.recipes.loader import Recipe


def get_registry() -> Registry:
    """The process-wide registry: built-ins plus installed plugins, built on first use."""
    from snnkit.plugins.loader import get_registry as _get

    return _get()


def load_recipe(source: Any, overrides: list[str] | None = None) -> Recipe:
    """Load and validate a recipe from a path or a mapping (see :mod:`snnkit.recipes.loader`)."""
    from snnkit.recipes.loader import load_recipe as _load

    return _load(source, overrides=overrides)


def run(recipe: Any, overrides: list[str] | None = None, **options: Any) -> RunResult:
    """Train and evaluate a recipe (path or mapping); returns the run's results.

    ``options``: ``device``, ``out``, ``resume``, ``registry``, ``reporter`` (see
    :func:`snnkit.engine.run.run`).
    """
    from snnkit.engine.run import run as _run

    return _run(recipe, overrides=overrides, **options)
