"""What a sweep optimises: metric names with a direction, read from a finished trial's run.

``--objectives test_acc:max,sops:min`` names one or more objectives, each ``NAME[:max|min]``
(without a direction: ``max`` for accuracies, ``min`` for everything else). A name is either

* a metric of the run's metrics rows (:data:`METRICS`), read from the row of the best epoch
  (the highest ``test_acc``: the epoch ``best.pt`` holds; the last epoch when no epoch beat
  the first), or
* a cost (:data:`COSTS`: ``sops``, ``macs``, ``energy_pj``), per test sample, counted by
  :mod:`snnkit.analysis` on the trial's ``best.pt`` (else ``last.pt``) over the test set.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from snnkit.errors import RecipeError

__all__ = ["COSTS", "METRICS", "Objective", "best_row", "parse_objectives", "values"]

#: Numeric metrics every epoch row of metrics.jsonl holds.
METRICS = (
    "test_acc",
    "test_loss",
    "train_acc",
    "train_loss",
    "train_seconds",
    "test_seconds",
    "samples_per_second",
    "lr",
    "epoch",
)
#: Costs counted on the trial's checkpoint, per test sample (totals key ``<name>_per_sample``).
COSTS = ("sops", "macs", "energy_pj")


@dataclass(frozen=True)
class Objective:
    """A metric or cost name and whether to maximise it."""

    name: str
    maximize: bool

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """Optuna's word for it."""
        return "maximize" if self.maximize else "minimize"

    def __str__(self) -> str:
        return f"{self.name}:{'max' if self.maximize else 'min'}"


def parse_objectives(text: str) -> list[Objective]:
    """``'test_acc:max,sops:min'`` -> objectives; unknown names and directions are refused."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise RecipeError("--objectives: name at least one metric, e.g. test_acc:max")
    out: list[Objective] = []
    for item in items:
        name, _, word = item.partition(":")
        name, word = name.strip(), word.strip().lower()
        known = METRICS + COSTS
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" — did you mean '{close[0]}'?" if close else " —"
            raise RecipeError(
                f"--objectives: '{name}' is not a metric{hint} choose from {', '.join(known)}"
            )
        if word not in ("", "max", "min", "maximize", "minimize"):
            raise RecipeError(f"--objectives: '{item}': the direction must be max or min")
        maximize = word.startswith("max") if word else name.endswith("acc")
        if any(o.name == name for o in out):
            raise RecipeError(f"--objectives: '{name}' is named twice — name it once")
        out.append(Objective(name, maximize))
    return out


def best_row(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of the best epoch (highest test accuracy; the first such epoch)."""
    if not metrics:
        raise RecipeError("the trial's run logged no epoch — nothing to optimise")
    return max(metrics, key=lambda m: m["test_acc"])


def values(
    objectives: list[Objective], metrics: list[dict[str, Any]], run_dir: Path
) -> list[float]:
    """Each objective's value for a finished run (costs counted only when asked for)."""
    row = best_row(metrics)
    totals: dict[str, Any] | None = None
    out = []
    for objective in objectives:
        if objective.name in COSTS:
            if totals is None:
                from snnkit.analysis.profile import profile_run

                totals = profile_run(run_dir).totals
            out.append(float(totals[f"{objective.name}_per_sample"]))
        else:
            out.append(float(row[objective.name]))
    return out
