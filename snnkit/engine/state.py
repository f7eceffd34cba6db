"""Where a training run stands, and the checkpoint dict that saves and restores it.

:class:`TrainState` is the position (next epoch and batch, best accuracy so far, steps taken),
the current epoch's :class:`Totals` and the data-order generator. :meth:`TrainState.to_checkpoint`
adds the experiment's weights, optimizer, scheduler and every global RNG state; the dict keys
(the on-disk format, ``format_version`` 1) are::

    recipe, model, optimizer, scheduler (or None), rng, order_state, order_epoch_start,
    position: {epoch, batch, best_acc, best_epoch, global_step,
               sums: {loss, correct, seen, seconds, parts}}

:meth:`TrainState.from_checkpoint` loads such a dict into an assembled experiment and returns
the state; the optimizer hyperparameters that the resume overrides changed (e.g.
``optimizer.lr``) then win over the restored ones (:func:`apply_optimizer_changes`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from snnkit.assembly.assemble import Experiment
from snnkit.engine.checkpoint import capture_rng, restore_rng
from snnkit.errors import CheckpointError, one_line


@dataclass
class Totals:
    """Running sums over the current epoch's batches (``loss`` is summed per sample)."""

    loss: float = 0.0
    correct: float = 0.0
    seen: float = 0.0
    seconds: float = 0.0
    #: a composed loss's parts, each summed per sample (``loss/<part>``)
    parts: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The on-disk ``position.sums`` mapping (``parts`` only when there are some)."""
        sums = asdict(self)
        if not self.parts:
            del sums["parts"]
        return sums

    @classmethod
    def from_dict(cls, sums: dict[str, Any]) -> Totals:
        return cls(
            float(sums["loss"]),
            float(sums["correct"]),
            float(sums["seen"]),
            float(sums["seconds"]),
            {str(k): float(v) for k, v in (sums.get("parts") or {}).items()},
        )

    def add_parts(self, parts: dict[str, Any]) -> None:
        """Move device sums of loss parts into :attr:`parts` (one read each) and clear them."""
        for name, value in parts.items():
            self.parts[name] = self.parts.get(name, 0.0) + float(value)
        parts.clear()


@dataclass
class TrainState:
    """The next epoch/batch to run, the best test accuracy so far, and the data order.

    ``order`` draws each epoch's permutation; ``order_epoch_start`` is its state when the
    current epoch began, so an epoch resumed mid-way redraws the same permutation.
    """

    epoch: int = 1
    batch: int = 0
    best_acc: float = -1.0
    best_epoch: int = 0
    global_step: int = 0
    totals: Totals = field(default_factory=Totals)
    order: torch.Generator = field(default_factory=torch.Generator)
    order_epoch_start: torch.Tensor = field(default_factory=lambda: torch.Generator().get_state())

    @classmethod
    def start(cls, seed: int) -> TrainState:
        """The state before the first step of a run seeded with ``seed``."""
        order = torch.Generator().manual_seed(seed)
        return cls(order=order, order_epoch_start=order.get_state())

    def describe(self) -> str:
        """What a checkpoint of this state holds, in words (for error messages)."""
        done = self.epoch - 1
        if self.batch == 0:
            return f"the state after epoch {done}" if done else "the initial state"
        return f"the state after batch {self.batch} of epoch {self.epoch}"

    def to_checkpoint(self, exp: Experiment) -> dict[str, Any]:
        """This state plus the experiment's weights and optimizer and the RNGs, as saved."""
        return {
            "recipe": exp.recipe.to_dict(),
            "model": exp.model.state_dict(),
            "optimizer": exp.optimizer.state_dict(),
            "scheduler": exp.scheduler.state_dict() if exp.scheduler is not None else None,
            "position": {
                "epoch": self.epoch,
                "batch": self.batch,
                "best_acc": self.best_acc,
                "best_epoch": self.best_epoch,
                "global_step": self.global_step,
                "sums": self.totals.to_dict(),
            },
            "rng": capture_rng(),
            "order_state": self.order.get_state(),
            "order_epoch_start": self.order_epoch_start,
        }

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], exp: Experiment, where: Path) -> TrainState:
        """Load ``state`` into ``exp`` (weights, optimizer, scheduler, RNGs); return the position.

        A checkpoint that does not fit the experiment is a CheckpointError naming ``where``.
        """
        try:
            exp.model.load_state_dict(state["model"])
            fresh = [
                {k: v for k, v in g.items() if k != "params"} for g in exp.optimizer.param_groups
            ]
            exp.optimizer.load_state_dict(state["optimizer"])
            if exp.scheduler is not None and state.get("scheduler") is not None:
                exp.scheduler.load_state_dict(state["scheduler"])
            restore_rng(state["rng"])
            order = torch.Generator()
            order.set_state(state["order_state"])
            p = state["position"]
            restored = cls(
                p["epoch"],
                p["batch"],
                p["best_acc"],
                p["best_epoch"],
                p["global_step"],
                Totals.from_dict(p["sums"]),
                order,
                state["order_epoch_start"],
            )
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            raise CheckpointError(
                f"{where}: does not fit the run's recipe.yaml "
                f"({one_line(err, 200, first_line=True)}) — resume with the recipe the run "
                "started with, or start a new run"
            ) from None
        apply_optimizer_changes(exp, state.get("recipe", {}).get("optimizer", {}), fresh)
        return restored


def apply_optimizer_changes(
    exp: Experiment, saved: dict[str, Any], fresh: list[dict[str, Any]]
) -> None:
    """Hyperparameters the resume overrides changed win over the restored optimizer's.

    ``saved`` is the optimizer section the checkpoint was written with, ``fresh`` the param
    groups' settings as the current recipe built them (before the restore). A changed ``lr``
    also becomes the groups' ``initial_lr`` and the scheduler's base learning rate.
    """
    changed = {k for k, v in exp.recipe.optimizer.items() if saved.get(k, v) != v}
    sched = exp.scheduler
    for i, group in enumerate(exp.optimizer.param_groups):
        for key in changed & set(group):
            group[key] = fresh[i][key]
        if "lr" in changed:
            group["initial_lr"] = fresh[i]["lr"]
            if sched is not None and hasattr(sched, "base_lrs"):
                sched.base_lrs[i] = fresh[i]["lr"]
