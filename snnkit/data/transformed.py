"""Datasets seen through a recipe's transforms, and the per-sample seeds that make them exact.

:class:`TransformedDataset` wraps any map-style dataset (``len``, ``ds[i] -> (x, label)``,
``num_classes``, ``targets``) with a list of per-sample transforms (the ``transform`` component
kind; contract in :mod:`snnkit.components.transforms.base`). Event transforms need an
:class:`~snnkit.data.neuromorphic.dataset.EventDataset` (its events are transformed, then cut
into frames); tensor transforms run on the sample tensor.

Randomness is a pure function of the run: sample ``i`` drawn in epoch ``e`` of a run seeded
``s`` is transformed under torch's and numpy's generators seeded with
:func:`sample_seed` ``(s, e, i)`` — so the result does not depend on the number of
DataLoader workers, on which worker reads the sample, or on where a resumed run restarted.
Torch's global RNG state of the calling process is restored afterwards.

:class:`EventPipeline` is the leading run of deterministic event transforms, which an
``EventDataset`` applies before its frame cache (the cache key holds ``EventPipeline.key``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

_MASK = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` in ``epoch`` of a run seeded ``seed``.

    z = (seed · 0x9E3779B97F4A7C15 + epoch · 0xBF58476D1CE4E5B9 + index) mod 2^64, then
    SplitMix64's finaliser: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
    z *= 0x94D049BB133111EB; z ^= z >> 31 (all mod 2^64); the result is z >> 1.
    """
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) >> 1


class EventPipeline:
    """Deterministic event transforms applied in order; ``key`` is their recipe specs."""

    def __init__(self, transforms: Sequence[Any], specs: Sequence[dict[str, Any]]) -> None:
        self.transforms, self.key = list(transforms), [dict(s) for s in specs]

    def sensor(self, sensor: tuple[int, ...]) -> tuple[int, ...]:
        for t in self.transforms:
            sensor = tuple(t.sensor(sensor))
        return sensor

    def __call__(self, events: np.ndarray, sensor: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng(0)  # unused: every transform here is deterministic
        for t in self.transforms:
            events = t(events, sensor, rng)
            sensor = tuple(t.sensor(sensor))
        return events

    def __bool__(self) -> bool:
        return bool(self.transforms)


def split_pre_cache(transforms: Sequence[Any]) -> int:
    """How many leading transforms are deterministic event transforms (applied pre-cache)."""
    n = 0
    for t in transforms:
        if getattr(t, "stage", "tensor") != "events" or getattr(t, "random", True):
            break
        n += 1
    return n


class TransformedDataset(Dataset):  # type: ignore[type-arg]
    """``base`` with per-sample ``transforms`` (event ones first); always streamed.

    ``ds[i]`` transforms as in epoch 0; ``ds.sample(i, epoch)`` as in ``epoch`` (what the data
    path asks for). ``input_shape`` is the shape of the transformed sample 0.
    """

    streamed = True

    def __init__(self, base: Any, transforms: Sequence[Any], seed: int = 0) -> None:
        self.base, self.seed = base, int(seed)
        self.transforms = list(transforms)
        stages = [getattr(t, "stage", "tensor") for t in self.transforms]
        if "events" in stages and "tensor" in stages[: stages.index("events")]:
            raise ValueError("event transforms must come before tensor transforms")
        self.event_transforms = [t for t in self.transforms if t.stage == "events"]
        self.tensor_transforms = [t for t in self.transforms if t.stage != "events"]
        if self.event_transforms and not hasattr(base, "frames_from"):
            raise ValueError(
                "event transforms need an event dataset (nmnist, dvs_gesture, cifar10_dvs, shd, "
                "ssc); use image transforms here"
            )
        self.num_classes, self.targets = base.num_classes, base.targets
        self.name = getattr(base, "name", "dataset")
        self._shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Tensor, Any]:
        return self.sample(index, 0)

    def sample(self, index: int, epoch: int) -> tuple[Tensor, Any]:
        """Sample ``index`` as transformed in ``epoch`` (seeded by :func:`sample_seed`)."""
        seed = sample_seed(self.seed, epoch, int(index))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.event_transforms:
                rng = np.random.default_rng(seed)
                events, sensor = self.base.transformed_events(index), self.base.frame_sensor
                for t in self.event_transforms:
                    events = t(events, sensor, rng)
                    sensor = tuple(t.sensor(sensor))
                x, label = self.base.frames_from(events, sensor, index), self.base.targets[index]
                label = int(label)
            else:
                x, label = self.base[index]
            for t in self.tensor_transforms:
                x = t(x)
        return x, label

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self._shape is None:
            self._shape = tuple(self[0][0].shape) if len(self) else tuple(self.base.input_shape)
        return self._shape

    def __repr__(self) -> str:
        return f"TransformedDataset({self.base!r}, {self.transforms!r})"
