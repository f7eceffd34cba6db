"""One process per run folder: an advisory ``fcntl.flock`` on ``<run folder>/.lock``.

Contract: a run (new or resumed) holds an exclusive ``flock`` on ``.lock`` from before it writes
into its folder until it ends; the file's one line names the holder: ``pid=… host=… started=…``.
A second ``snnkit run --out`` / ``--resume`` on that folder is refused with one line naming
that PID (exit 2). The kernel drops a ``flock`` when its process dies, so a lock file left by a
killed process is free: the next run simply takes it over. On release the file is unlinked
while still locked; an acquirer checks that the file it locked is still the one at the path
(else it tries again), so the unlink never lets two processes in. Where ``fcntl`` is missing
(Windows) or the file system has no locks (``ENOLCK``), runs go unlocked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from snnkit.errors import RecipeError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_FILE = ".lock"


@contextmanager
def hold(folder: str | Path, option: str = "--out") -> Iterator[None]:
    """Hold ``folder``'s lock for the block; raise :class:`RecipeError` if another process
    holds it (``option`` names the command-line option in the message)."""
    folder = Path(folder)
    fd = _acquire(folder, option)
    try:
        yield
    finally:
        if fd is not None:
            # a read-only or vanished folder: the lock still ends with the close
            with contextlib.suppress(OSError):
                (folder / LOCK_FILE).unlink(missing_ok=True)
            os.close(fd)


def holder(folder: str | Path) -> str | None:
    """Who holds ``folder``'s lock now (``"PID 123 on host, started …"``), or ``None``.

    ``flock`` has no query: this takes the lock for an instant and drops it (an acquirer that
    meets the probe tries again).
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(fd)
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the probe's own lock
    return None


def ensure_free(folder: str | Path, option: str) -> None:
    """Refuse at once (before any slow work) if another process holds ``folder``'s lock."""
    busy = holder(folder)
    if busy is not None:
        raise _busy(Path(folder), option, busy)


def _acquire(folder: Path, option: str) -> int | None:
    if fcntl is None:
        return None
    path = folder / LOCK_FILE
    tries = 3  # a holder() probe elsewhere holds the lock for microseconds: try again briefly
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RecipeError(
                f"{option} {folder}: cannot create the lock file {LOCK_FILE} "
                f"({err.strerror or err}) — the folder must be writable: choose "
                "a writable folder"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = _describe(fd)
            os.close(fd)
            tries -= 1
            if tries == 0:
                raise _busy(folder, option, busy) from None
            time.sleep(0.05)
            continue
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return None  # no locks on this file system: run unlocked
            raise
        if _still_there(fd, path):
            break
        os.close(fd)  # its holder unlinked it as we opened it: lock the new one
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    line = f"pid={os.getpid()} host={socket.gethostname()} started={started}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode("utf-8"), 0)
    except OSError:
        pass  # the lock is ours either way; only the holder's name goes unrecorded
    return fd


def _still_there(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _describe(fd: int) -> str:
    """``PID 123 on host, started …`` from a lock file's line (fields it lacks are skipped)."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    fields = dict(part.partition("=")[::2] for part in text.split() if "=" in part)
    if not fields.get("pid"):
        return "a process that has not yet written its PID"
    where = f" on {fields['host']}" if fields.get("host") else ""
    since = f", started {fields['started']}" if fields.get("started") else ""
    return f"PID {fields['pid']}{where}{since}"


def _busy(folder: Path, option: str, who: str) -> RecipeError:
    return RecipeError(
        f"{option} {folder}: the run folder is in use by another snnkit process "
        f"({who}) — wait for it to end, or stop it (Ctrl-C or kill -INT saves "
        "last.pt), then try again"
    )
