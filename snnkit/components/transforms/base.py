"""What a transform is: an object with a ``stage`` that is called on one sample.

- ``stage = "events"``: ``t(events, sensor, rng) -> events`` on a numpy structured array with
  fields ``t, x, y, p`` (cameras) or ``t, x`` (audio), before the events are cut into frames;
  ``t.sensor(sensor) -> sensor`` is the sensor size after it (``(H, W)`` or ``(C,)``), which
  the frames (and so the shape check) use.
- ``stage = "tensor"``: ``t(x) -> x`` on the sample tensor (``[C, H, W]`` image or ``[T, C, H,
  W]`` / ``[T, C]`` frames); its randomness comes from torch's global RNG.

``random`` says whether the result depends on the random draws. A leading run of deterministic
event transforms is applied *before* a neuromorphic dataset's frame cache (and is part of the
cache key); everything else runs on every read. Randomness is seeded per sample from the run's
seed, the epoch and the sample index (:func:`snnkit.data.transformed.sample_seed`), so results do
not depend on workers, and a resumed run draws the same augmentations.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch import Tensor


class EventTransform:
    """Base of event transforms: override :meth:`apply` (and :meth:`sensor` if it changes)."""

    stage: ClassVar[str] = "events"
    random: ClassVar[bool] = False

    def sensor(self, sensor: tuple[int, ...]) -> tuple[int, ...]:
        """The sensor size after this transform (unchanged by default)."""
        return sensor

    def __call__(
        self, events: np.ndarray, sensor: tuple[int, ...], rng: np.random.Generator
    ) -> np.ndarray:
        return self.apply(events, sensor, rng)

    def apply(
        self, events: np.ndarray, sensor: tuple[int, ...], rng: np.random.Generator
    ) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class TensorTransform:
    """Base of tensor transforms: wraps a callable ``fn(x) -> x`` (e.g. a torchvision v2 one)."""

    stage: ClassVar[str] = "tensor"

    def __init__(self, fn: Any, *, random: bool = True) -> None:
        self.fn, self.random = fn, random

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fn!r})"


def camera_only(events: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` unless ``events`` are camera events (fields ``x, y, p``)."""
    names = events.dtype.names or ()
    if "y" not in names:
        raise ValueError(f"{what} needs camera events (x, y, p); these have fields {names}")
