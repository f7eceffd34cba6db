"""Readers of the event-file formats of the neuromorphic datasets, vectorised with numpy.

Every reader returns the events in file order as a numpy structured array:

- cameras: :data:`CAMERA_EVENT` — fields ``t`` (µs, int64, as in the file: not rebased),
  ``x``, ``y`` (int16) and ``p`` (int8, 0 = OFF, 1 = ON);
- audio (SHD/SSC): :data:`AUDIO_EVENT` — fields ``t`` (µs, int64) and ``x`` (the channel).

(The field names are those of Tonic, so code written for it reads these arrays.) A truncated or
corrupt file raises :class:`~snnkit.errors.DataError` naming the file and what is wrong.

Formats (byte layouts as the official distributions ship them):

- **N-MNIST** ``.bin``: 5 bytes an event, ``x (8 bit) | y (8 bit) | p (1 bit) t[22:16] (7 bit) |
  t[15:8] | t[7:0]`` — a 23-bit µs timestamp.
- **AEDAT 3.1** (DVS128 Gesture): ASCII header lines starting ``#``, the last
  ``#!END-HEADER\\r\\n``, then packets. A packet is a 28-byte little-endian header (``int16
  eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset, int32 eventTSOverflow,
  int32 eventCapacity, int32 eventNumber, int32 eventValid``) and ``eventNumber · eventSize``
  bytes of events. Polarity events (type 1, 8 bytes): ``uint32 data`` (bit 0 valid, bit 1
  polarity, bits 2–16 y, bits 17–31 x) and ``int32 timestamp``; the full time is
  ``eventTSOverflow << 31 | timestamp``. Other packet types are skipped, and so are polarity
  events whose valid bit is clear.
- **AEDAT 2.0** (CIFAR10-DVS, jAER): header lines starting ``#`` (``#!AER-DAT2.0``), then 8
  bytes an event, big-endian ``uint32 address, uint32 timestamp``; for the DVS128 sensor
  ``p = address & 1``, ``x = 127 − ((address >> 1) & 127)``, ``y = (address >> 8) & 127``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnkit.errors import DataError

CAMERA_EVENT = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
AUDIO_EVENT = np.dtype([("t", np.int64), ("x", np.int16)])

AEDAT3_HEADER_END = b"#!END-HEADER\r\n"
AEDAT3_PACKET_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
AEDAT3_POLARITY = 1
AEDAT3_POLARITY_EVENT = np.dtype([("data", "<u4"), ("t", "<i4")])


def camera_events(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A :data:`CAMERA_EVENT` array from four equally long columns."""
    out = np.empty(len(t), dtype=CAMERA_EVENT)
    out["t"], out["x"], out["y"], out["p"] = t, x, y, p
    return out


def parse_nmnist(data: bytes, name: str = "N-MNIST data") -> np.ndarray:
    """Events of one N-MNIST ``.bin`` file (its bytes); ``name`` goes into error messages."""
    if len(data) % 5:
        raise DataError(
            f"{name}: {len(data)} bytes is not a whole number of 5-byte events — the "
            "file is truncated; fetch it again (snnkit data fetch nmnist)"
        )
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return camera_events(t, raw[:, 0], raw[:, 1], raw[:, 2] >> 7)


def split_aedat_header(data: bytes, name: str, end_marker: bytes | None) -> tuple[bytes, int]:
    """``(header bytes, offset of the first data byte)``.

    With ``end_marker`` the header ends after that line (AEDAT 3.1); without, it is every leading
    line that starts with ``#`` (AEDAT 2.0).
    """
    if end_marker is not None:
        at = data.find(end_marker)
        if not data.startswith(b"#!AER-DAT3") or at < 0:
            raise DataError(
                f"{name}: not an AEDAT 3.x file (no '#!AER-DAT3' version line or no "
                "'#!END-HEADER' line) — the file is corrupt; fetch it again"
            )
        return data[:at], at + len(end_marker)
    if not data.startswith(b"#!AER-DAT2"):
        raise DataError(
            f"{name}: not an AEDAT 2.0 file (no '#!AER-DAT2' version line) — the "
            "file is corrupt; fetch it again"
        )
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == b"#":
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise DataError(f"{name}: the header never ends — the file is truncated")
        pos = nl + 1
    return data[:pos], pos


def parse_aedat3(data: bytes, name: str = "AEDAT file") -> np.ndarray:
    """Valid polarity events of an AEDAT 3.1 file (its bytes), in file order."""
    _, pos = split_aedat_header(data, name, AEDAT3_HEADER_END)
    chunks: list[np.ndarray] = []
    n = len(data)
    hsize = AEDAT3_PACKET_HEADER.itemsize
    while pos < n:
        if pos + hsize > n:
            raise DataError(
                f"{name}: a packet header at byte {pos} is cut off — the file is "
                "truncated; fetch it again"
            )
        head = np.frombuffer(data, AEDAT3_PACKET_HEADER, count=1, offset=pos)[0]
        size, number = int(head["size"]), int(head["number"])
        if size <= 0 or number < 0:
            raise DataError(
                f"{name}: packet at byte {pos} declares {number} events of {size} "
                "bytes — the file is corrupt; fetch it again"
            )
        body = pos + hsize
        end = body + size * number
        if end > n:
            raise DataError(
                f"{name}: the packet at byte {pos} needs {end - body} bytes, only "
                f"{n - body} remain — the file is truncated; fetch it again"
            )
        if int(head["type"]) == AEDAT3_POLARITY:
            if size != AEDAT3_POLARITY_EVENT.itemsize:
                raise DataError(
                    f"{name}: polarity packet at byte {pos} has {size}-byte events, "
                    "expected 8 — the file is corrupt"
                )
            ev = np.frombuffer(data, AEDAT3_POLARITY_EVENT, count=number, offset=body)
            word = ev["data"]
            keep = (word & 1).astype(bool)
            word = word[keep]
            t = (np.int64(int(head["ts_overflow"])) << 31) | ev["t"][keep].astype(np.int64)
            chunks.append(
                camera_events(t, (word >> 17) & 0x7FFF, (word >> 2) & 0x7FFF, (word >> 1) & 1)
            )
        pos = end
    return np.concatenate(chunks) if chunks else np.empty(0, CAMERA_EVENT)


def parse_aedat2_dvs128(data: bytes, name: str = "AEDAT file") -> np.ndarray:
    """Events of an AEDAT 2.0 file from a 128×128 DVS (CIFAR10-DVS), in file order."""
    _, pos = split_aedat_header(data, name, None)
    body = len(data) - pos
    if body % 8:
        raise DataError(
            f"{name}: {body} bytes of events is not a whole number of 8-byte events "
            "— the file is truncated; fetch it again"
        )
    ev = np.frombuffer(data, dtype=np.dtype([("addr", ">u4"), ("t", ">u4")]), offset=pos)
    addr = ev["addr"].astype(np.int64)
    return camera_events(
        ev["t"].astype(np.int64), 127 - ((addr >> 1) & 0x7F), (addr >> 8) & 0x7F, addr & 1
    )


def read_bytes(path: Path) -> bytes:
    """A file's bytes, or a :class:`DataError` naming it."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(
            f"{path}: cannot be read ({err.strerror or err}) — check the file and its permissions"
        ) from None


def audio_events(times_s: np.ndarray, units: np.ndarray, name: str) -> np.ndarray:
    """An :data:`AUDIO_EVENT` array from SHD/SSC's spike times (seconds) and channel units."""
    if len(times_s) != len(units):
        raise DataError(
            f"{name}: {len(times_s)} spike times but {len(units)} units — the file "
            "is corrupt; fetch it again"
        )
    out = np.empty(len(units), dtype=AUDIO_EVENT)
    out["t"] = np.rint(np.asarray(times_s, dtype=np.float64) * 1e6).astype(np.int64)
    out["x"] = units
    return out


def read_spike_h5(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """SHD/SSC ``.h5``: ``([events of each sample], labels)``.

    The file holds ``spikes/times`` and ``spikes/units`` (one variable-length array per sample:
    spike times in seconds, channel numbers) and ``labels``. A missing dataset or mismatched
    lengths is a :class:`DataError` naming the file.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
            if missing:
                raise DataError(
                    f"{path}: no {', '.join(missing)} in the file — it is not an "
                    "SHD/SSC file or it is corrupt; fetch it again"
                )
            times, units = f["spikes/times"][()], f["spikes/units"][()]
            labels = np.asarray(f["labels"][()], dtype=np.int64)
    except OSError as err:
        raise DataError(
            f"{path}: not a readable HDF5 file ({err}) — it is truncated or corrupt; fetch it again"
        ) from None
    if not len(times) == len(units) == len(labels):
        raise DataError(
            f"{path}: {len(times)} spike-time arrays, {len(units)} unit arrays and "
            f"{len(labels)} labels — the file is corrupt; fetch it again"
        )
    events = [
        audio_events(t, u, f"{path} sample {i}")
        for i, (t, u) in enumerate(zip(times, units, strict=True))
    ]
    return events, labels
