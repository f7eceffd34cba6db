"""Getting a dataset's official files into ``<root>/<folder>``: fetch, check, unpack.

Policy (the same for every neuromorphic dataset):

- A file that is present is read as it is: nothing already in the data folder is overwritten.
  If a published checksum is known and the file's digest differs, that is **one warning** per
  file (``DataWarning``), not a refusal — the digest is cached (see
  :func:`snnkit.data.frame_cache.cached_digest`), so a big archive is hashed once.
- A missing file is fetched with :func:`snnkit.data.download.fetch` when ``download`` is on,
  verified against its published checksum (or the dataset's published checksum list, read at
  fetch time); otherwise, or when fetching fails (offline), a :class:`DataError` names the
  folder and the files to place there.
- Files that need a licence accepted by hand (DVS128 Gesture) are never fetched; the error says
  which file to get from where and where to put it.
- Archives that must be unpacked (``.h5.gz``) are unpacked once, atomically (a temporary file
  renamed into place), so a half-unpacked file is never read.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from snnkit.data.download import CHUNK, TIMEOUT_S, fetch, parse_checksum
from snnkit.data.frame_cache import cached_digest
from snnkit.data.neuromorphic.sources import DatasetInfo, SourceFile
from snnkit.errors import DataError


class DataWarning(UserWarning):
    """A dataset file is usable but not what was published (e.g. its checksum differs)."""


def checksum_warnings(info: DatasetInfo, folder: Path, files: Sequence[SourceFile]) -> list[str]:
    """Warn once for each present file whose digest differs from its published checksum."""
    out = []
    for f in files:
        path = folder / f.name
        if f.checksum is None or not path.is_file():
            continue
        algo, want = parse_checksum(f.checksum)
        got = cached_digest(path, algo)
        if got != want:
            text = (
                f"dataset {info.name}: {path} has {algo} {got}, not the published {want} — "
                "it is read as it is; delete it and fetch it again if it is damaged"
            )
            warnings.warn(text, DataWarning, stacklevel=3)
            out.append(text)
    return out


def published_checksum(f: SourceFile) -> str | None:
    """``f.checksum``, else ``f``'s line of its dataset's published checksum list, else None."""
    if f.checksum is not None or f.checksum_list is None:
        return f.checksum
    try:
        request = urllib.request.Request(f.checksum_list, headers={"User-Agent": "snnkit"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return parse_checksum_list(text).get(f.name)


def parse_checksum_list(text: str) -> dict[str, str]:
    """``md5sum`` output (``<hex>  <name>`` lines) -> ``{name: "md5:<hex>"}``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:
            out[parts[1].lstrip("*")] = "md5:" + parts[0].lower()
    return out


def obtain(
    info: DatasetInfo,
    folder: Path,
    missing: Sequence[SourceFile],
    download: bool,
    alternatives: str = "",
) -> None:
    """Fetch the ``missing`` files into ``folder`` or raise a :class:`DataError` saying what to
    place there. ``alternatives`` describes other accepted layouts (e.g. extracted folders)."""
    if not missing:
        return
    names = ", ".join(f.name for f in missing)
    base = f"dataset {info.name}: files missing in {folder}: {names}"
    also = f" (or {alternatives})" if alternatives else ""
    manual = [f for f in missing if not f.urls]
    if manual:
        raise DataError(f"{base} — {info.manual} {folder}{also}")
    if not download:
        raise DataError(
            f"{base} (download is off) — place the official files there{also}, or "
            f"run snnkit data fetch {info.name}"
        )
    for f in missing:
        checksum = published_checksum(f)
        if checksum is None and f.checksum_list is not None:
            warnings.warn(
                f"dataset {info.name}: the published checksum list {f.checksum_list} "
                f"could not be read; {f.name} is downloaded unverified",
                DataWarning,
                stacklevel=3,
            )
        try:
            fetch(list(f.urls), folder / f.name, checksum)
        except DataError as err:
            reason = str(err).split(" — ")[0]  # fetch's own fix is replaced by ours
            raise DataError(
                f"{base}; the download failed ({reason}) — check the connection and "
                f"run again, or place the files in {folder} by hand{also}"
            ) from None


def unpack_single(archive: Path, target: Path) -> Path:
    """Unpack the one file ``target`` from ``archive`` (``.gz``, or a ``.zip`` holding a member
    named ``target.name``) into ``target``, atomically; returns ``target``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as dst:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as z:
                    members = [m for m in z.namelist() if Path(m).name == target.name]
                    if not members:
                        raise DataError(
                            f"{archive}: no member {target.name} — it is not the "
                            "official archive; fetch it again"
                        )
                    with z.open(members[0]) as src:
                        shutil.copyfileobj(src, dst, CHUNK)
            else:
                with gzip.open(archive, "rb") as src:
                    shutil.copyfileobj(src, dst, CHUNK)
        os.replace(tmp, target)
        return target
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        raise DataError(
            f"{archive}: cannot be unpacked ({' '.join(str(err).split())[:160]}) — "
            "the archive is truncated or corrupt; delete it and fetch it again"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
