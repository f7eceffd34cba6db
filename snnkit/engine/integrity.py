"""Checkpoint integrity: a SHA-256 of the bytes ``torch.save`` wrote, kept inside the file.

``torch.save`` writes a zip archive that ends with the 22-byte end-of-central-directory record
(EOCD), whose last two bytes give the length of the archive comment (0). :class:`HashingWriter`
hashes exactly the bytes written; :func:`seal` then sets the comment to
``snnkit-sha256:<64 hex digits>`` — the file stays a zip that ``torch.load`` and ``zipfile`` read
as before (older snnkit versions load it unchanged). :func:`verify` recomputes

    SHA-256(file without its comment, comment length set back to 0) == stored digest

so any flipped bit, in the weights, the optimizer state or the structure, is found before a
byte is unpickled. A file without that comment (written before checksums existed, or by plain
``torch.save``) is checked by the CRC-32 of every zip member instead.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import IO

MARK = b"snnkit-sha256:"
COMMENT_LEN = len(MARK) + 64
EOCD = b"PK\x05\x06"
EOCD_LEN = 22
CHUNK = 1 << 20


class HashingWriter:
    """A write-only file object for ``torch.save``: hashes what passes through to ``handle``
    and keeps the first ``OSError`` (torch reports it as ``RuntimeError: unexpected pos``)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.tail = b""
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        """Write ``data`` to the file and the hash."""
        data = bytes(data)
        try:
            written = self.handle.write(data)
        except OSError as err:
            self.error = self.error or err
            raise
        self.sha.update(data)
        self.tail = (self.tail + data[-EOCD_LEN:])[-EOCD_LEN:]
        return written

    def flush(self) -> None:
        """Flush the underlying file."""
        self.handle.flush()


def seal(writer: HashingWriter) -> bool:
    """Store the digest as the archive comment (the handle is at the end of a finished zip).

    Returns ``False`` (and leaves the file as written) if it does not end in an empty-comment
    EOCD record, which a future ``torch.save`` might do; such a file is checked by CRC-32.
    """
    tail = writer.tail
    if len(tail) < EOCD_LEN or tail[:4] != EOCD or tail[-2:] != b"\0\0":
        return False
    comment = MARK + writer.sha.hexdigest().encode("ascii")
    writer.handle.seek(-2, os.SEEK_END)
    writer.handle.write(len(comment).to_bytes(2, "little") + comment)
    return True


def verify(path: Path) -> str | None:
    """What is wrong with the checkpoint file ``path`` (a zip archive), or ``None`` if intact."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(max(0, size - COMMENT_LEN - EOCD_LEN))
        tail = handle.read()
        if _sealed(tail):
            sha = hashlib.sha256()
            handle.seek(0)
            left = size - COMMENT_LEN - 2
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                sha.update(chunk)
                left -= len(chunk)
            sha.update(b"\0\0")
            if sha.hexdigest().encode("ascii") != tail[-64:]:
                return "its bytes do not match the SHA-256 checksum written with it"
            return None
    if _cut_seal(tail):
        return "truncated: the checksum at its end is cut short"
    return _crc_problem(path)


def _sealed(tail: bytes) -> bool:
    """The file ends in an EOCD record whose comment is our digest."""
    return (
        len(tail) == COMMENT_LEN + EOCD_LEN
        and tail[:4] == EOCD
        and tail[EOCD_LEN - 2 : EOCD_LEN] == COMMENT_LEN.to_bytes(2, "little")
        and tail[EOCD_LEN : EOCD_LEN + len(MARK)] == MARK
    )


def _cut_seal(tail: bytes) -> bool:
    """The last EOCD record announces our comment, but fewer bytes follow it."""
    at = tail.rfind(EOCD)
    return (
        at >= 0
        and tail[at + EOCD_LEN - 2 : at + EOCD_LEN] == COMMENT_LEN.to_bytes(2, "little")
        and len(tail) - (at + EOCD_LEN) < COMMENT_LEN
    )


def _crc_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        return f"its zip archive is damaged: {str(err).strip()[:120] or type(err).__name__}"
    return None if bad is None else f"the CRC-32 of its part {bad} does not match"
