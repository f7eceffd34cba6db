"""The counter-based Poisson random scheme of uint8 images (what the Poisson encoder means).

For pixel value v (uint8) the spike probability is thr(v)/65536 with
``thr(v) = round(v · 65536 / 255)`` (integer arithmetic), which equals v/255 within 2^-17;
v = 0 never fires and v = 255 always does. The spike of (step t, sample b, pixel d) is
``r < thr(v)`` with r the 16-bit draw number t % 4 of the 64-bit word::

    word = mix64(seed + ((b·D + d)·Q + t // 4 + 1) · GOLDEN),   Q = ceil(T / 4)

(``mix64`` is the SplitMix64 finaliser with multipliers ``MIX1``, ``MIX2``; all arithmetic
modulo 2^64). ``seed`` comes from one ``torch.randint`` on torch's global generator per batch,
so ``torch.manual_seed`` and saved RNG states reproduce runs; the draws do not depend on the
thread count. This module is the pure-PyTorch definition; the C++ event kernels (constants
generated into ``cpu/csrc/constants.h``) and the Triton kernel compute the same draws.
"""

from __future__ import annotations

import torch
from torch import Tensor

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
"""The counter stride (2^64 / golden ratio)."""
MIX1 = 0xBF58476D1CE4E5B9
"""First multiplier of the SplitMix64 finaliser."""
MIX2 = 0x94D049BB133111EB
"""Second multiplier of the SplitMix64 finaliser."""


def signed64(c: int) -> int:
    """The int64 with the same bits as the 64-bit unsigned ``c`` (for int64 tensor arithmetic,
    which wraps modulo 2^64 like uint64)."""
    c &= MASK64
    return c - (1 << 64) if c >= 1 << 63 else c


def draw_seed_tensor(device: torch.device | str = "cpu") -> Tensor:
    """A 64-bit seed as a 0-dim int64 tensor on ``device``, from that device's global generator
    (one ``torch.randint`` call; on CUDA it stays there, so nothing waits for the GPU)."""
    return torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64, device=device)


def draw_seed(device: torch.device | str = "cpu") -> int:
    """:func:`draw_seed_tensor` as a Python int (the same number, the same generator call)."""
    return int(draw_seed_tensor(device))


def threshold16(x: Tensor) -> Tensor:
    """thr(v) = round(v · 65536 / 255) for uint8 ``v`` as int64 (0 → 0, 255 → 65536)."""
    return (x.to(torch.int64) * 131072 + 255) // 510


def _shr(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 bit patterns."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix64(z: Tensor) -> Tensor:
    z = (z ^ _shr(z, 30)) * signed64(MIX1)
    z = (z ^ _shr(z, 27)) * signed64(MIX2)
    return z ^ _shr(z, 31)


def poisson_draws(x: Tensor, time_steps: int, seed: int) -> Tensor:
    """The 16-bit draws r ``[T, B, D]`` (int64) of the generator above, in pure PyTorch."""
    if x.dim() != 2:
        raise ValueError(f"poisson_draws expects x [B, D], got shape {tuple(x.shape)}")
    B, D = x.shape
    Q = (time_steps + 3) // 4
    ctr = torch.arange(B * D * Q, dtype=torch.int64, device=x.device).view(B, D, Q) + 1
    z = _mix64(signed64(seed) + ctr * signed64(GOLDEN))  # int64 arithmetic wraps
    parts = torch.stack([_shr(z, 16 * k) & 0xFFFF for k in range(4)], dim=-1)  # [B, D, Q, 4]
    return parts.reshape(B, D, 4 * Q)[:, :, :time_steps].permute(2, 0, 1)


def poisson_spikes(
    x: Tensor, time_steps: int, seed: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Dense spikes ``[T, B, D]`` of uint8 ``x [B, D]``: ``draw < thr(x)``, in pure PyTorch."""
    return (poisson_draws(x, time_steps, seed) < threshold16(x)).to(dtype)
