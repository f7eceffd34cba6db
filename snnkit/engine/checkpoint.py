"""Checkpoints: atomic writes, safe loads, a format version, and the process's RNG states.

A checkpoint is a plain dict of tensors and Python data, saved with ``torch.save`` to a
temporary file in the same folder, flushed and fsynced, then renamed over the target, so a
process killed mid-write leaves the previous checkpoint intact (a stale temporary file is
removed by the next successful save); a write that fails (disk full, read-only) raises a
one-line :class:`~snnkit.errors.StorageError` and leaves the previous file as it was.

Every file is sealed with the SHA-256 of its bytes (:mod:`snnkit.engine.integrity`), checked
before loading: a flipped bit or a cut-off file is refused with one line that points to the
run's other checkpoint. The seal lives in the zip container, not in the payload, so
``format_version`` stays 1: files written before seals existed load as before (checked by
their zip CRC-32s), and older snnkit versions read sealed files. Loading uses
``torch.load(weights_only=True)``: a file that carries arbitrary pickled objects is refused
before any of it runs. Files of another ``format_version`` are refused with a message naming
both versions.

:func:`seed_everything` seeds the RNGs; :func:`capture_rng` / :func:`restore_rng` turn the
Python, NumPy and torch (CPU and CUDA) random states into plain data that such a load accepts,
so a resumed run draws the same numbers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch

from snnkit.engine.integrity import HashingWriter, seal, verify
from snnkit.engine.storage import write_failure
from snnkit.errors import CheckpointError, one_line

FORMAT_VERSION = 1
#: The fix every "damaged checkpoint" message ends with.
OTHER_ONE = "the run's other checkpoint (best.pt / last.pt) may still be good"
#: Keys every snnkit checkpoint holds (besides ``format_version``).
REQUIRED_KEYS = ("recipe", "model", "position")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus ``format_version``) to ``path`` atomically, sealed with its SHA-256.

    A failed write (disk full, read-only file system, I/O error) removes the temporary file,
    leaves the previous ``path`` as it was and raises :class:`~snnkit.errors.StorageError`.
    """
    path = Path(path)
    payload = {**state, "format_version": FORMAT_VERSION}
    tmp: str | None = None
    writer: HashingWriter | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            writer = HashingWriter(handle)
            torch.save(payload, cast(IO[bytes], writer))  # a file object: write() suffices
            seal(writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError)):
            failure = write_failure(writer.error if writer and writer.error else err, path)
            if failure is not None:
                raise failure from None
        raise
    _fsync_dir(path.parent)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; refuse unsafe or foreign files.

    ``path`` is a ``.pt`` file or a run folder (its ``last.pt``, else ``best.pt``).
    """
    path = Path(path)
    if path.is_dir():
        for name in ("last.pt", "best.pt"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise CheckpointError(
                f"{path}: no last.pt or best.pt in this folder — pass a run "
                "folder written by snnkit run, or a .pt file"
            )
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint — check the path")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is foreign
        if _starts_like_a_zip(path):
            raise CheckpointError(
                f"{path}: not a readable checkpoint (truncated: the end of "
                f"the file is missing) — refused; {OTHER_ONE}"
            )
        raise CheckpointError(
            f"{path}: not a checkpoint (not a file written by torch.save) — "
            "pass a last.pt / best.pt written by snnkit run, or its run folder"
        )
    problem = verify(path)
    if problem is not None:
        raise CheckpointError(f"{path}: damaged checkpoint ({problem}) — refused; {OTHER_ONE}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused: it holds pickled Python objects ({_culprit(err)}) "
            "that could run code when loaded; snnkit loads checkpoints with "
            "weights_only=True (tensors and plain data only) — use a checkpoint "
            "written by snnkit run"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError) as err:
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({one_line(err, 200, first_line=True)}) — it may "
            f"be truncated or damaged; {OTHER_ONE}"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(
            f"{path}: not an snnkit checkpoint (no format_version) — pass a "
            "file written by snnkit run"
        )
    version = state["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version!r}, but this snnkit reads "
            f"format {FORMAT_VERSION} — use the snnkit version that wrote it, "
            "or train again"
        )
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(
            f"{path}: incomplete checkpoint (no '{missing[0]}') — use a "
            "checkpoint written by snnkit run"
        )
    return state


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (model initialisation, encoders, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Every global RNG state (Python, NumPy, torch CPU and CUDA) as weights_only-loadable data."""
    py = random.getstate()
    np_state: tuple[Any, ...] = np.random.get_state()  # type: ignore[assignment]
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            *[v.item() if hasattr(v, "item") else v for v in np_state[2:]],
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set the global RNGs to a state captured by :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def _starts_like_a_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _culprit(err: BaseException) -> str:
    """The object torch refused, e.g. ``GLOBAL posix.system``, without torch's advice."""
    text = str(err)
    found = re.search(r"GLOBAL\s+\S+", text) or re.search(r"[Uu]nsupported global:?\s*\S+", text)
    if found:
        return found.group(0).rstrip(".,")
    found = re.search(r"Unsupported operand \d+", text)
    return f"pickle opcode not allowed: {found.group(0)}" if found else "not tensors or plain data"
