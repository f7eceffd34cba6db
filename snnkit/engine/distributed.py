"""Multi-process data parallel training with ``torch.distributed`` (launched by ``torchrun``).

``torchrun --nproc-per-node N -m snnkit run RECIPE`` starts N processes; each finds its rank in
the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins one process group (gloo on
CPU, nccl on CUDA). Semantics:

- ``train.batch_size`` is the **global** batch: every rank draws the same permutation of the
  epoch (same seeded generator) and takes an equal, disjoint slice of each global batch
  (``batch_size / world_size`` samples, so the world size must divide the batch size).
- Gradients are averaged across ranks (DDP), so with a loss that is a mean over the batch one
  step equals one single-process step on the global batch, and the learning rate means the
  same as in a single process: no rescaling.
- Metrics are summed across ranks; only rank 0 writes the run folder, logs and checkpoints.
- Every collective has a timeout (``SNNKIT_DIST_TIMEOUT`` seconds, default 120), so a crashed
  rank ends the run with an error instead of a hang; torchrun also stops the other ranks.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from snnkit.assembly.forward import EncodedForward, TimeLoop
from snnkit.errors import RecipeError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's equal slice of a global batch of indices."""
        if not self.distributed:
            return batch
        per_rank = len(batch) // self.size
        return batch[self.rank * per_rank : (self.rank + 1) * per_rank]

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over all ranks."""
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def sum_(self, t: torch.Tensor) -> None:
        """Sum ``t`` over all ranks, in place."""
        if self.distributed:
            dist.all_reduce(t)


def current_world() -> World:
    """The world described by torchrun's environment variables (a single process otherwise)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def setup(world: World, device: torch.device, batch_size: int) -> None:
    """Join the process group for ``world`` (no-op for one process)."""
    if not world.distributed or dist.is_initialized():
        return
    if batch_size % world.size:
        raise RecipeError(
            f"train.batch_size: {batch_size} is the global batch and must be "
            f"divisible by the {world.size} processes — use a multiple of "
            f"{world.size}"
        )
    timeout = datetime.timedelta(seconds=float(os.environ.get("SNNKIT_DIST_TIMEOUT", "120")))
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timeout)


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def device_for(world: World, device: torch.device) -> torch.device:
    """On CUDA each process uses the GPU of its local rank."""
    if device.type == "cuda" and world.distributed:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def ddp_forward(encoder: nn.Module, model: nn.Module, device: torch.device) -> nn.Module:
    """The forward module of a distributed run: ``x [B, *] -> [T, B, C]``.

    The model's time loop is wrapped in DistributedDataParallel (it must see every forward to
    average the gradients); the encoder stays outside it, and the dense path is kept (no fast
    input).
    """
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    loop = DistributedDataParallel(TimeLoop(model), device_ids=ids)
    return EncodedForward(encoder, loop)
