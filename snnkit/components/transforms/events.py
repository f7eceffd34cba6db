"""Event transforms: pure functions on numpy structured event arrays, and their components.

Events are in file order; ``t`` in µs (int64), ``x``/``y`` pixel columns/rows, ``p`` polarity
0/1 (cameras) or ``x`` the channel (audio). ``sensor`` is ``(H, W)`` or ``(C,)``. Every function
returns a new array (the input is never changed) of the same dtype.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from snnkit.components.transforms.base import EventTransform, camera_only

__all__ = [
    "CropEvents",
    "Denoise",
    "Downsample",
    "DropEvents",
    "FlipEvents",
    "TimeJitter",
    "crop_events",
    "denoise",
    "downsample",
    "drop_events",
    "flip_events",
    "time_jitter",
]


# -- the equations -------------------------------------------------------------------------------
def denoise(events: np.ndarray, sensor: tuple[int, ...], filter_time: int) -> np.ndarray:
    """Keep event i iff an earlier event (in file order) at one of its 4 neighbouring pixels
    happened less than ``filter_time`` µs before it.

    With ``last_q(i)`` the timestamp of the latest event before i at pixel q:
    keep i ⇔ ∃ q ∈ {(x±1, y), (x, y±1)} inside the sensor with ``last_q(i) + filter_time > t_i``
    (the rule of Tonic's ``Denoise``; the event's own pixel does not count). Vectorised: the
    latest earlier event at q is found by a binary search over events sorted by (pixel, index).
    """
    camera_only(events, "denoise")
    n = len(events)
    if n == 0:
        return events.copy()
    h, w = sensor
    x, y, t = (events[k].astype(np.int64) for k in ("x", "y", "t"))
    index = np.arange(n, dtype=np.int64)
    key = (y * w + x) * n + index  # sorted by pixel, then by position in the file
    order = np.argsort(key, kind="stable")
    sorted_key, sorted_t = key[order], t[order]
    keep = np.zeros(n, dtype=bool)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        qx, qy = x + dx, y + dy
        inside = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
        q = (qy * w + qx) * n
        pos = np.searchsorted(sorted_key, q + index) - 1  # last key < (q, i)
        found = inside & (pos >= 0)
        pos = np.clip(pos, 0, n - 1)
        found &= sorted_key[pos] // n == q // n
        keep |= found & (sorted_t[pos] + filter_time > t)
    return events[keep]


def drop_events(events: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Drop each event independently with probability ``p``: keep i ⇔ u_i >= p, u_i ~ U[0, 1)."""
    return events[rng.random(len(events)) >= p]


def downsample(events: np.ndarray, factor: int) -> np.ndarray:
    """Spatial downsampling by an integer ``factor``: x' = ⌊x / f⌋, y' = ⌊y / f⌋ (audio: the
    channel x' = ⌊x / f⌋). The sensor becomes ``(⌈H / f⌉, ⌈W / f⌉)`` (``(⌈C / f⌉,)``)."""
    out = events.copy()
    out["x"] //= factor
    if "y" in (events.dtype.names or ()):
        out["y"] //= factor
    return out


def flip_events(events: np.ndarray, sensor: tuple[int, ...], axis: str) -> np.ndarray:
    """Mirror the events: ``axis: x`` gives x' = W − 1 − x, ``axis: y`` gives y' = H − 1 − y,
    ``axis: p`` swaps the polarity p' = 1 − p."""
    camera_only(events, "flip_events")
    out = events.copy()
    h, w = sensor
    if axis == "x":
        out["x"] = w - 1 - out["x"]
    elif axis == "y":
        out["y"] = h - 1 - out["y"]
    else:
        out["p"] = 1 - out["p"]
    return out


def time_jitter(events: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Move each event in time: t' = max(0, t + round(σ ε)), ε ~ N(0, 1), σ = ``std`` µs; the
    events are then re-ordered by t' (stable), so frames split by number follow the new times."""
    out = events.copy()
    shift = np.rint(rng.standard_normal(len(events)) * std).astype(np.int64)
    out["t"] = np.maximum(out["t"].astype(np.int64) + shift, 0)
    return out[np.argsort(out["t"], kind="stable")]


def crop_events(events: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Keep the events inside the box ``x0 <= x < x0 + width``, ``y0 <= y < y0 + height`` and
    move them to its origin: x' = x − x0, y' = y − y0. The sensor becomes ``(height, width)``."""
    camera_only(events, "crop_events")
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    inside = (x >= x0) & (x < x0 + width) & (y >= y0) & (y < y0 + height)
    out = events[inside].copy()
    out["x"] -= x0
    out["y"] -= y0
    return out


# -- the components ------------------------------------------------------------------------------
def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


class Denoise(EventTransform):
    """Remove isolated events: keep those whose neighbour fired < filter_time µs before.

    See :func:`denoise`. Deterministic: applied before the frame cache."""

    def __init__(self, filter_time: int = 10_000) -> None:
        _positive("filter_time", filter_time)
        self.filter_time = int(filter_time)

    def apply(self, events, sensor, rng):  # type: ignore[no-untyped-def]
        return denoise(events, sensor, self.filter_time)


class DropEvents(EventTransform):
    """Drop each event independently with probability p (random; see drop_events)."""

    random = True

    def __init__(self, p: float = 0.1) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"p must satisfy 0 <= p < 1 (fraction of events dropped), got {p!r}")
        self.p = float(p)

    def apply(self, events, sensor, rng):  # type: ignore[no-untyped-def]
        return drop_events(events, self.p, rng)


class Downsample(EventTransform):
    """Spatial downsampling by an integer factor: x' = ⌊x / f⌋, y' = ⌊y / f⌋.

    See :func:`downsample`; changes the sensor size and so the frames' shape. Deterministic:
    applied before the frame cache."""

    def __init__(self, factor: int = 2) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be an int >= 1, got {factor!r}")
        self.factor = factor

    def sensor(self, sensor: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(-(-s // self.factor) for s in sensor)

    def apply(self, events, sensor, rng):  # type: ignore[no-untyped-def]
        return downsample(events, self.factor)


class FlipEvents(EventTransform):
    """Mirror a sample's events along x, y or the polarity, with probability p (random).

    See :func:`flip_events`."""

    random = True

    def __init__(self, axis: Literal["x", "y", "p"] = "x", p: float = 0.5) -> None:
        if axis not in ("x", "y", "p"):
            raise ValueError(f"axis must be x, y or p, got {axis!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"p must satisfy 0 <= p <= 1, got {p!r}")
        self.axis, self.p = axis, float(p)

    def apply(self, events, sensor, rng):  # type: ignore[no-untyped-def]
        return flip_events(events, sensor, self.axis) if rng.random() < self.p else events


class TimeJitter(EventTransform):
    """Gaussian jitter of every timestamp by std µs, then re-ordered by time (random).

    See :func:`time_jitter`."""

    random = True

    def __init__(self, std: float = 100.0) -> None:
        _positive("std", std)
        self.std = float(std)

    def apply(self, events, sensor, rng):  # type: ignore[no-untyped-def]
        return time_jitter(events, self.std, rng)


class CropEvents(EventTransform):
    """Keep the events in a fixed box, moved to the origin; the sensor becomes the box.

    See :func:`crop_events`. Deterministic: applied before the frame cache."""

    def __init__(self, width: int, height: int, x0: int = 0, y0: int = 0) -> None:
        for name, value, low in (("width", width, 1), ("height", height, 1), ("x0", x0, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if isinstance(y0, bool) or not isinstance(y0, int) or y0 < 0:
            raise ValueError(f"y0 must be an int >= 0, got {y0!r}")
        self.width, self.height, self.x0, self.y0 = width, height, x0, y0

    def sensor(self, sensor: tuple[int, ...]) -> tuple[int, ...]:
        if len(sensor) != 2:
            raise ValueError("crop_events needs a camera dataset (sensor H × W)")
        h, w = sensor
        if self.x0 + self.width > w or self.y0 + self.height > h:
            raise ValueError(
                f"the box x0={self.x0}, y0={self.y0}, {self.width}×{self.height} does not fit "
                f"the {w}×{h} sensor — make it smaller"
            )
        return (self.height, self.width)

    def apply(self, events, sensor, rng):  # type: ignore[no-untyped-def]
        return crop_events(events, self.x0, self.y0, self.width, self.height)
