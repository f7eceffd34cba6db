"""Where batches come from: a dataset in device memory, or a DataLoader over a map-style one.

Both sources give the trainer the same thing: for one epoch, the batches of a permutation
``perm`` (drawn by the trainer from the run's seeded order generator), batch ``b`` being the
samples ``perm[b·B : (b+1)·B]``, sliced for this process by ``World.shard`` (DDP: an equal,
disjoint part of every global batch). So the batches depend only on the seed and the epoch,
whatever the source, and a resumed run that starts at batch ``b`` gets the same batches as
the run it continues.

- :class:`MemoryBatches` — the fast path: inputs and targets as two tensors on the training
  device, each batch one indexing operation (no per-sample Python).
- :class:`StreamBatches` — the streamed path: a ``torch.utils.data.DataLoader`` whose batch
  sampler yields exactly those index lists, with ``num_workers`` worker processes (persistent,
  ``prefetch`` batches each), pinned memory and non-blocking copies on CUDA. A sample is asked
  for as ``(index, epoch)``, so its transforms are seeded per sample
  (:mod:`snnkit.data.transformed`) and never by a worker's RNG.

:func:`make_batches` picks one: ``dataset.streaming`` true/false, or ``auto`` — streamed when
the dataset is not an in-memory one, declares ``streamed = True`` (event datasets, datasets
with transforms), or its tensors would take more than half of the device's free memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from snnkit.assembly.assemble import _available_bytes
from snnkit.assembly.data import data_bytes, in_memory
from snnkit.errors import RecipeError
from snnkit.recipes.loader import DataLoading

Batch = tuple[Tensor, Tensor]
Shard = Callable[[Tensor], Tensor]


def _same(batch: Tensor) -> Tensor:
    return batch


class MemoryBatches:
    """A dataset held as ``inputs`` / ``targets`` tensors on ``device``."""

    streamed = False

    def __init__(self, inputs: Tensor, targets: Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    @classmethod
    def of(cls, data: Any, device: torch.device) -> MemoryBatches:
        return cls(data.inputs.to(device), data.targets.to(device))

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def epoch(
        self, perm: Tensor, size: int, start: int, stop: int, epoch: int, shard: Shard = _same
    ) -> Iterator[Batch]:
        """Batches ``start`` … ``stop − 1`` of the epoch's permutation ``perm``."""
        perm = perm.to(self.inputs.device)
        for b in range(start, stop):
            idx = shard(perm[b * size : (b + 1) * size])
            yield self.inputs[idx], self.targets[idx]

    def in_order(self, size: int) -> Iterator[Batch]:
        """The whole set in order, ``size`` samples at a time (evaluation)."""
        for i in range(0, len(self), size):
            yield self.inputs[i : i + size], self.targets[i : i + size]

    def every(self, rank: int, size: int) -> MemoryBatches:
        """Samples ``rank``, ``rank + size``, … (a process's share of the test set)."""
        return MemoryBatches(self.inputs[rank::size], self.targets[rank::size])

    def first(self, count: int) -> Tensor:
        return self.inputs[:count]


class _Keyed(Dataset):  # type: ignore[type-arg]
    """``data`` asked for by ``(index, epoch)``: seeded transforms if it has ``sample``."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        sample = getattr(self.data, "sample", None)
        return sample(index, epoch) if sample is not None else self.data[index]


class _Batches:
    """A batch sampler whose index lists are set before each pass."""

    def __init__(self) -> None:
        self.lists: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.lists)

    def __len__(self) -> int:
        return len(self.lists)


def _worker_init(_worker: int) -> None:
    torch.set_num_threads(1)  # the main process keeps the cores for the model


class StreamBatches:
    """A map-style dataset read through a DataLoader; see the module documentation."""

    streamed = True

    def __init__(
        self,
        data: Any,
        device: torch.device,
        loading: DataLoading,
        rows: range | None = None,
    ) -> None:
        self.data, self.device, self.loading = data, device, loading
        self.rows = rows if rows is not None else range(len(data))
        self._sampler = _Batches()
        self._loader: DataLoader[Any] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _get_loader(self) -> DataLoader[Any]:
        if self._loader is None:
            workers = self.loading.num_workers
            self._loader = DataLoader(
                _Keyed(self.data),
                batch_sampler=self._sampler,
                num_workers=workers,
                pin_memory=self.loading.pin_memory and self.device.type == "cuda",
                persistent_workers=workers > 0 and self.loading.persistent_workers,
                prefetch_factor=self.loading.prefetch if workers > 0 else None,
                worker_init_fn=_worker_init if workers > 0 else None,
                generator=torch.Generator().manual_seed(0),  # never draws from the global RNG
            )
        return self._loader

    def _run(self, lists: list[list[tuple[int, int]]]) -> Iterator[Batch]:
        self._sampler.lists = lists
        blocking = not (self.device.type == "cuda" and self.loading.pin_memory)
        for x, y in self._get_loader():
            yield (
                x.to(self.device, non_blocking=not blocking),
                torch.as_tensor(y, dtype=torch.int64).to(self.device, non_blocking=not blocking),
            )

    def epoch(
        self, perm: Tensor, size: int, start: int, stop: int, epoch: int, shard: Shard = _same
    ) -> Iterator[Batch]:
        """Batches ``start`` … ``stop − 1`` of the epoch's permutation ``perm``."""
        rows = self.rows
        lists = [
            [(rows[i], epoch) for i in shard(perm[b * size : (b + 1) * size]).tolist()]
            for b in range(start, stop)
        ]
        return self._run(lists)

    def in_order(self, size: int) -> Iterator[Batch]:
        """The whole set in order, ``size`` samples at a time (untransformed epoch 0 seeds)."""
        rows = list(self.rows)
        return self._run([[(i, 0) for i in rows[j : j + size]] for j in range(0, len(rows), size)])

    def every(self, rank: int, size: int) -> StreamBatches:
        return StreamBatches(self.data, self.device, self.loading, self.rows[rank::size])

    def first(self, count: int) -> Tensor:
        x = torch.stack([_Keyed(self.data)[(self.rows[i], 0)][0] for i in range(count)])
        return x.to(self.device)


BatchSource = MemoryBatches | StreamBatches


def should_stream(data: Any, loading: DataLoading, device: torch.device) -> bool:
    """Whether ``data`` goes through the DataLoader (see the module documentation)."""
    if loading.streaming is True:
        return True
    if not in_memory(data):
        if loading.streaming is False:
            name = getattr(data, "name", "dataset")
            raise RecipeError(
                f"dataset.streaming: false, but '{name}' is not held in memory (it is read "
                "sample by sample, or has transforms) — remove streaming: false"
            )
        return True
    if loading.streaming is False:
        return False
    have = _available_bytes(device)
    return bool(have) and data_bytes(data) > have // 2


def make_batches(data: Any, device: torch.device, loading: DataLoading) -> BatchSource:
    """The batch source for ``data`` on ``device``."""
    if should_stream(data, loading, device):
        return StreamBatches(data, device, loading)
    return MemoryBatches.of(data, device)
