"""Run folders: ``<output.dir>/<recipe>/<timestamp>/`` with the resolved recipe, plugin versions,
``metrics.jsonl``, TensorBoard events and checkpoints. A run never writes into an existing
non-empty folder unless it resumes that run.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import yaml

from snnkit.errors import RecipeError
from snnkit.plugins.registry import Registry
from snnkit.recipes.loader import Recipe, read_yaml

RECIPE_FILE = "recipe.yaml"
PLUGINS_FILE = "plugins.json"
METRICS_FILE = "metrics.jsonl"


def new_run_dir(recipe: Recipe, out: str | Path | None = None) -> Path:
    """Create the run's own new folder; ``out`` names it exactly and must be new (or empty)."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise RecipeError(f"--out {path}: a file of that name exists — choose a new folder")
        if path.is_dir() and any(path.iterdir()):
            raise RecipeError(f"--out {path}: the folder exists and is not empty — choose a new "
                              f"folder, or continue that run with --resume {path}")
        _mkdir(path, exist_ok=True, option="--out")
        return path
    base = Path(recipe.output.dir) / recipe.label
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{i}" for i in range(1, 1000)]:
        path = base / f"{stamp}{suffix}"
        try:
            _mkdir(path, exist_ok=False, option="output.dir")
            return path
        except FileExistsError:
            continue
    raise RecipeError(f"{base}: cannot create a new run folder — clean up old runs")


def _mkdir(path: Path, *, exist_ok: bool, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        if not exist_ok:
            raise
        raise RecipeError(f"{option} {path}: cannot create the folder (a file is in the way) — "
                          "choose another folder") from None
    except OSError as err:
        raise RecipeError(f"{option} {path}: cannot create the run folder ({err.strerror or err})"
                          " — choose a writable folder") from None


def write_run_info(run_dir: Path, recipe: Recipe, registry: Registry, *, note: str = "") -> None:
    """Save the resolved recipe and the versions of every plugin that supplied a component."""
    origin = note or f"source: {recipe.source or 'mapping'}"
    (run_dir / RECIPE_FILE).write_text(
        f"# resolved recipe ({origin})\n" + yaml.safe_dump(recipe.to_dict(), sort_keys=False),
        encoding="utf-8")
    plugins = [p.as_dict() for p in registry.plugins.values()]
    (run_dir / PLUGINS_FILE).write_text(json.dumps(plugins, indent=2) + "\n", encoding="utf-8")


def read_run_recipe(run_dir: Path) -> dict[str, Any]:
    """The resolved recipe a run folder holds (what ``--resume`` continues)."""
    if not run_dir.is_dir():
        raise RecipeError(f"--resume {run_dir}: no such run folder — pass the folder that "
                          "snnkit run printed ('run folder: ...')")
    path = run_dir / RECIPE_FILE
    if not path.exists():
        raise RecipeError(f"--resume {run_dir}: not a run folder (no {RECIPE_FILE}) — pass the "
                          "folder that snnkit run printed ('run folder: ...')")
    return read_yaml(path)


def resume_command(run_dir: Path, *extra: str) -> str:
    """The shell command that continues the run in ``run_dir``."""
    return " ".join(["snnkit", "run", "--resume", shlex.quote(str(run_dir)),
                     *(shlex.quote(e) for e in extra)])


def append_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Add one epoch's metrics as a JSON line."""
    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(metrics) + "\n")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every epoch's metrics logged so far (an unreadable trailing line is dropped)."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: the checkpoint decides what is kept
    return rows


def rewrite_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Keep exactly ``rows`` (on resume: drop epochs logged after the checkpoint)."""
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (run_dir / METRICS_FILE).write_text(text, encoding="utf-8")
