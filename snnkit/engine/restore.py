"""Rebuild a trained Experiment from a checkpoint: the one way a saved run is brought back.

``path`` is a ``.pt`` file or a run folder; in a folder ``prefer="best"`` takes ``best.pt``
and else ``last.pt``, ``prefer="last"`` the other way round. The experiment is assembled from
the checkpoint's own recipe (global RNGs seeded from its ``seed`` first, on ``device`` if
given) and the saved weights are loaded into its model; the optimizer and the run's position
are not restored (resuming a run is :meth:`snnkit.engine.state.TrainState.from_checkpoint`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch import nn

from snnkit.assembly.assemble import Experiment, assemble, make_builder
from snnkit.engine.checkpoint import load_checkpoint, seed_everything
from snnkit.errors import CheckpointError, one_line
from snnkit.plugins.registry import Kind, Registry
from snnkit.recipes.loader import Recipe, load_recipe

Prefer = Literal["best", "last"]


def checkpoint_file(path: str | Path, prefer: Prefer = "best") -> Path:
    """The checkpoint ``path`` names: itself, or the preferred one of a run folder's two.

    A folder holding neither is returned as is (loading it says what is missing).
    """
    path = Path(path)
    if prefer not in ("best", "last"):
        raise ValueError(f"prefer must be 'best' or 'last', got {prefer!r}")
    if path.is_dir():
        names = ("best.pt", "last.pt") if prefer == "best" else ("last.pt", "best.pt")
        for name in names:
            if (path / name).exists():
                return path / name
    return path


def restore_experiment(
    path: str | Path,
    *,
    prefer: Prefer = "best",
    device: str | None = None,
    registry: Registry | None = None,
) -> tuple[Experiment, dict[str, Any]]:
    """``(experiment with the saved weights, the checkpoint dict)`` of a checkpoint or run folder.

    Raises :class:`~snnkit.errors.CheckpointError` for a missing, unsafe or foreign file and
    for weights that do not fit the checkpoint's own recipe.
    """
    from snnkit.plugins.loader import get_registry

    state = load_checkpoint(checkpoint_file(path, prefer))
    recipe = load_recipe(state["recipe"], [f"train.device={device}"] if device else None)
    seed_everything(recipe.seed)
    exp = assemble(recipe, registry or get_registry())
    _load_weights(exp.model, state, path)
    return exp, state


def restore_model(
    path: str | Path, *, prefer: Prefer = "best", registry: Registry | None = None
) -> tuple[nn.Module, Recipe, dict[str, Any]]:
    """``(model with the saved weights, its recipe, the checkpoint dict)``, on the CPU.

    Builds the model alone (no dataset, encoder or optimizer): for export and inspection.
    """
    from snnkit.plugins.loader import get_registry

    state = load_checkpoint(checkpoint_file(path, prefer))
    recipe = load_recipe(state["recipe"])
    registry = registry or get_registry()
    model = registry.build(Kind.MODEL, recipe.model, at="model", build=make_builder(registry))
    _load_weights(model, state, path)
    return model, recipe, state


def _load_weights(model: nn.Module, state: dict[str, Any], path: str | Path) -> None:
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{path}: the weights do not fit the checkpoint's own recipe "
            f"({one_line(err, 200, first_line=True)}) — the file is damaged "
            "or was edited"
        ) from None
