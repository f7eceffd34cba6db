"""Write failures as one-line errors: a full disk, a read-only file system, an I/O error.

:func:`write_failure` turns the ``OSError`` (or torch's ``RuntimeError: ... unexpected pos``,
which is how ``torch.save`` reports a full disk) of a failed write into a
:class:`~snnkit.errors.StorageError` whose message names the file, the disk's folder, its free
space and the fix; anything else (a programming error) gives ``None`` and keeps its traceback.
"""

from __future__ import annotations

import errno
import shlex
import shutil
from pathlib import Path

from snnkit.errors import StorageError

#: errno values meaning "no room": the disk or the user's quota is full.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: errno values of a write refused by the file system itself.
READ_ONLY = frozenset({errno.EROFS})
#: Below this many free bytes a write failure without an errno counts as a full disk.
LOW_SPACE = 1 << 20


def write_failure(err: BaseException, target: str | Path | None = None) -> StorageError | None:
    """The one-line error for a failed write of ``target``, or ``None`` if ``err`` is no write
    failure (a ``RuntimeError`` is one only when the disk is nearly full)."""
    if isinstance(err, StorageError):
        return err
    code = getattr(err, "errno", None)
    if target is None:
        target = getattr(err, "filename", None)
        if target is None:
            return None
    target = Path(target)
    folder = target if target.is_dir() else target.parent
    free = _free_bytes(folder)
    if not isinstance(err, OSError):
        torch_full = isinstance(err, RuntimeError) and "unexpected pos" in str(err)
        if not (torch_full or (free is not None and free < LOW_SPACE)):
            return None
        code = errno.ENOSPC
    resume = f"snnkit run --resume {shlex.quote(str(folder))}"
    if code in NO_SPACE:
        room = (
            f"{_size(free)} free, too little for it" if free is not None else "free space unknown"
        )
        return StorageError(
            f"{target}: cannot write: no space left on the disk that holds "
            f"{folder} ({room}) — free space there (then {resume} continues "
            "the run), or run again with --out on another disk; what was "
            "saved before is intact"
        )
    if code in READ_ONLY:
        return StorageError(
            f"{target}: cannot write: the file system holding {folder} is "
            "read-only — remount it read-write (then "
            f"{resume} continues the run), or run again with --out on a "
            "writable disk; what was saved before is intact"
        )
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return StorageError(
        f"{target}: cannot write ({reason}) — check the disk and the folder's "
        f"permissions, then {resume} continues the run; what was saved before "
        "is intact"
    )


def _free_bytes(folder: Path) -> int | None:
    for place in (folder, *folder.parents):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return None


def _size(n: int | None) -> str:
    """``n`` bytes for people: ``512 B``, ``3.5 MiB``."""
    value, unit = float(n or 0), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
