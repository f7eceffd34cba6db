"""The engine's entry points: :func:`run` (train a recipe, or resume a run folder) and
:func:`evaluate_checkpoint`.

``run`` validates the recipe, seeds the global RNGs from ``seed`` before anything is built,
assembles the experiment (the fast input rewrite only for single-process runs: a distributed
run keeps the dense path), joins the process group when launched by torchrun (one GPU per
rank), writes the run folder's ``recipe.yaml`` / ``plugins.json`` and trains it with
:class:`~snnkit.engine.trainer.Trainer`.

On resume the run folder's ``recipe.yaml`` is read again; overrides may change ``train``,
``output``, ``scheduler`` and the optimizer's hyperparameters (applied to the restored
optimizer), and ``dataset.root`` / ``dataset.download``; changing what the weights or the
data mean (seed, time_steps, dataset, encoder, model, loss, optimizer name) relative to the
recipe saved in ``last.pt`` is refused, whether by ``--set`` or by an edited ``recipe.yaml``.
A run holds its folder's lock (:mod:`snnkit.engine.run_lock`) while it writes there: a second
process on the same folder is refused, a lock left by a dead process is taken over.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from snnkit.assembly.assemble import Experiment, assemble
from snnkit.engine import run_lock, rundir
from snnkit.engine.batches import make_batches
from snnkit.engine.checkpoint import load_checkpoint, seed_everything
from snnkit.engine.distributed import World, current_world, device_for, setup, teardown
from snnkit.engine.evaluation import evaluate
from snnkit.engine.progress import Reporter, SilentReporter
from snnkit.engine.restore import restore_experiment
from snnkit.engine.trainer import RunResult, Trainer
from snnkit.errors import RecipeError
from snnkit.plugins.registry import Registry
from snnkit.recipes.loader import Recipe, check_resume_changes, load_recipe


def run(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: list[str] | None = None,
    *,
    device: str | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    registry: Registry | None = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Validate, train and evaluate a recipe (path or mapping), or resume a run folder."""
    from snnkit.plugins.loader import get_registry

    registry = registry or get_registry()
    world = current_world()
    reporter = (reporter or SilentReporter()) if world.is_main else SilentReporter()
    overrides = list(overrides or []) + ([f"train.device={device}"] if device else [])
    if resume is not None:
        if source is not None or out is not None:
            raise RecipeError(
                f"--resume {resume}: give either a recipe or --resume RUN_DIR, and "
                "no --out (a resumed run stays in its folder)"
            )
        run_dir = Path(resume)
        raw = rundir.read_run_recipe(run_dir)
        run_lock.ensure_free(run_dir, "--resume")
        rundir.check_writable(run_dir, "--resume")
        checkpoint = load_checkpoint(run_dir / "last.pt")
        recipe = load_recipe(raw, overrides)
        # the recipe inside last.pt is the reference, not the (editable) recipe.yaml
        check_resume_changes(load_recipe(checkpoint["recipe"]), recipe, overrides)
        seed_everything(recipe.seed)
        exp = _assemble(recipe, registry, world)
        note = f"resumed from {run_dir}"
    else:
        if source is None:
            raise RecipeError(
                "run: give a recipe file, e.g. snnkit run recipes/lif_mnist.yaml, "
                "or --resume RUN_DIR"
            )
        recipe = load_recipe(source, overrides)
        seed_everything(recipe.seed)
        exp = _assemble(recipe, registry, world)
        run_dir = rundir.new_run_dir(recipe, out) if world.is_main else Path(out or "")
        checkpoint, note = None, ""
    option = "--resume" if resume is not None else "--out" if out is not None else "output.dir"
    with run_lock.hold(run_dir, option) if world.is_main else nullcontext():
        if world.is_main:
            rundir.write_run_info(run_dir, recipe, registry, note=note)
        try:
            return Trainer(exp, run_dir, reporter, world).fit(checkpoint)
        finally:
            teardown(world)


def _assemble(recipe: Recipe, registry: Registry, world: World) -> Experiment:
    """Assemble, then join the process group when launched by torchrun (one GPU per rank)."""
    exp = assemble(recipe, registry, fast_input=not world.distributed)
    if world.distributed:
        exp.device = device_for(world, exp.device)
        exp.model.to(exp.device)
        setup(world, exp.device, recipe.train.batch_size)
        torch.manual_seed(recipe.seed + 7919 * world.rank)  # own encoder draws on each rank
    return exp


def evaluate_checkpoint(
    path: str | Path, *, device: str | None = None, registry: Registry | None = None
) -> dict[str, Any]:
    """Test-set loss and accuracy of a checkpoint (a .pt file, or a run folder's last.pt, else
    its best.pt), through the dense forward path."""
    exp, state = restore_experiment(path, prefer="last", device=device, registry=registry)
    seed_everything(exp.recipe.seed)
    loss, acc, rates = evaluate(exp, make_batches(exp.test_data, exp.device, exp.loading))
    return {
        "checkpoint": str(path),
        "epoch": state["position"]["epoch"] - 1,
        "test_loss": loss,
        "test_acc": acc,
        "firing_rates": rates,
    }
