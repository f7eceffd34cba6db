"""Events -> frames: ``T`` per-frame event counts, split by event number or by time.

``split_by="number"``: the events (in file order) are cut into ``T`` consecutive slices whose
counts differ by at most one — with ``n = qT + r`` events the first ``r`` slices hold ``q + 1``
events and the others ``q`` (no slice collects a remainder).

``split_by="time"``: ``T`` windows of equal duration ``D / T`` between the earliest and the
latest timestamp (``D = t_max − t_min``); an event at ``t`` falls in window
``min(T − 1, ⌊(t − t_min) · T / D⌋)`` (integer arithmetic, so the last event belongs to the last
window). A window without events is an empty frame. When ``D = 0`` every event is in window 0.

Frames count events: ``[T, 2, H, W]`` indexed ``[frame, p, y, x]`` for cameras, ``[T, C]``
indexed ``[frame, channel]`` for audio. An empty event array gives all-zero frames.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from snnkit.errors import DataError

SplitBy = Literal["number", "time"]
SPLITS: tuple[str, ...] = ("number", "time")


def frame_index(t: np.ndarray, frames: int, split_by: SplitBy) -> np.ndarray:
    """The frame (0 … ``frames − 1``) of each event, given the events' timestamps ``t``."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    n = len(t)
    if split_by == "number":
        q, r = divmod(n, frames)
        i = np.arange(n, dtype=np.int64)
        # first r slices hold q + 1 events (ending at index r (q + 1)), the rest q
        big = (q + 1) * r
        return np.where(i < big, i // (q + 1), r + (i - big) // max(q, 1)).astype(np.int64)
    if split_by == "time":
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        t = t.astype(np.int64)
        t0, span = int(t.min()), int(t.max()) - int(t.min())
        if span == 0:
            return np.zeros(n, dtype=np.int64)
        return np.minimum((t - t0) * frames // span, frames - 1)
    raise ValueError(f"split_by must be one of {', '.join(SPLITS)}, got {split_by!r}")


def camera_frames(
    events: np.ndarray,
    frames: int,
    split_by: SplitBy,
    sensor: tuple[int, int],
    name: str = "sample",
) -> np.ndarray:
    """Counts ``[frames, 2, H, W]`` (int16 when they fit, else int32) of camera ``events``.

    ``sensor`` is ``(H, W)``; an event outside it is a :class:`DataError` naming ``name``.
    """
    h, w = sensor
    x, y, p = (events[k].astype(np.int64) for k in ("x", "y", "p"))
    if len(x) and (
        x.min() < 0 or x.max() >= w or y.min() < 0 or y.max() >= h or p.min() < 0 or p.max() > 1
    ):
        raise DataError(
            f"{name}: events outside the {w}×{h} sensor or with polarity not 0/1 — "
            "the file is corrupt or belongs to another dataset"
        )
    f = frame_index(events["t"], frames, split_by)
    flat = ((f * 2 + p) * h + y) * w + x
    counts = np.bincount(flat, minlength=frames * 2 * h * w)
    return _narrow(counts).reshape(frames, 2, h, w)


def audio_frames(
    events: np.ndarray, frames: int, split_by: SplitBy, channels: int, name: str = "sample"
) -> np.ndarray:
    """Counts ``[frames, channels]`` of audio ``events`` (fields ``t``, ``x`` = channel)."""
    x = events["x"].astype(np.int64)
    if len(x) and (x.min() < 0 or x.max() >= channels):
        raise DataError(
            f"{name}: a channel outside 0…{channels - 1} — the file is corrupt or "
            "belongs to another dataset"
        )
    f = frame_index(events["t"], frames, split_by)
    counts = np.bincount(f * channels + x, minlength=frames * channels)
    return _narrow(counts).reshape(frames, channels)


def _narrow(counts: np.ndarray) -> np.ndarray:
    return counts.astype(np.int16 if counts.max(initial=0) <= np.iinfo(np.int16).max else np.int32)
