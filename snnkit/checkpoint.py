"""Checkpoints: atomic writes, safe loads, a format version.

A checkpoint is a plain dict of tensors and Python data, saved with ``torch.save`` to a
temporary file in the same folder, flushed and fsynced, then renamed over the target, so a
process killed mid-write leaves the previous checkpoint intact. Loading uses
``torch.load(weights_only=True)``: a file that carries arbitrary pickled objects is refused.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from snnkit.errors import CheckpointError

FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus ``format_version``) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**state, "format_version": FORMAT_VERSION}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; refuse unsafe or foreign files."""
    path = Path(path)
    if path.is_dir():
        for name in ("last.pt", "best.pt"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise CheckpointError(f"{path}: no last.pt or best.pt in this folder — pass a run "
                                  "folder written by snnkit run, or a .pt file")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint — check the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path}: refused: the file holds objects that are not plain "
                              f"tensors or data ({_first_line(err)}); snnkit loads checkpoints "
                              "with weights_only=True — only load files you trust, re-saved as "
                              "tensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({_first_line(err)}) — it may be "
                              "truncated; use the run's other checkpoint (best.pt / last.pt)") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path}: not an snnkit checkpoint (no format_version) — pass a "
                              "file written by snnkit run")
    version = state["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}, this snnkit reads format "
                              f"{FORMAT_VERSION} — use the snnkit version that wrote it, or "
                              "retrain")
    return state


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
