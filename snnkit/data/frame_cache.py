"""An on-disk cache of frames computed from events, and of the digests of big source files.

**Entries.** The frames of one dataset split live in ``<cache dir>/<dataset>/<key>/``, where
``key`` is the SHA-256 of a JSON document holding everything that changes the frames: the
source files' fingerprints (their checksums), the reader's version and every frame parameter
(``frames``, ``split_by``, the pre-cache transform spec, the split). Change any of them and a
new entry is built — a stale one is never served. The cache dir is ``$SNNKIT_CACHE``, else
``~/.cache/snnkit/frames``.

An entry stores the frames sparsely (frames are mostly zeros): ``indptr.npy`` (``[N + 1]``
int64), ``index.npy`` (flat indices into one sample's frames, int32) and ``count.npy``
(int32), plus ``labels.npy`` and ``meta.json``. Sample ``i`` is the dense array whose flat
positions ``index[indptr[i]:indptr[i+1]]`` hold ``count[...]`` and zeros elsewhere.

**Atomic writes.** An entry is built in ``.<key>.tmp-*`` beside its final place and renamed
into place after ``meta.json`` is written, so a build that is killed leaves no entry that
loads (the temporary folder is ignored, and removed by ``snnkit data cache clear``).

**Parallel build.** Samples are computed in chunks by a ``ProcessPoolExecutor`` with
``min(cpu count, 8)`` workers; ``progress(done, total)`` is called as chunks finish.

**Digests.** :func:`cached_digest` keeps a file's digest in a small JSON sidecar under
``<cache dir>/digests/``, keyed by the file's absolute path, size and mtime, so a large
archive is hashed once, not on every run.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from snnkit.data.download import file_digest

Progress = Callable[[int, int], None]
"""``progress(samples_done, samples_total)``."""

#: Samples per task of a parallel build.
CHUNK = 64
MAX_WORKERS = 8


class FrameSource(Protocol):
    """What the cache needs of a dataset: its length and one sample's frames (numpy)."""

    def __len__(self) -> int: ...

    def frames_of(self, index: int) -> np.ndarray: ...


def cache_dir() -> Path:
    """``$SNNKIT_CACHE``, else ``~/.cache/snnkit/frames``."""
    env = os.environ.get("SNNKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnkit" / "frames"


def cache_key(spec: dict[str, Any]) -> str:
    """SHA-256 (first 24 hex digits) of ``spec`` as canonical JSON."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# ------------------------------------------------------------------------------------------
# digests
# ------------------------------------------------------------------------------------------


def cached_digest(path: Path, algorithm: str = "md5", root: Path | None = None) -> str:
    """Hex digest of ``path``, read from a sidecar when its size and mtime are unchanged."""
    path = Path(path).absolute()
    st = path.stat()
    where = (root or cache_dir()) / "digests"
    sidecar = where / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
    stamp = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        saved = json.loads(sidecar.read_text())
        if {k: saved.get(k) for k in stamp} == stamp and algorithm in saved:
            return str(saved[algorithm])
    except (OSError, ValueError):
        saved = {}
    digest = file_digest(path, algorithm)
    record = {
        **(saved if {k: saved.get(k) for k in stamp} == stamp else {}),
        **stamp,
        algorithm: digest,
    }
    with contextlib.suppress(OSError):  # an unwritable cache only costs the hashing next time
        _write_atomic(sidecar, json.dumps(record).encode())
    return digest


def folder_fingerprint(paths: Sequence[Path], base: Path) -> str:
    """SHA-256 of the names (relative to ``base``), sizes and mtimes of extracted files."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "files:" + h.hexdigest()


# ------------------------------------------------------------------------------------------
# entries
# ------------------------------------------------------------------------------------------


class CacheEntry:
    """A complete entry: sample ``i``'s dense frames of ``shape`` as float32 (see module doc)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.shape = tuple(self.meta["shape"])
        self.indptr = np.load(folder / "indptr.npy")
        self.index = np.load(folder / "index.npy", mmap_mode="r")
        self.count = np.load(folder / "count.npy", mmap_mode="r")
        self.labels = np.load(folder / "labels.npy")

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def frames(self, i: int) -> np.ndarray:
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        out = np.zeros(int(np.prod(self.shape)), dtype=np.float32)
        out[np.asarray(self.index[a:b])] = self.count[a:b]
        return out.reshape(self.shape)


def entry_path(dataset: str, key: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / dataset / key


def load_entry(dataset: str, key: str, root: Path | None = None) -> CacheEntry | None:
    """The complete entry ``key`` of ``dataset``, or None (absent, or not loadable)."""
    folder = entry_path(dataset, key, root)
    try:
        entry = CacheEntry(folder)
    except (OSError, ValueError, KeyError):
        return None
    return entry if entry.meta.get("key") == key and entry.meta.get("complete") else None


def build_entry(
    dataset: str,
    key: str,
    source: FrameSource,
    labels: np.ndarray,
    shape: tuple[int, ...],
    spec: dict[str, Any],
    *,
    root: Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> CacheEntry:
    """Compute every sample's frames and store them as entry ``key`` (atomically)."""
    final = entry_path(dataset, key, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=final.parent))
    try:
        n = len(source)
        chunks = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if workers is None else workers
        parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        done = 0
        for start, part in _computed(source, chunks, workers):
            parts[start] = part
            done += len(part[0])
            if progress is not None:
                progress(done, n)
        lengths = np.concatenate([parts[s][0] for s, _ in chunks]) if chunks else np.zeros(0)
        indptr = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        empty = np.zeros(0, np.int32)
        np.save(tmp / "indptr.npy", indptr)
        np.save(tmp / "index.npy", np.concatenate([parts[s][1] for s, _ in chunks] or [empty]))
        np.save(tmp / "count.npy", np.concatenate([parts[s][2] for s, _ in chunks] or [empty]))
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int64))
        meta = {
            "key": key,
            "dataset": dataset,
            "shape": list(shape),
            "samples": n,
            "spec": spec,
            "complete": True,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        if final.exists() and load_entry(dataset, key, root) is None:
            shutil.rmtree(final, ignore_errors=True)  # a damaged entry: replace it
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same entry first: keep theirs
            if load_entry(dataset, key, root) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    entry = load_entry(dataset, key, root)
    if entry is None:  # pragma: no cover - the rename above succeeded
        raise OSError(f"{final}: the cache entry just written does not load")
    return entry


def _sparse_chunk(
    source: FrameSource, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths, indices, counts = [], [], []
    for i in range(start, stop):
        flat = source.frames_of(i).reshape(-1)
        nz = np.flatnonzero(flat)
        lengths.append(len(nz))
        indices.append(nz.astype(np.int32))
        counts.append(flat[nz].astype(np.int32))
    return (
        np.asarray(lengths, np.int64),
        np.concatenate(indices or [np.zeros(0, np.int32)]),
        np.concatenate(counts or [np.zeros(0, np.int32)]),
    )


_WORKER_SOURCE: FrameSource | None = None


def _init_worker(source: FrameSource) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source


def _worker_chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert _WORKER_SOURCE is not None
    return _sparse_chunk(_WORKER_SOURCE, start, stop)


def _computed(source: FrameSource, chunks: list[tuple[int, int]], workers: int):  # type: ignore[no-untyped-def]
    """Yield ``(start, sparse chunk)`` as chunks finish (serially for one worker or chunk)."""
    if workers <= 1 or len(chunks) <= 1:
        for start, stop in chunks:
            yield start, _sparse_chunk(source, start, stop)
        return
    with cf.ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)), initializer=_init_worker, initargs=(source,)
    ) as pool:
        futures = {pool.submit(_worker_chunk, s, e): s for s, e in chunks}
        try:
            for future in cf.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


# ------------------------------------------------------------------------------------------
# listing and clearing
# ------------------------------------------------------------------------------------------


def list_entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every complete entry: dataset, key, samples, bytes, spec."""
    base = root or cache_dir()
    rows: list[dict[str, Any]] = []
    if not base.is_dir():
        return rows
    for ds in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "digests"):
        for folder in sorted(p for p in ds.iterdir() if p.is_dir() and not p.name.startswith(".")):
            entry = load_entry(ds.name, folder.name, base)
            if entry is None:
                continue
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            rows.append(
                {
                    "dataset": ds.name,
                    "key": folder.name,
                    "samples": len(entry),
                    "bytes": size,
                    "spec": entry.meta.get("spec", {}),
                }
            )
    return rows


def clear(dataset: str | None = None, root: Path | None = None) -> int:
    """Remove the entries (and unfinished builds) of ``dataset``, or of all; returns how many."""
    base = root or cache_dir()
    if not base.is_dir():
        return 0
    removed = 0
    for ds in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "digests"):
        if dataset is not None and ds.name != dataset:
            continue
        for folder in [p for p in ds.iterdir() if p.is_dir()]:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
