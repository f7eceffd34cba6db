"""Run a sweep: Optuna trials that are ordinary snnkit runs, one run folder each.

Trial ``n`` of study ``S`` trains the recipe with its sampled values as ``--set`` overrides
into ``<output.dir>/S/trial-<n>`` (metrics, checkpoints and ``--resume`` as for any run). Its
user attributes hold ``run_dir``, and for a failed trial ``fail_reason`` (one line).

* ``trials`` is the number of trials the study should hold: a study run again (after Ctrl-C,
  or on another machine) continues up to it. Every process counts the trials the storage
  holds before starting one, so several workers share the work; workers that start at the
  same instant may overshoot by at most one trial each.
* A trial stopped by SIGINT/SIGTERM keeps its resumable run folder and is recorded as failed
  with ``interrupted: true``; the next sweep of the study re-runs it first with the same
  values, resuming that folder (the new trial's ``resumes`` names the old one), and it does
  not count towards ``trials``.
* A trial that raises (a NaN loss -> TrainingError, a plugin's exception) is recorded as
  failed with its one-line reason; the sweep goes on.
* Pruning (single objective only): after every epoch the objective's metric, when the epoch
  row holds it (e.g. ``test_acc``), is reported to Optuna; a trial the pruner stops ends
  after that epoch as PRUNED (its run folder is kept). Costs are not per epoch: no pruning.
* Storage: ``sqlite:///<output.dir>/S/study.db`` unless a SQLAlchemy URL is given; it is
  connected to before anything runs (PostgreSQL and MySQL with a connect timeout), so an
  unreachable database is a one-line error, not a hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnkit.engine.progress import Reporter, SilentReporter
from snnkit.errors import RecipeError, SnnkitError
from snnkit.sweep.objectives import METRICS, Objective, values
from snnkit.sweep.space import Dimension

__all__ = [
    "CONNECT_TIMEOUT_S",
    "Sweep",
    "SweepInterrupted",
    "TrialReporter",
    "open_storage",
    "open_study",
    "run_sweep",
    "safe_url",
]

#: Seconds a database server may take to accept a connection.
CONNECT_TIMEOUT_S = 10
STUDY_DB = "study.db"


class SweepInterrupted(KeyboardInterrupt):
    """A trial's run stopped on a signal (its checkpoint saved): the sweep stops too."""

    def __init__(self, exit_code: int, run_dir: Path) -> None:
        super().__init__(f"interrupted: {run_dir}")
        self.exit_code, self.run_dir = exit_code, run_dir


@dataclass
class Sweep:
    """What to sweep: a recipe file, its overrides, the space, the objectives and the study."""

    recipe: Path
    space: list[Dimension]
    objectives: list[Objective]
    trials: int
    study: str
    study_dir: Path
    storage: str
    overrides: list[str] = field(default_factory=list)
    pruner: str = "median"
    device: str | None = None
    space_file: Path | None = None


class TrialReporter(SilentReporter):
    """Reports each epoch's ``metric`` to an Optuna trial and prunes when the pruner says so."""

    def __init__(self, trial: Any, metric: str | None, inner: Reporter | None = None) -> None:
        self.trial, self.metric, self.inner = trial, metric, inner or SilentReporter()

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        self.inner.epoch_started(epoch, epochs, batches)

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None:
        self.inner.batch_done(done, loss, acc, samples_per_s)

    def message(self, text: str) -> None:
        self.inner.message(text)

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        import optuna

        self.inner.epoch_done(metrics)
        if self.metric is None or self.metric not in metrics:
            return
        epoch = int(metrics["epoch"])
        self.trial.report(float(metrics[self.metric]), epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_after_epoch", epoch)
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")


def safe_url(url: str) -> str:
    """The URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages
        return url


def open_storage(url: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """An Optuna RDB storage for ``url``, connected; any failure is one line (RecipeError)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise RecipeError(
            f"--storage {url!r}: not a database URL — e.g. sqlite:///study.db or "
            "postgresql://user:password@host/db"
        ) from None
    backend = parsed.get_backend_name()
    given = url
    if parsed.drivername == "postgresql":  # SQLAlchemy >= 2.1 means psycopg 3 by that
        url = _postgres_driver(parsed)
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise RecipeError(
                    f"--storage {url}: cannot create the folder for the SQLite "
                    f"file ({err.strerror or err})"
                ) from None
        kwargs = {"connect_args": {"timeout": 30}}
    elif backend in ("postgresql", "mysql") and "connect_timeout" not in parsed.query:
        kwargs = {"connect_args": {"connect_timeout": int(timeout)}}
    try:
        return _connect(url, kwargs)
    except ImportError as err:
        extra = " (pip install 'snnkit[postgres]')" if backend == "postgresql" else ""
        raise RecipeError(
            f"--storage {safe_url(given)}: the database driver is not installed "
            f"({_first_line(err)}){extra}"
        ) from None
    except Exception as err:  # noqa: BLE001 - sqlalchemy/driver errors of every kind
        raise RecipeError(
            f"--storage {safe_url(given)}: cannot use the database "
            f"({_first_line(err)}) — check the URL and that the server is up "
            "and reachable"
        ) from None


def _connect(url: str, engine_kwargs: dict[str, Any], attempts: int = 5) -> Any:
    """RDBStorage(url); workers that create the tables at one instant collide (a duplicate
    key): the loser waits a moment and connects again to the tables the winner made."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _postgres_driver(parsed: Any) -> str:
    """The URL with the installed PostgreSQL driver: psycopg (3) if present, else psycopg2."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def open_study(
    storage: Any, name: str, objectives: list[Objective] | None = None, pruner: str = "median"
) -> Any:
    """Create the study (or load it if it exists); ``objectives`` None: load only."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if objectives is None:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
            raise RecipeError(
                f"study '{name}' is not in this storage — it holds: "
                f"{', '.join(names) or 'no studies'}"
            ) from None
    if pruner not in ("median", "none"):
        raise RecipeError(f"--pruner {pruner!r}: use median or none")
    chosen = (
        optuna.pruners.MedianPruner()
        if pruner == "median" and len(objectives) == 1
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        load_if_exists=True,
        directions=[o.direction for o in objectives],
        pruner=chosen,
    )
    if [d.name.lower() for d in study.directions] != [o.direction for o in objectives]:
        raise RecipeError(
            f"study '{name}' exists with {len(study.directions)} objective(s) "
            f"in other directions — use --study NEW_NAME, or the same "
            "--objectives as before"
        )
    if "objectives" not in study.user_attrs:
        study.set_user_attr("objectives", [o.name for o in objectives])
    return study


def run_sweep(
    sweep: Sweep,
    storage: Any = None,
    on_trial: Callable[[Any], None] | None = None,
    reporter: Reporter | None = None,
) -> Any:
    """Run trials until the study holds ``sweep.trials`` of them; return the study."""
    import optuna

    from snnkit.engine.run import run as run_recipe
    from snnkit.engine.trainer import Interrupted

    storage = storage if storage is not None else open_storage(sweep.storage)
    study = open_study(storage, sweep.study, sweep.objectives, sweep.pruner)
    metric = sweep.objectives[0].name if len(sweep.objectives) == 1 else None
    metric = metric if metric in METRICS else None
    device = [f"train.device={sweep.device}"] if sweep.device else []

    def objective(trial: Any) -> Any:
        picked = {d.path: d.suggest(trial) for d in sweep.space}
        resumes = trial.user_attrs.get("resumes")
        run_dir = sweep.study_dir / f"trial-{trial.number if resumes is None else resumes}"
        trial.set_user_attr("run_dir", str(run_dir))
        tracker = TrialReporter(trial, metric, reporter)
        try:
            if resumes is not None and (run_dir / "last.pt").exists():
                result = run_recipe(resume=run_dir, overrides=device, reporter=tracker)
            else:
                sets = sweep.overrides + [d.override(picked[d.path]) for d in sweep.space]
                result = run_recipe(sweep.recipe, sets + device, out=run_dir, reporter=tracker)
            found = values(sweep.objectives, result.metrics, run_dir)
        except optuna.TrialPruned:
            raise
        except Interrupted as stop:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr(
                "fail_reason",
                f"stopped by signal {stop.exit_code - 128}; "
                "the next sweep of this study resumes it",
            )
            raise SweepInterrupted(stop.exit_code, run_dir) from None
        except Exception as err:
            trial.set_user_attr("fail_reason", _first_line(err))
            raise
        return found[0] if len(found) == 1 else found

    callbacks = [lambda _study, frozen: on_trial(frozen)] if on_trial else []
    _enqueue_interrupted(study)
    while _remaining(study, sweep.trials) > 0:
        study.optimize(
            objective, n_trials=1, catch=(Exception,), callbacks=callbacks, gc_after_trial=False
        )
    return study


def _remaining(study: Any, target: int) -> int:
    """Trials still to start: interrupted ones are re-run and do not count."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counted = [
        t for t in trials if not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted"))
    ]
    waiting = [t for t in counted if t.state == TrialState.WAITING]
    return target - len(counted) + len(waiting)


def _enqueue_interrupted(study: Any) -> None:
    """Queue a re-run (same values, resuming its folder) of each interrupted trial once."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if (
            t.state == TrialState.FAIL
            and t.user_attrs.get("interrupted")
            and t.number not in retried
        ):
            folder = t.user_attrs.get("resumes", t.number)  # a re-run interrupted again
            study.enqueue_trial(t.params, user_attrs={"resumes": folder, "retry_of": t.number})


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    line = text.splitlines()[0][:300] if text else ""
    name = type(err).__name__
    return line if isinstance(err, SnnkitError) else f"{name}: {line}" if line else name
