"""Downloads that survive the real internet: mirrors, resume, checksums, atomic extraction.

:func:`fetch` streams a URL (trying each mirror in turn) into ``<file>.part`` beside the target,
resuming a ``.part`` left by an interrupted download with an HTTP ``Range`` request, verifies the
checksum (``sha256:<hex>`` or ``md5:<hex>``) and only then renames it to the target — so a target
file that exists is always complete and verified. :func:`extract` unpacks a ``.zip``,
``.tar(.gz)`` or ``.gz`` archive into a temporary folder beside the destination and renames it
into place, so a half-extracted archive is never read. Every failure is one
:class:`~snnkit.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from snnkit.errors import DataError

#: Seconds a single network operation may block before the mirror is given up.
TIMEOUT_S = 30.0
CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]
"""``progress(bytes_so_far, total_or_None)``, called after every chunk."""


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file (streamed; any ``hashlib`` algorithm)."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:ab12…"`` -> ``("sha256", "ab12…")``; a bare 32-hex string is md5, 64 sha256."""
    algo, sep, value = checksum.partition(":")
    if not sep:
        algo, value = {32: "md5", 64: "sha256"}.get(len(checksum), ""), checksum
    if algo not in ("md5", "sha256") or not value:
        raise ValueError(f"checksum must be 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algo, value.lower()


def verify(path: Path, checksum: str | None) -> bool:
    """True when ``path``'s digest equals ``checksum`` (always True without a checksum)."""
    if checksum is None:
        return True
    algo, want = parse_checksum(checksum)
    return file_digest(path, algo) == want


def fetch(
    urls: Sequence[str], target: Path, checksum: str | None, progress: Progress | None = None
) -> Path:
    """Download ``target`` from the first of ``urls`` that works, verified; returns ``target``.

    An existing ``target`` that verifies is kept as is. A mirror whose file fails the checksum
    is dropped (its partial file too) and the next one tried.
    """
    if target.exists() and verify(target, checksum):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    errors: list[str] = []
    for url in urls:
        try:
            _stream(url, part, progress)
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as err:
            errors.append(f"{url}: {_reason(err)}")
            continue
        if not verify(part, checksum):
            part.unlink(missing_ok=True)
            errors.append(f"{url}: the file's checksum is not the published {checksum}")
            continue
        os.replace(part, target)
        return target
    raise DataError(
        f"{target.name}: could not be downloaded ({'; '.join(errors)}) — check the "
        f"connection and try again, or place the file in {target.parent} by hand"
    )


def _stream(url: str, part: Path, progress: Progress | None) -> None:
    """Append the rest of ``url`` to ``part`` (resuming with a Range request)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "snnkit"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # URLs are ours
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file is already complete
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        resumed = have and status == 206
        if not resumed:
            have = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with part.open("ab" if resumed else "wb") as f:
            while block := response.read(CHUNK):
                f.write(block)
                have += len(block)
                if progress is not None:
                    progress(have, total)
            f.flush()
            os.fsync(f.fileno())
    if total is not None and have != total:
        raise OSError(f"the connection closed after {have} of {total} bytes")


def extract(archive: Path, destination: Path) -> Path:
    """Unpack ``archive`` so that its contents appear in ``destination`` all at once.

    Members are extracted into a temporary folder beside ``destination``, then renamed; a
    member that would land outside the folder (``../``, absolute paths, links) is refused. A
    ``.gz`` that is not a tar becomes one file named without ``.gz``.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        name = archive.name
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    _inside(tmp, member, archive)
                z.extractall(tmp)
        elif name.endswith((".tar", ".tar.gz", ".tgz")) and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for info in t.getmembers():
                    _inside(tmp, info.name, archive)
                    if info.issym() or info.islnk():
                        raise DataError(
                            f"{archive}: member {info.name} is a link — refused; "
                            "fetch the archive again from the official source"
                        )
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                    t.extractall(tmp, filter="data")
                else:
                    t.extractall(tmp)  # members checked above
        elif name.endswith(".gz"):
            with gzip.open(archive, "rb") as src, (tmp / name[:-3]).open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        else:
            raise DataError(f"{archive}: not a zip, tar or gz archive — fetch it again")
        if destination.exists():
            shutil.rmtree(destination) if destination.is_dir() else destination.unlink()
        os.replace(tmp, destination)
        return destination
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise DataError(
            f"{archive}: cannot be extracted ({_reason(err)}) — the archive is "
            "truncated or corrupt; delete it and fetch it again"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _inside(root: Path, member: str, archive: Path) -> None:
    target = (root / member).resolve()
    if not target.is_relative_to(root.resolve()):
        raise DataError(
            f"{archive}: member {member!r} would be written outside the data folder "
            "— refused; fetch the archive again from the official source"
        )


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__
