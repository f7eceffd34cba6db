"""``snnkit sweep``: hyperparameter search over a recipe on Optuna, and ``sweep show``.

``snnkit sweep RECIPE --space SPACE.yaml --trials N [--set k=v]... [--storage URL] [--jobs J]
[--objectives test_acc:max,sops:min] [--study NAME] [--pruner median|none]`` runs trials
(:mod:`snnkit.sweep.study`) until the study holds N; ``--jobs J`` starts J worker processes on
the same study. ``snnkit sweep show STUDY [--storage URL]`` prints the best trials (or the
Pareto front) and writes ``front.png`` and ``importance.png`` (:mod:`snnkit.sweep.report`).
Bad input — a space path not in the recipe, an empty range, an unknown distribution, an
unreachable storage, an objective that is not a metric — is one ``error:`` line, exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from snnkit.cli.errors import reported_errors


class _RunByDefault(TyperGroup):
    """``sweep RECIPE ...`` means ``sweep run RECIPE ...``; ``sweep show ...`` stays."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    add_completion=False,
    help="Hyperparameter sweeps on Optuna: sweep RECIPE --space ..., sweep show STUDY.",
)

StorageOpt = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL of the study database (default: sqlite file "
        "<output.dir>/<study>/study.db), e.g. postgresql://user:pw@host/db."
    ),
]


@sweep_app.command("run")
def sweep_run(
    recipe: Annotated[Path, typer.Argument(help="Recipe file (YAML).")],
    space: Annotated[
        Path, typer.Option(help="Search space (YAML): recipe path -> {float|int|choice: ...}.")
    ],
    trials: Annotated[int, typer.Option(min=1, help="Trials the study should hold.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe value in every trial: --set train.epochs=2."),
    ] = None,
    storage: StorageOpt = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    objectives: Annotated[
        str,
        typer.Option(
            help="NAME:max|min, comma-separated: metrics (test_acc, test_loss, "
            "train_seconds, ...) or costs per test sample (sops, macs, "
            "energy_pj)."
        ),
    ] = "test_acc:max",
    study: Annotated[
        str | None,
        typer.Option(help="Study name (default: the recipe's output.name or file name)."),
    ] = None,
    pruner: Annotated[
        str,
        typer.Option(help="median (stop trials below the median) or none; single objective only."),
    ] = "median",
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or cuda:N (overrides train.device).")
    ] = None,
) -> None:
    """Search recipe values with Optuna; every trial is a normal run folder."""
    from snnkit.sweep.study import SweepInterrupted, run_sweep, safe_url

    with reported_errors():
        sweep, storage_obj = _prepare(
            recipe, space, trials, overrides or [], storage, objectives, study, pruner, device
        )
    typer.echo(
        f"study {sweep.study}: {trials} trials, {', '.join(map(str, sweep.objectives))}"
        f" · storage {safe_url(sweep.storage)}",
        err=True,
    )
    if jobs > 1:
        raise typer.Exit(_workers(sweep, jobs))
    try:
        with reported_errors():
            result = run_sweep(sweep, storage_obj, on_trial=lambda t: _trial_line(sweep, t))
    except SweepInterrupted as stop:
        typer.echo(
            f"stopped by signal; {stop.run_dir} keeps its checkpoint. Run the same "
            "command again to continue the study.",
            err=True,
        )
        raise typer.Exit(stop.exit_code) from None
    _summary(result)


def _prepare(
    recipe: Path,
    space: Path,
    trials: int,
    overrides: list[str],
    storage: str | None,
    objectives: str,
    study: str | None,
    pruner: str,
    device: str | None,
) -> Any:
    """Check every input before anything runs; return the sweep and its opened storage."""
    from snnkit.plugins.loader import get_registry
    from snnkit.recipes.loader import load_recipe
    from snnkit.recipes.yaml_source import apply_override, read_yaml
    from snnkit.sweep.objectives import parse_objectives
    from snnkit.sweep.space import check_paths, load_space
    from snnkit.sweep.study import STUDY_DB, Sweep, open_storage, open_study

    goals = parse_objectives(objectives)
    dims = load_space(space)
    loaded = load_recipe(recipe, overrides)
    raw = read_yaml(recipe)
    for text in overrides:
        apply_override(raw, text)
    check_paths(dims, raw, get_registry(), str(space))
    name = study or loaded.label
    study_dir = Path(loaded.output.dir) / name
    url = storage or f"sqlite:///{(study_dir / STUDY_DB).resolve()}"
    sweep = Sweep(
        recipe, dims, goals, trials, name, study_dir, url, list(overrides), pruner, device, space
    )
    opened = open_storage(url)
    open_study(opened, name, goals, pruner)  # created once, before any worker starts
    return sweep, opened


def _workers(sweep: Any, jobs: int) -> int:
    """Run ``jobs`` worker processes on the study; the worst exit code."""
    args = [
        sys.executable,
        "-m",
        "snnkit",
        "sweep",
        "run",
        str(sweep.recipe),
        "--space",
        str(sweep.space_file),
        "--trials",
        str(sweep.trials),
        "--storage",
        sweep.storage,
        "--study",
        sweep.study,
        "--objectives",
        ",".join(map(str, sweep.objectives)),
        "--pruner",
        sweep.pruner,
    ]
    for text in sweep.overrides:
        args += ["--set", text]
    if sweep.device:
        args += ["--device", sweep.device]
    procs = [subprocess.Popen(args) for _ in range(jobs)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:  # the workers got the signal too: let them save and stop
        codes = [p.wait() for p in procs]
    return max(codes, key=lambda c: (c != 0, abs(c)))


def _trial_line(sweep: Any, trial: Any) -> None:
    state = trial.state.name.lower()
    run_dir = trial.user_attrs.get("run_dir", "")
    if state == "complete":
        shown = " · ".join(f"{o.name} {v:.6g}" for o, v in zip(sweep.objectives, trial.values))
        typer.echo(f"trial {trial.number}: {shown} ({run_dir})")
    elif state == "pruned":
        typer.echo(
            f"trial {trial.number}: pruned after epoch "
            f"{trial.user_attrs.get('pruned_after_epoch', '?')} ({run_dir})"
        )
    else:
        typer.echo(f"trial {trial.number} failed: {trial.user_attrs.get('fail_reason', state)}")


def _summary(study: Any) -> None:
    from collections import Counter

    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    typer.echo(
        f"study {study.study_name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )


@sweep_app.command("show")
def sweep_show(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOpt = None,
    runs: Annotated[
        Path, typer.Option(help="output.dir of the sweep (where the default study.db lives).")
    ] = Path("runs"),
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for front.png and importance.png (default: the study's folder)."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Best trials to list (single objective).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    plots: Annotated[bool, typer.Option(help="Write the PNG files.")] = True,
) -> None:
    """Print a study's best trials (or Pareto front); write front and importance PNGs."""
    from snnkit.errors import RecipeError
    from snnkit.sweep.report import best_trials, plot_front, plot_importance, trial_row
    from snnkit.sweep.study import STUDY_DB, open_storage, open_study

    with reported_errors():
        if storage is None:
            db = runs / study / STUDY_DB
            if not db.is_file():
                raise RecipeError(
                    f"sweep show {study}: no study database at {db} — pass "
                    "--storage URL (or --runs DIR, the sweep's output.dir)"
                )
            storage = f"sqlite:///{db.resolve()}"
        loaded = open_study(open_storage(storage), study)
        rows = [trial_row(loaded, t) for t in best_trials(loaded, top)]
        written = []
        if plots and rows:
            folder = out or (runs / study if storage.startswith("sqlite") else Path("."))
            written.append(plot_front(loaded, folder / "front.png"))
            importance = plot_importance(loaded, folder / "importance.png")
            if importance is None:
                typer.echo(
                    "note: importance.png not written (it needs two completed trials "
                    "and a parameter that varies)",
                    err=True,
                )
            else:
                written.append(importance)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_rows(loaded, rows)
    for path in written:
        typer.echo(f"wrote {path}", err=True)


def _print_rows(study: Any, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    multi = len(study.directions) > 1
    title = (
        f"study {study.study_name}: "
        + ("Pareto front" if multi else "best trials")
        + f" of {len(study.trials)} trials"
    )
    if not rows:
        typer.echo(f"{title}: no completed trial yet")
        return
    names = [k for k in rows[0] if k not in ("trial", "state", "params", "run_dir")]
    table = Table("trial", *names, "params", "run folder", box=None, pad_edge=False, title=title)
    for row in rows:
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items()
        )
        table.add_row(
            str(row["trial"]), *(f"{row[n]:.6g}" for n in names), params, str(row["run_dir"] or "")
        )
    Console(width=max(120, Console().width), soft_wrap=False).print(table)
