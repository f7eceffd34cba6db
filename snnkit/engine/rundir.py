"""Run folders: ``<output.dir>/<recipe>/<timestamp>/`` with the resolved recipe, plugin versions,
``metrics.jsonl``, TensorBoard events and checkpoints. A run never writes into an existing
non-empty folder unless it resumes that run.

Every folder a run will write into is checked for writability up front (:func:`check_writable`:
one line, exit 2, instead of a read-only traceback later). ``recipe.yaml``, ``plugins.json``
and a rewritten ``metrics.jsonl`` are replaced atomically; a metrics line that cannot be
appended (disk full) is cut back off, so the file always holds whole lines, in epoch order;
write failures are one-line :class:`~snnkit.errors.StorageError` s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from snnkit.engine import run_lock
from snnkit.engine.storage import write_failure
from snnkit.errors import RecipeError
from snnkit.plugins.registry import Registry
from snnkit.recipes.loader import Recipe
from snnkit.recipes.yaml_source import read_yaml

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
            run_lock.ensure_free(path, "--out")  # a run in progress: name its PID
            raise RecipeError(
                f"--out {path}: the folder exists and is not empty — choose a new "
                f"folder, or continue that run with --resume {path}"
            )
        _mkdir(path, exist_ok=True, option="--out")
        check_writable(path, "--out")
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
        raise RecipeError(
            f"{option} {path}: cannot create the folder (a file is in the way) — "
            "choose another folder"
        ) from None
    except OSError as err:
        raise RecipeError(
            f"{option} {path}: cannot create the run folder ({err.strerror or err})"
            " — choose a writable folder"
        ) from None


def check_writable(folder: Path, option: str) -> None:
    """Refuse a run folder that cannot be written (read-only file system, no permission).

    Probes by creating and removing a hidden file, which also works for root on a read-only
    mount (where permission bits say nothing).
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".snnkit-write-test.", dir=folder)
    except OSError as err:
        reason = err.strerror or str(err)
        fix = (
            "remount it read-write, or copy the run folder to a writable disk and resume the copy"
            if option == "--resume"
            else "choose a writable folder with --out"
        )
        raise RecipeError(
            f"{option} {folder}: the folder is not writable ({reason}) — {fix}"
        ) from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def write_run_info(run_dir: Path, recipe: Recipe, registry: Registry, *, note: str = "") -> None:
    """Save the resolved recipe and the versions of every plugin that supplied a component."""
    origin = note or f"source: {recipe.source or 'mapping'}"
    _write_atomic(
        run_dir / RECIPE_FILE,
        f"# resolved recipe ({origin})\n" + yaml.safe_dump(recipe.to_dict(), sort_keys=False),
    )
    plugins = [p.as_dict() for p in registry.plugins.values()]
    _write_atomic(run_dir / PLUGINS_FILE, json.dumps(plugins, indent=2) + "\n")


def read_run_recipe(run_dir: Path) -> dict[str, Any]:
    """The resolved recipe a run folder holds (what ``--resume`` continues)."""
    if not run_dir.is_dir():
        raise RecipeError(
            f"--resume {run_dir}: no such run folder — pass the folder that "
            "snnkit run printed ('run folder: ...')"
        )
    path = run_dir / RECIPE_FILE
    if not path.exists():
        raise RecipeError(
            f"--resume {run_dir}: not a run folder (no {RECIPE_FILE}) — pass the "
            "folder that snnkit run printed ('run folder: ...')"
        )
    return read_yaml(path)


def resume_command(run_dir: Path, *extra: str) -> str:
    """The shell command that continues the run in ``run_dir``."""
    return " ".join(
        ["snnkit", "run", "--resume", shlex.quote(str(run_dir)), *(shlex.quote(e) for e in extra)]
    )


def append_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Add one epoch's metrics as a JSON line (all of it, or nothing: see the module doc)."""
    path = run_dir / METRICS_FILE
    line = (json.dumps(metrics) + "\n").encode("utf-8")
    size = path.stat().st_size if path.exists() else 0
    try:
        with open(path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        with contextlib.suppress(OSError):
            os.truncate(path, size)  # cut the partial line back off (needs no free space)
        failure = write_failure(err, path)
        if failure is None:
            raise
        raise failure from None


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
    _write_atomic(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` via a temporary file: the old content or the new, never half."""
    tmp: str | None = None
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, mode)  # mkstemp makes 0600; keep what a plain write would give
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
        failure = write_failure(err, path)
        if failure is None:
            raise
        raise failure from None
