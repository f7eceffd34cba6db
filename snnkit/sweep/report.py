"""What ``snnkit sweep show`` prints and draws: the best trials, the front, the importances.

* Best trials: single objective — the ``top`` completed trials, best first; several
  objectives — the Pareto front (trials no other completed trial beats on every objective).
* ``front.png``: several objectives — every completed trial on the first two objectives, the
  Pareto front joined and highlighted; one objective — the value of each trial in order and
  the best so far.
* ``importance.png``: per objective, the share of its variation each parameter explains
  (Optuna's PED-ANOVA evaluator: no scikit-learn needed). It needs at least two completed
  trials and a parameter that varies; otherwise it is not written and a note says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snnkit.errors import SnnkitError

__all__ = ["best_trials", "plot_front", "plot_importance", "trial_row"]


def _complete(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _names(study: Any) -> list[str]:
    names = study.user_attrs.get("objectives")
    return list(names) if names else [f"objective {i}" for i in range(len(study.directions))]


def best_trials(study: Any, top: int = 5) -> list[Any]:
    """The best completed trials (single objective) or the Pareto front (several)."""
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number)
    maximize = study.direction.name == "MAXIMIZE"
    done = sorted(_complete(study), key=lambda t: t.value, reverse=maximize)
    return done[:top]


def trial_row(study: Any, trial: Any) -> dict[str, Any]:
    """A trial as plain data: number, state, objective values, parameters, run folder."""
    names = _names(study)
    row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name.lower()}
    row.update(dict(zip(names, trial.values or [None] * len(names))))
    row["params"] = dict(trial.params)
    row["run_dir"] = trial.user_attrs.get("run_dir")
    if trial.user_attrs.get("fail_reason"):
        row["fail_reason"] = trial.user_attrs["fail_reason"]
    return row


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SnnkitError(
            "sweep show: the package 'matplotlib' is not installed — pip install "
            "'snnkit[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_front(study: Any, path: Path) -> Path:
    """The Pareto front (several objectives) or the value history (one) as a PNG."""
    plt = _pyplot()
    names, done = _names(study), _complete(study)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    if len(names) > 1:
        front = sorted(study.best_trials, key=lambda t: t.values[0])
        ax.scatter(
            [t.values[0] for t in done],
            [t.values[1] for t in done],
            s=18,
            color="0.6",
            label="trials",
        )
        ax.plot(
            [t.values[0] for t in front],
            [t.values[1] for t in front],
            "o-",
            color="C3",
            label="Pareto front",
        )
        for t in front:
            ax.annotate(
                str(t.number),
                (t.values[0], t.values[1]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        maximize = study.direction.name == "MAXIMIZE"
        xs = [t.number for t in done]
        ys = [t.value for t in done]
        best, running = [], None
        for y in ys:
            running = y if running is None else (max if maximize else min)(running, y)
            best.append(running)
        ax.scatter(xs, ys, s=18, color="0.5", label="trial")
        ax.step(xs, best, where="post", color="C3", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(names[0])
    ax.set_title(f"study {study.study_name}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _signed(index: int, sign: float) -> Callable[[Any], float]:
    """The target ``sign · values[index]`` of a trial."""

    def target(trial: Any) -> float:
        return sign * float(trial.values[index])

    return target


def plot_importance(study: Any, path: Path) -> Path | None:
    """Parameter importances per objective as horizontal bars; None when not computable."""
    import optuna

    names, done = _names(study), _complete(study)
    varying = {k for t in done for k in t.params if len({str(u.params.get(k)) for u in done}) > 1}
    if len(done) < 2 or not varying:
        return None
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    scores = []
    for i, direction in enumerate(study.directions):
        sign = -1.0 if direction.name == "MAXIMIZE" else 1.0  # PED-ANOVA looks for low values
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores.append(
                    optuna.importance.get_param_importances(
                        study, evaluator=evaluator, target=_signed(i, sign)
                    )
                )
        except (ValueError, RuntimeError):
            return None
    plt = _pyplot()
    params = sorted({k for s in scores for k in s})
    fig, axes = plt.subplots(
        1, len(names), figsize=(5 * len(names), 0.5 * len(params) + 1.5), dpi=120, squeeze=False
    )
    for ax, name, score in zip(axes[0], names, scores):
        ax.barh(params, [score.get(p, 0.0) for p in params], color="C0")
        ax.set_xlabel("importance")
        ax.set_title(name)
    fig.suptitle(f"study {study.study_name}: parameter importance")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
