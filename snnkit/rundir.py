"""Run folders: ``<output.dir>/<recipe>/<timestamp>/`` with the resolved recipe, plugin versions,
``metrics.jsonl``, TensorBoard events and checkpoints. A run never writes into an existing
folder unless it resumes that run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from snnkit.errors import RecipeError
from snnkit.recipe import Recipe
from snnkit.registry import Registry

RECIPE_FILE = "recipe.yaml"
PLUGINS_FILE = "plugins.json"
METRICS_FILE = "metrics.jsonl"


def new_run_dir(recipe: Recipe, out: str | Path | None = None) -> Path:
    """Create the run's own new folder; ``out`` names it exactly and must not exist yet."""
    if out is not None:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            raise RecipeError(f"--out {path}: the folder exists and is not empty — choose a new "
                              f"folder, or continue that run with --resume {path}")
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(recipe.output.dir) / recipe.label
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{i}" for i in range(1, 1000)]:
        path = base / f"{stamp}{suffix}"
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise RecipeError(f"{base}: cannot create a new run folder — clean up old runs")


def write_run_info(run_dir: Path, recipe: Recipe, registry: Registry) -> None:
    """Save the resolved recipe and the versions of every plugin that supplied a component."""
    (run_dir / RECIPE_FILE).write_text(
        f"# resolved recipe (source: {recipe.source or 'mapping'})\n"
        + yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")
    plugins = [p.as_dict() for p in registry.plugins.values()]
    (run_dir / PLUGINS_FILE).write_text(json.dumps(plugins, indent=2) + "\n", encoding="utf-8")


def read_run_recipe(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RECIPE_FILE
    if not path.exists():
        raise RecipeError(f"{run_dir}: no {RECIPE_FILE} — pass a run folder written by snnkit run")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def append_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(metrics) + "\n")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def rewrite_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Keep exactly ``rows`` (on resume: drop epochs logged after the checkpoint)."""
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (run_dir / METRICS_FILE).write_text(text, encoding="utf-8")
