"""Poisson spikes of uint8 images on CUDA in one Triton launch (the scheme of random_stream).

Each program handles a block of (sample b, pixel d, word q) counters and writes the spikes of
steps ``4q .. 4q + 3`` (those < T) into ``out [T, B, D]``::

    word = mix64(seed + ((b·D + d)·Q + q + 1) · GOLDEN),   Q = ceil(T / 4)
    S[4q + k, b, d] = ((word >> 16k) & 0xFFFF) < round(v · 65536 / 255)

exactly as :func:`snnkit.kernels.random_stream.poisson_draws` (pure PyTorch, ~25 launches over
int64 tensors) and the C++ generator, so CPU and GPU runs see the same spikes for the same seed.
The 64-bit constants travel as signed int64 arguments and are reinterpreted as uint64 in the
kernel (multiplication modulo 2^64 is the same bits either way; the shifts must be logical).
Imported lazily: only when a CUDA uint8 tensor reaches the Poisson encoder.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from snnkit.kernels.random_stream import GOLDEN, MIX1, MIX2, signed64

BLOCK = 1024


@triton.jit
def _u64(c):
    # an int argument arrives as int32 or int64 by value: widen (sign-extending) then reinterpret
    return c.to(tl.int64).to(tl.uint64, bitcast=True)


@triton.jit(do_not_specialize=["golden", "m1", "m2"])
def _poisson_kernel(x_ptr, out_ptr, seed_ptr, golden, m1, m2, BD, T, Q, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # counter index - 1
    mask = offs < BD.to(tl.int64) * Q
    bd = offs // Q
    q = offs - bd * Q
    v = tl.load(x_ptr + bd, mask=mask, other=0).to(tl.int64)
    thr = (v * 131072 + 255) // 510
    ctr = (offs + 1).to(tl.uint64, bitcast=True)
    seed = tl.load(seed_ptr)
    z = _u64(seed) + ctr * _u64(golden)
    z = (z ^ (z >> 30)) * _u64(m1)
    z = (z ^ (z >> 27)) * _u64(m2)
    z = z ^ (z >> 31)
    for k in tl.static_range(4):
        t = q * 4 + k
        r = ((z >> (16 * k)) & 0xFFFF).to(tl.int64)
        s = tl.where(r < thr, 1.0, 0.0)
        tl.store(out_ptr + t * BD + bd, s, mask=mask & (t < T))


def triton_poisson_spikes(x: Tensor, time_steps: int, seed: int | Tensor) -> Tensor:
    """Float32 spikes ``[T, B, D]`` of uint8 ``x [B, D]`` on CUDA (one launch; CPU tensors only
    under ``TRITON_INTERPRET=1``). ``seed``: an int, or a 0-dim int64 tensor the kernel reads
    on the device (no synchronisation)."""
    if x.dtype != torch.uint8 or x.dim() != 2:
        raise ValueError(
            f"triton_poisson_spikes expects uint8 [B, D], got {x.dtype} {tuple(x.shape)}"
        )
    x = x.contiguous()
    B, D = x.shape
    Q = (time_steps + 3) // 4
    out = torch.empty(time_steps, B, D, dtype=torch.float32, device=x.device)
    if isinstance(seed, Tensor):
        seed_t = seed.to(device=x.device, dtype=torch.int64).reshape(1)
    else:
        seed_t = torch.tensor([signed64(seed)], dtype=torch.int64, device=x.device)
    n = B * D * Q
    if n:
        _poisson_kernel[(triton.cdiv(n, BLOCK),)](
            x,
            out,
            seed_t,
            signed64(GOLDEN),
            signed64(MIX1),
            signed64(MIX2),
            B * D,
            time_steps,
            Q,
            BLOCK=BLOCK,
        )
    return out
