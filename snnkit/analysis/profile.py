"""Count a run's costs: rebuild its model from a checkpoint and run the test set with hooks.

:func:`profile_experiment` counts any assembled :class:`~snnkit.assembly.assemble.Experiment`
on its test set (in eval mode, without gradients, through the plain encoder + time loop; the
global RNGs seeded from the recipe's seed first, so a Poisson encoder draws the same spikes on
every call). :func:`profile_run` does that for a run folder's ``best.pt`` (else ``last.pt``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from snnkit.assembly.assemble import Experiment, on_device
from snnkit.costs.counting import CostCounter, CostReport
from snnkit.costs.energy import EnergyModel
from snnkit.engine.checkpoint import seed_everything
from snnkit.engine.evaluation import layer_types
from snnkit.engine.restore import checkpoint_file, restore_experiment
from snnkit.errors import CheckpointError, SnnkitError

__all__ = ["checkpoint_of", "layer_types", "profile_experiment", "profile_run"]


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


@torch.no_grad()
def profile_experiment(
    exp: Experiment,
    batches: int | None = None,
    *,
    fold_bn: bool | None = None,
    energy: EnergyModel | None = None,
) -> CostReport:
    """Counts over the test set (or its first ``batches`` evaluation batches).

    ``fold_bn`` and ``energy`` default to the recipe's ``costs.fold_bn`` and
    ``costs.energy``."""
    if batches is not None and batches < 1:
        raise SnnkitError(
            f"--batches {batches}: must be at least 1 — or leave it out to count the whole test set"
        )
    xs, ys = on_device(exp.test_data, exp.device)
    bs = exp.recipe.train.eval_batch_size or exp.recipe.train.batch_size
    seed_everything(exp.recipe.seed)
    exp.model.eval()
    costs = exp.recipe.costs
    if fold_bn is None:
        fold_bn = costs.fold_bn
    if energy is None:
        energy = EnergyModel(ac_pj=costs.energy.ac_pj, mac_pj=costs.energy.mac_pj)
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
    fold_bn: bool | None = None,
    energy: EnergyModel | None = None,
    device: str | None = None,
) -> CostReport:
    """Counts of a run folder's best checkpoint (else its last) over the test set; the
    run's recipe's ``costs`` settings unless ``fold_bn``/``energy`` are given."""
    exp, _ = restore_experiment(checkpoint_of(run_dir), device=device)
    return profile_experiment(exp, batches, fold_bn=fold_bn, energy=energy)
