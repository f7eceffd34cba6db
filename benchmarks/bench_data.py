"""Samples per second through each data path, against the in-memory path in the same run.

Paths (one pass over ``--samples`` samples in batches of ``--batch``, the trainer's batch
sources from :mod:`snnkit.engine.batches`, on the CPU):

- ``in-memory``: MNIST-shaped uint8 images ``[1, 28, 28]`` as one tensor, batched by index
  (the default path; the baseline of every ratio);
- ``streamed, 0 / 2 workers``: the same images through the DataLoader (``dataset.streaming:
  true``), in the main process or in 2 worker processes;
- ``streamed + crop/flip, 2 workers``: CIFAR-shaped images ``[3, 32, 32]`` with
  ``random_crop`` (padding 4) and ``horizontal_flip`` per sample;
- ``N-MNIST frames from events, 0 / 2 workers``: an N-MNIST ``Train.zip`` written here in the
  official 40-bit format (``--events`` events per sample), framed (T = 10) on every read;
- ``N-MNIST cached frames, 0 / 2 workers``: the same after the frame cache is built.

Usage::

    python benchmarks/bench_data.py [--samples 4000] [--batch 64] [--events 4000] \
        [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnkit.components.transforms.images import horizontal_flip, random_crop
from snnkit.data.images import InMemoryDataset
from snnkit.data.neuromorphic.factories import nmnist
from snnkit.data.transformed import TransformedDataset
from snnkit.engine.batches import MemoryBatches, StreamBatches
from snnkit.recipes.loader import DataLoading


def nmnist_zip(path: Path, samples: int, events: int, rng: np.random.Generator) -> None:
    """``Train.zip`` with ``samples`` recordings of ``events`` random events each (40-bit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(samples):
            t = np.sort(rng.integers(0, 300_000, events))
            x, y, p = (rng.integers(0, hi, events) for hi in (34, 34, 2))
            raw = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(
                np.uint8
            )
            z.writestr(f"Train/{i % 10}/{i:05d}.bin", raw.tobytes())


REPEATS = 3


def rate(source: MemoryBatches | StreamBatches, n: int, batch: int) -> float:
    """Samples per second: the best of ``REPEATS`` passes in a fixed random order (the first
    batch of each pass, which starts the workers, is not timed)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    batches = (n + batch - 1) // batch
    best = 0.0
    for _ in range(REPEATS):
        it = source.epoch(perm, batch, 0, batches, 1)
        next(it)
        t0 = time.perf_counter()
        seen = sum(len(y) for _, y in it)
        best = max(best, seen / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--events", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global REPEATS
    REPEATS = args.repeats
    n, bs = args.samples, args.batch
    cpu = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    mnist = InMemoryDataset(
        torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
        torch.randint(0, 10, (n,), generator=g),
        10,
    )
    cifar = InMemoryDataset(
        torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
        torch.randint(0, 10, (n,), generator=g),
        10,
    )
    augmented = TransformedDataset(cifar, [random_crop(32, padding=4), horizontal_flip()])
    w0, w2 = DataLoading(streaming=True), DataLoading(streaming=True, num_workers=2)
    rows: list[tuple[str, float]] = [
        ("in-memory (baseline)", rate(MemoryBatches.of(mnist, cpu), n, bs)),
        ("streamed, 0 workers", rate(StreamBatches(mnist, cpu, w0), n, bs)),
        ("streamed, 2 workers", rate(StreamBatches(mnist, cpu, w2), n, bs)),
        ("streamed + crop/flip, 2 workers", rate(StreamBatches(augmented, cpu, w2), n, bs)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SNNKIT_CACHE"] = str(Path(tmp) / "cache")
        events_n = min(n, 2000)
        nmnist_zip(
            Path(tmp) / "NMNIST" / "Train.zip", events_n, args.events, np.random.default_rng(0)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = nmnist(True, root=tmp, download=False, frames=10, cache=False)
            t0 = time.perf_counter()
            cached = nmnist(True, root=tmp, download=False, frames=10, cache=True)
            build = time.perf_counter() - t0
        rows += [
            (
                "N-MNIST frames from events, 0 workers",
                rate(StreamBatches(raw, cpu, w0), events_n, bs),
            ),
            (
                "N-MNIST frames from events, 2 workers",
                rate(StreamBatches(raw, cpu, w2), events_n, bs),
            ),
            (
                "N-MNIST cached frames, 0 workers",
                rate(StreamBatches(cached, cpu, w0), events_n, bs),
            ),
            (
                "N-MNIST cached frames, 2 workers",
                rate(StreamBatches(cached, cpu, w2), events_n, bs),
            ),
        ]
    base = rows[0][1]
    print(
        f"{n} samples (N-MNIST: {events_n} of {args.events} events), batch {bs}, "
        f"torch threads {torch.get_num_threads()}, cache build {build:.1f} s"
    )
    print(f"{'path':<42} {'samples/s':>12} {'vs in-memory':>13}")
    for name, r in rows:
        print(f"{name:<42} {r:>12,.0f} {r / base:>12.3g}x")


if __name__ == "__main__":
    main()
