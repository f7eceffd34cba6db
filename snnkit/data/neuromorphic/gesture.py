"""DVS128 Gesture: labelled segments of AEDAT 3.1 recordings.

The archive ``DvsGesture.tar.gz`` holds ``DvsGesture/userXX_<lighting>.aedat`` recordings,
each with ``userXX_<lighting>_labels.csv`` (header ``class,startTime_usec,endTime_usec``), and
the lists ``trials_to_train.txt`` / ``trials_to_test.txt`` naming the recordings of each split.
It is extracted once, atomically, into ``<root>/DVSGesture/extracted/``; a folder
``<root>/DVSGesture/DvsGesture/`` extracted by hand is read as it is.

A sample is one row of a labels file: the events with ``startTime <= t < endTime`` (rows may
touch or overlap, so an event can belong to two samples; events outside every row belong to
none). Class numbers 1–11 become labels 0–10. Samples are ordered by the split list, then by
row.

**Checks when the dataset is built:** every listed recording and labels file exists, every
labels file parses (classes 1–11, start < end), and every recording has an AEDAT 3.x header
and whole packets (packet headers are walked with seeks, so truncation is found without
reading the events).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnkit.data.event_formats import AEDAT3_HEADER_END, parse_aedat3, read_bytes
from snnkit.data.frame_cache import folder_fingerprint
from snnkit.errors import DataError

GESTURE_VERSION = "aedat3-gesture-1"
NUM_CLASSES = 11
HEADER_PROBE = 1 << 16


@dataclass
class Segment:
    recording: str
    start: int
    end: int
    label: int


@dataclass
class GestureReader:
    """Reads labelled segments (see the module documentation)."""

    segments: list[Segment]
    files: list[Path]
    base: Path
    version: str = GESTURE_VERSION
    _last: tuple[str, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.segments)

    def label(self, index: int) -> int:
        return self.segments[index].label

    def sample_name(self, index: int) -> str:
        s = self.segments[index]
        return f"{s.recording} [{s.start}, {s.end}) µs"

    def events(self, index: int) -> np.ndarray:
        s = self.segments[index]
        if self._last is None or self._last[0] != s.recording:  # one recording kept in memory
            self._last = (s.recording, parse_aedat3(read_bytes(Path(s.recording)), s.recording))
        ev = self._last[1]
        return ev[(ev["t"] >= s.start) & (ev["t"] < s.end)]

    def fingerprint(self) -> str:
        return folder_fingerprint(self.files, self.base)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_last": None}


def data_folder(folder: Path) -> Path | None:
    """The extracted ``DvsGesture`` folder (by hand, or by snnkit), or None."""
    for candidate in (folder / "DvsGesture", folder / "extracted" / "DvsGesture"):
        if (candidate / "trials_to_train.txt").is_file():
            return candidate
    return None


def read_trials(path: Path) -> list[str]:
    try:
        names = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    return [n for n in names if n.endswith(".aedat")]


def read_labels(path: Path) -> list[tuple[int, int, int]]:
    """Rows ``(class 1–11, start µs, end µs)`` of a ``_labels.csv`` file."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise DataError(
            f"{path}: cannot be read ({err.strerror or err}) — the archive is "
            "incompletely extracted; extract it again"
        ) from None
    if not lines or lines[0].replace(" ", "").lower() != "class,starttime_usec,endtime_usec":
        raise DataError(
            f"{path}: the header is not 'class,startTime_usec,endTime_usec' — the "
            "file is corrupt; extract the archive again"
        )
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            cls, start, end = (int(v) for v in line.split(","))
        except ValueError:
            raise DataError(
                f"{path}: line {n} is not three integers: {line!r} — the file is "
                "corrupt; extract the archive again"
            ) from None
        if not 1 <= cls <= NUM_CLASSES or start >= end:
            raise DataError(
                f"{path}: line {n} has class {cls} (expected 1–{NUM_CLASSES}) or "
                f"start {start} >= end {end} — the file is corrupt"
            )
        rows.append((cls, start, end))
    return rows


def check_aedat3(path: Path) -> None:
    """Header and whole packets of an AEDAT 3.x file, walking packet headers with seeks."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(HEADER_PROBE)
            at = head.find(AEDAT3_HEADER_END)
            if not head.startswith(b"#!AER-DAT3") or at < 0:
                raise DataError(
                    f"{path}: not an AEDAT 3.x file (no '#!AER-DAT3' version line or "
                    "no '#!END-HEADER' line) — the file is corrupt; fetch it again"
                )
            pos = at + len(AEDAT3_HEADER_END)
            while pos < size:
                f.seek(pos)
                header = f.read(28)
                if len(header) < 28:
                    raise DataError(
                        f"{path}: a packet header at byte {pos} is cut off — the "
                        "file is truncated; fetch it again"
                    )
                _, _, esize, _, _, _, number, _ = struct.unpack("<hhiiiiii", header)
                if esize <= 0 or number < 0:
                    raise DataError(
                        f"{path}: packet at byte {pos} declares {number} events of "
                        f"{esize} bytes — the file is corrupt; fetch it again"
                    )
                pos += 28 + esize * number
            if pos != size:
                raise DataError(
                    f"{path}: the last packet needs {pos - size} more bytes — the "
                    "file is truncated; fetch it again"
                )
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None


def gesture_reader(data: Path, train: bool) -> GestureReader:
    """The segments of one split of the extracted folder ``data``, checked."""
    listing = data / ("trials_to_train.txt" if train else "trials_to_test.txt")
    if not listing.is_file():
        raise DataError(
            f"{data}: no {listing.name} — the archive is incompletely extracted; "
            "delete the folder and build the dataset again"
        )
    segments: list[Segment] = []
    files: list[Path] = [listing]
    missing: list[str] = []
    for name in read_trials(listing):
        rec, labels = data / name, data / (name[: -len(".aedat")] + "_labels.csv")
        absent = [p.name for p in (rec, labels) if not p.is_file()]
        if absent:
            missing += absent
            continue
        check_aedat3(rec)
        for cls, start, end in read_labels(labels):
            segments.append(Segment(str(rec), start, end, cls - 1))
        files += [rec, labels]
    if missing:
        raise DataError(
            f"{data}: files missing: {', '.join(missing)} — the archive is "
            "incompletely extracted; delete the folder and build the dataset again"
        )
    return GestureReader(segments, files, data)
