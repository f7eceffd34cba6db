"""The map-style dataset shared by every neuromorphic dataset.

``ds[i]`` is ``(frames, label)``: ``frames`` a float32 tensor of per-frame event counts —
``[T, 2, H, W]`` indexed ``[frame, p, y, x]`` for cameras, ``[T, C]`` for audio — computed by
:mod:`snnkit.data.frames` (``T = frames`` slices cut by ``split_by``), and ``label`` an int.
``ds.events(i)`` is sample ``i``'s raw events (a numpy structured array, file order, ``t`` in
µs as in the file). What differs between datasets is the :class:`EventReader`: where the
samples lie and how one is read.

With ``cache`` on, every sample's frames are computed once and stored by
:mod:`snnkit.data.frame_cache` (built when the dataset is built, in parallel); ``ds[i]`` then
reads the stored frames, which equal the ones computed from the events.

``pre_transform`` (an :class:`~snnkit.data.transformed.EventPipeline` of deterministic event
transforms, e.g. denoise or downsample) is applied to every sample's events before framing and
caching; its specs are the cache key's ``transform`` slot, and its sensor size is the frames'.
The dataset declares ``streamed = True``: training reads it through a DataLoader.
"""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from snnkit.data import frame_cache
from snnkit.data.frames import SPLITS, SplitBy, audio_frames, camera_frames
from snnkit.errors import DataError


class EventReader(Protocol):
    """Where one split's samples lie and how to read them (picklable: workers get a copy)."""

    version: str  # changes whenever the reader would produce different events

    def __len__(self) -> int: ...

    def events(self, index: int) -> np.ndarray: ...

    def label(self, index: int) -> int: ...

    def sample_name(self, index: int) -> str: ...

    def fingerprint(self) -> str: ...


class EventDataset(Dataset):  # type: ignore[type-arg]
    """Samples of event recordings as frames; see the module documentation."""

    streamed = True

    def __init__(
        self,
        name: str,
        reader: EventReader,
        *,
        num_classes: int,
        sensor: tuple[int, ...],
        frames: int,
        split_by: SplitBy,
        split: str,
        cache: bool = True,
        extra_key: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
        pre_transform: Any = None,
    ) -> None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ValueError(f"frames must be an int >= 1, got {frames!r}")
        if split_by not in SPLITS:
            raise ValueError(f"split_by must be one of {', '.join(SPLITS)}, got {split_by!r}")
        self.name, self.reader, self.num_classes = name, reader, num_classes
        self.sensor, self.frames, self.split_by, self.split = sensor, frames, split_by, split
        self.pre_transform = pre_transform if pre_transform else None
        #: the sensor size the frames have (after ``pre_transform``)
        self.frame_sensor: tuple[int, ...] = (
            self.pre_transform.sensor(tuple(sensor)) if self.pre_transform else tuple(sensor)
        )
        self.targets = np.array([reader.label(i) for i in range(len(reader))], dtype=np.int64)
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= num_classes):
            raise ValueError(f"dataset {name}: labels outside 0…{num_classes - 1}")
        self.cache_spec: dict[str, Any] | None = None
        self._entry: frame_cache.CacheEntry | None = None
        self._entry_key: str | None = None
        if cache:
            self._open_cache(extra_key or {}, progress, workers)

    # -- the Dataset protocol --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        i = self._index(index)
        entry = self._cache_entry()
        frames = entry.frames(i) if entry is not None else self.frames_of(i).astype(np.float32)
        return torch.from_numpy(frames), int(self.targets[i])

    def events(self, index: int) -> np.ndarray:
        """Sample ``index``'s raw events (structured array, file order)."""
        return self.reader.events(self._index(index))

    def transformed_events(self, index: int) -> np.ndarray:
        """Sample ``index``'s events after ``pre_transform`` (the raw events without one)."""
        ev = self.events(index)
        return self.pre_transform(ev, tuple(self.sensor)) if self.pre_transform else ev

    def frames_of(self, index: int) -> np.ndarray:
        """Sample ``index``'s frames as integer counts, computed from its events (no cache)."""
        i = self._index(index)
        return self._count(self.transformed_events(i), self.frame_sensor, i)

    def frames_from(self, events: np.ndarray, sensor: tuple[int, ...], index: int) -> Tensor:
        """Float32 frames of ``events`` (sample ``index``'s, transformed) on a ``sensor``."""
        return torch.from_numpy(self._count(events, sensor, self._index(index)).astype(np.float32))

    def _count(self, ev: np.ndarray, sensor: tuple[int, ...], i: int) -> np.ndarray:
        what = self.reader.sample_name(i)
        if len(sensor) == 1:
            return audio_frames(ev, self.frames, self.split_by, sensor[0], what)
        return camera_frames(ev, self.frames, self.split_by, sensor, what)  # type: ignore[arg-type]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``(T, 2, H, W)`` or ``(T, C)`` (sensor after ``pre_transform``)."""
        s = self.frame_sensor
        return (self.frames, *s) if len(s) == 1 else (self.frames, 2, *s)

    @property
    def cached(self) -> bool:
        return self._entry_key is not None

    # -- cache -----------------------------------------------------------------------------
    def cache_key_spec(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything that changes the frames (the cache key is its hash)."""
        return {
            "dataset": self.name,
            "split": self.split,
            "reader": self.reader.version,
            "source": self.reader.fingerprint(),
            "frames": self.frames,
            "split_by": self.split_by,
            "sensor": list(self.sensor),
            "transform": self.pre_transform.key if self.pre_transform else None,
            **(extra or {}),
        }

    def _open_cache(
        self,
        extra: dict[str, Any],
        progress: Callable[[int, int], None] | None,
        workers: int | None,
    ) -> None:
        spec = self.cache_key_spec(extra)
        key = frame_cache.cache_key(spec)
        entry = frame_cache.load_entry(self.name, key)
        if entry is None:
            if progress is None and sys.stderr.isatty():
                progress = self._report_progress
            try:
                entry = frame_cache.build_entry(
                    self.name,
                    key,
                    self,
                    self.targets,
                    self.input_shape,
                    spec,
                    workers=workers,
                    progress=progress,
                )
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):  # nothing half-written is kept
                    folder = frame_cache.cache_dir() / self.name
                    raise DataError(
                        f"{folder}: the disk is full while building the frame cache of "
                        f"{self.name} ({err.strerror}) — free space there, point SNNKIT_CACHE at "
                        "another disk, or build the dataset with cache: false"
                    ) from None
                warnings.warn(
                    f"dataset {self.name}: the frame cache cannot be written "
                    f"({err}); frames are computed on every read",
                    stacklevel=3,
                )
                return
        self.cache_spec, self._entry, self._entry_key = spec, entry, key

    def _report_progress(self, done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(
            f"\rframe cache {self.name} {self.split}: {done}/{total} samples",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    def _cache_entry(self) -> frame_cache.CacheEntry | None:
        if self._entry is None and self._entry_key is not None:
            self._entry = frame_cache.load_entry(self.name, self._entry_key)
        return self._entry

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_entry"] = None  # memory maps are reopened in the process that unpickles
        return state

    def _index(self, index: int) -> int:
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        return i % n if n else i

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, split={self.split!r}, samples={len(self)}, "
            f"frames={self.frames}, split_by={self.split_by!r}, cached={self.cached})"
        )
