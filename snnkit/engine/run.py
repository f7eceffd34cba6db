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

SIGINT/SIGTERM are handled from the first line of ``run`` (:mod:`snnkit.engine.signals`):
while the recipe, the checkpoint and the data are loaded and the experiment is assembled, a
signal stops the run at once (:class:`~snnkit.engine.trainer.Interrupted` with ``saved``
``"nothing"`` and the command that starts it again, or ``"before"`` and the resume command);
from the moment the run folder is touched, it is acted on after the first checkpoint.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from snnkit.assembly.assemble import Experiment, assemble
from snnkit.engine import run_lock, rundir
from snnkit.engine.batches import make_batches
from snnkit.engine.blame import component_error
from snnkit.engine.checkpoint import load_checkpoint, seed_everything
from snnkit.engine.distributed import World, current_world, device_for, setup, teardown
from snnkit.engine.evaluation import evaluate
from snnkit.engine.progress import Reporter, SilentReporter
from snnkit.engine.restore import restore_experiment
from snnkit.engine.signals import Stopped, stop_signals
from snnkit.engine.trainer import Interrupted, RunResult, Trainer
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
    """Validate, train and evaluate a recipe (path or mapping), or resume a run folder.

    Stopped by SIGINT/SIGTERM, it raises :class:`~snnkit.engine.trainer.Interrupted`.
    """
    with stop_signals() as stop:
        from snnkit.plugins.loader import get_registry

        registry = registry or get_registry()
        world = current_world()
        reporter = (reporter or SilentReporter()) if world.is_main else SilentReporter()
        given = list(overrides or [])
        overrides = given + ([f"train.device={device}"] if device else [])
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
            try:
                with stop.immediate():
                    checkpoint = load_checkpoint(run_dir / "last.pt")
                    recipe = load_recipe(raw, overrides)
                    # the recipe inside last.pt is the reference, not the (editable) recipe.yaml
                    check_resume_changes(load_recipe(checkpoint["recipe"]), recipe, overrides)
                    seed_everything(recipe.seed)
                    exp = _assemble(recipe, registry, world)
            except Stopped as stopped:
                raise Interrupted(stopped.signum, run_dir, saved="before") from None
            note = f"resumed from {run_dir}"
        else:
            if source is None:
                raise RecipeError(
                    "run: give a recipe file, e.g. snnkit run recipes/lif_mnist.yaml, "
                    "or --resume RUN_DIR"
                )
            try:
                with stop.immediate():
                    recipe = load_recipe(source, overrides)
                    seed_everything(recipe.seed)
                    exp = _assemble(recipe, registry, world)
            except Stopped as stopped:
                again = start_command(source, given, device=device, out=out)
                raise Interrupted(stopped.signum, None, saved="nothing", command=again) from None
            run_dir = rundir.new_run_dir(recipe, out) if world.is_main else Path(out or "")
            checkpoint, note = None, ""
        option = "--resume" if resume is not None else "--out" if out is not None else "output.dir"
        with run_lock.hold(run_dir, option) if world.is_main else nullcontext():
            if world.is_main:
                for stale in run_dir.glob(".*.tmp"):  # left by a killed run: none writes now
                    stale.unlink(missing_ok=True)
                rundir.write_run_info(run_dir, recipe, registry, note=note)
            try:
                return Trainer(exp, run_dir, reporter, world).fit(checkpoint)
            finally:
                teardown(world)


def start_command(
    source: str | Path | Mapping[str, Any],
    overrides: list[str],
    *,
    device: str | None = None,
    out: str | Path | None = None,
) -> str:
    """The shell command that starts the run ``run(source, overrides, ...)`` describes."""
    if not isinstance(source, (str, Path)):
        return "snnkit.run(...) with the same recipe"
    words = ["snnkit", "run", str(source)]
    words += [w for o in overrides for w in ("--set", o)]
    words += ["--device", device] if device else []
    words += ["--out", str(out)] if out is not None else []
    return shlex.join(words)


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
    try:
        loss, acc, rates = evaluate(exp, make_batches(exp.test_data, exp.device, exp.loading))
    except Exception as err:
        again = shlex.join(["snnkit", "eval", str(path)])
        kept = f"{path} is unchanged: evaluate it again"
        failure = component_error(err, exp, f"{path}: evaluation", rerun=again, kept=kept)
        if failure is None:
            raise
        raise failure from err
    return {
        "checkpoint": str(path),
        "epoch": state["position"]["epoch"] - 1,
        "test_loss": loss,
        "test_acc": acc,
        "firing_rates": rates,
    }
