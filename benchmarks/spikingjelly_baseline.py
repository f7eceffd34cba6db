"""SpikingJelly 2.0 multi-step baseline for the default recipe, timed on the same MNIST tensors.

The reference network is built with SpikingJelly's own ``activation_based`` API (used only as
a library, imported lazily): multi-step Poisson encoder, Flatten → Linear(784, 10, bias=False)
→ LIFNode(tau=2, v_threshold=1, v_reset=0, Sigmoid surrogate alpha=4), all ``step_mode='m'``,
T=100, batch 64, Adam lr 1e-3, loss MSE(mean_t S[t], one_hot(y)), ``functional.reset_net``
after each batch. Each timed batch is one full training step (encode, forward, loss,
backward, Adam step, reset); the figure is the median over the timed batches after the warm-up
batches, extrapolated to an epoch of ``ceil(N / 64)`` batches (938 for MNIST).

SpikingJelly is not a dependency of snnkit: install it in a separate environment that reuses
this machine's torch, e.g. ::

    python -m venv --system-site-packages /work/sjenv
    /work/sjenv/bin/pip install spikingjelly==2.0.0

Standalone use (prints the same figures ``bench_epoch.py`` prints)::

    SNNKIT_DATA=/work/shared/data /work/sjenv/bin/python benchmarks/spikingjelly_baseline.py \
        [--batches 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

BATCH_SIZE = 64
TIME_STEPS = 100
EPOCH_BATCHES = 938  # ceil(60000 / 64): one MNIST training epoch
WARMUP_BATCHES = 2


@dataclass(frozen=True)
class BaselineTiming:
    """SpikingJelly's per-batch timing (seconds, medians over the timed batches)."""

    version: str
    timed_batches: int
    batch_s: float
    epoch_s: float
    encode_s: float
    forward_s: float
    backward_s: float
    step_s: float

    def summary(self) -> str:
        """One line: s/epoch (extrapolated), ms/batch and its breakdown."""
        return (
            f"SpikingJelly {self.version} multi-step: {self.epoch_s:.2f} s/epoch "
            f"(extrapolated from {self.timed_batches} batches: {self.batch_s * 1e3:.2f} "
            f"ms/batch = encode {self.encode_s * 1e3:.2f} + forward+loss "
            f"{self.forward_s * 1e3:.2f} + backward {self.backward_s * 1e3:.2f} + "
            f"Adam+reset {self.step_s * 1e3:.2f}, medians)"
        )


def available() -> bool:
    """Whether ``spikingjelly`` can be imported (without importing it)."""
    return importlib.util.find_spec("spikingjelly") is not None


def build_network() -> torch.nn.Module:
    """The recipe's network in SpikingJelly 2.0, every module in multi-step mode."""
    from spikingjelly.activation_based import layer, neuron, surrogate

    return torch.nn.Sequential(
        layer.Flatten(step_mode="m"),
        layer.Linear(784, 10, bias=False, step_mode="m"),
        neuron.LIFNode(
            tau=2.0,
            decay_input=True,
            v_threshold=1.0,
            v_reset=0.0,
            surrogate_function=surrogate.Sigmoid(alpha=4.0),
            step_mode="m",
        ),
    )


def _as_float(x: Tensor) -> Tensor:
    """Images as intensities in [0, 1] (uint8 is read as value / 255)."""
    return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.float()


class Baseline:
    """SpikingJelly's network, encoder and Adam, trained one timed batch at a time.

    ``step(x, y)`` runs one full training step on a batch (``x [64, 1, 28, 28]`` uint8 or float
    in [0, 1], ``y [64]`` labels) and returns its four phases in seconds: encode, forward + loss,
    backward, Adam step + reset.
    """

    def __init__(self, seed: int = 0) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from spikingjelly.activation_based import encoding, functional

        try:
            self.version = version("spikingjelly")
        except PackageNotFoundError:
            self.version = "?"
        torch.manual_seed(seed)
        self.net = build_network()
        self.encoder = encoding.PoissonEncoder(step_mode="m")
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.reset = functional.reset_net
        self.net.train()

    def step(self, x: Tensor, y: Tensor) -> tuple[float, float, float, float]:
        """One training step on ``(x, y)``: ``(encode, forward + loss, backward, Adam + reset)``."""
        t0 = time.perf_counter()
        img = _as_float(x)
        x_seq = self.encoder(img.unsqueeze(0).expand(TIME_STEPS, *img.shape))  # [T, B, 1, 28, 28]
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        out_fr = self.net(x_seq).mean(0)
        loss = F.mse_loss(out_fr, F.one_hot(y, 10).float())
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        self.optimizer.step()
        self.reset(self.net)
        t4 = time.perf_counter()
        return (t1 - t0, t2 - t1, t3 - t2, t4 - t3)


def time_baseline(
    xs: Tensor, ys: Tensor, batches: int = 30, *, seed: int = 0, epoch_batches: int | None = None
) -> BaselineTiming:
    """Train SpikingJelly's network on ``batches`` batches of ``(xs, ys)`` and time it.

    ``xs`` is ``[N, 1, 28, 28]`` (uint8 or float in [0, 1]), ``ys`` ``[N]`` int64 labels; the
    batches are taken in order. The first ``WARMUP_BATCHES`` are not timed. ``epoch_batches``
    defaults to ``ceil(len(ys) / 64)``.
    """
    if batches <= WARMUP_BATCHES:
        raise ValueError(
            f"batches must be > {WARMUP_BATCHES} (warm-up batches are not timed), got {batches}"
        )
    if batches * BATCH_SIZE > len(ys):
        raise ValueError(
            f"batches must be <= {len(ys) // BATCH_SIZE} for {len(ys)} samples, got {batches}"
        )
    base = Baseline(seed)
    rows: list[tuple[float, float, float, float]] = []
    for b in range(batches):
        x = xs[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
        y = ys[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
        row = base.step(x, y)
        if b >= WARMUP_BATCHES:
            rows.append(row)
    totals = [sum(r) for r in rows]
    med = [statistics.median(col) for col in zip(*rows)]
    per_batch = statistics.median(totals)
    n_epoch = epoch_batches if epoch_batches is not None else math.ceil(len(ys) / BATCH_SIZE)
    return BaselineTiming(
        version=base.version,
        timed_batches=len(rows),
        batch_s=per_batch,
        epoch_s=per_batch * n_epoch,
        encode_s=med[0],
        forward_s=med[1],
        backward_s=med[2],
        step_s=med[3],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not available():
        raise SystemExit("spikingjelly is not importable in this environment")
    torch.set_num_threads(args.threads)
    from snnkit.assembly.assemble import on_device

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_epoch import _experiment

    exp = _experiment()
    xs, ys = on_device(exp.train_data, torch.device("cpu"))
    order = torch.randperm(len(ys), generator=torch.Generator().manual_seed(0))
    print(time_baseline(xs[order], ys[order], args.batches).summary())


if __name__ == "__main__":
    main()
