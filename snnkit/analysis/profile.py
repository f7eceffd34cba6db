"""Count a run's costs: rebuild its model from a checkpoint and run the test set with hooks.

:func:`profile_experiment` counts any assembled :class:`~snnkit.assembly.assemble.Experiment`
on its test set (in eval mode, without gradients, through the plain encoder + time loop; the
global RNGs seeded from the recipe's seed first, so a Poisson encoder draws the same spikes on
every call). :func:`profile_run` does that for a run folder's ``best.pt`` (else ``last.pt``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from snnkit.analysis.counting import CostCounter, CostReport
from snnkit.analysis.energy import DEFAULT_ENERGY, EnergyModel
from snnkit.assembly.assemble import Experiment, on_device
from snnkit.engine.checkpoint import seed_everything
from snnkit.engine.restore import checkpoint_file, restore_experiment
from snnkit.errors import CheckpointError, SnnkitError

__all__ = ["checkpoint_of", "profile_experiment", "profile_run"]


def checkpoint_of(run_dir: str | Path) -> Path:
    """The checkpoint a run folder is profiled from: ``best.pt``, else ``last.pt``; a ``.pt``
    file is taken as is."""
    path = checkpoint_file(run_dir, "best")
    if path.is_dir():
        raise CheckpointError(
            f"{path}: no best.pt or last.pt in this folder — pass a run folder "
            "written by snnkit run"
        )
    return path


def layer_types(exp: Experiment) -> dict[str, str]:
    """Module name -> the recipe's name for it (``'1' -> 'linear'``) for ``model.layers``."""
    layers = exp.recipe.model.get("layers")
    if not isinstance(layers, list) or len(layers) != len(exp.model._modules):
        return {}
    names = {}
    for i, spec in enumerate(layers):
        name = (
            spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
        )
        if isinstance(name, str):
            names[str(i)] = name
    return names


@torch.no_grad()
def profile_experiment(
    exp: Experiment,
    batches: int | None = None,
    *,
    fold_bn: bool = False,
    energy: EnergyModel = DEFAULT_ENERGY,
) -> CostReport:
    """Counts over the test set (or its first ``batches`` evaluation batches)."""
    if batches is not None and batches < 1:
        raise SnnkitError(
            f"--batches {batches}: must be at least 1 — or leave it out to count the whole test set"
        )
    xs, ys = on_device(exp.test_data, exp.device)
    bs = exp.recipe.train.eval_batch_size or exp.recipe.train.batch_size
    seed_everything(exp.recipe.seed)
    exp.model.eval()
    counter = CostCounter(exp.model, fold_bn=fold_bn, energy=energy, types=layer_types(exp))
    try:
        with counter:
            for b, i in enumerate(range(0, len(ys), bs)):
                if batches is not None and b >= batches:
                    break
                x = xs[i : i + bs]
                exp.forward_module(x)
                counter.add_samples(len(x))
    finally:
        exp.model.train()
    return counter.report()


def profile_run(
    run_dir: str | Path,
    batches: int | None = None,
    *,
    fold_bn: bool = False,
    energy: EnergyModel = DEFAULT_ENERGY,
    device: str | None = None,
) -> CostReport:
    """Counts of a run folder's best checkpoint (else its last) over the test set."""
    exp, _ = restore_experiment(checkpoint_of(run_dir), device=device)
    return profile_experiment(exp, batches, fold_bn=fold_bn, energy=energy)
