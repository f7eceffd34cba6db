"""Event-driven input layer: Poisson encoding of uint8 images fused with the first Linear layer.

For pixel value v (uint8) the spike probability is thr(v)/65536 with
``thr(v) = round(v · 65536 / 255)`` (integer arithmetic), which equals v/255 within 2^-17;
v = 0 never fires and v = 255 always does. The spike of (step t, sample b, pixel d) is
``r < thr(v)`` with r the 16-bit draw number t % 4 of the 64-bit word::

    word = mix64(seed + ((b·D + d)·Q + t // 4 + 1) · 0x9E3779B97F4A7C15),   Q = ceil(T / 4)

(``mix64`` is the SplitMix64 finaliser; all arithmetic modulo 2^64). ``seed`` comes from one
``torch.randint`` on torch's global generator per batch, so ``torch.manual_seed`` and saved RNG
states reproduce runs; the draws do not depend on the thread count.

Forward: only pixels with v > 0 draw, and only fired spikes add a weight column into
``out[T, B, C]``; the spikes are kept as a bitmask ``[B, D, ceil(T/64)]``. Backward:
``dL/dW[:, d] = Σ_{fired (t, b, d)} dL/dout[t, b, :]`` (fired events only), ``dL/db`` the sum
of ``dL/dout`` over t and b, no gradient for the uint8 input.

:func:`dense_event_linear` computes the same layer with dense PyTorch ops from the same draws
(the test oracle). The model rewrite that uses this layer in training is
:mod:`snnkit.assembly.fast_input`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


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


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


def _shr(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 bit patterns."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix64(z: Tensor) -> Tensor:
    z = (z ^ _shr(z, 30)) * _signed(_M1)
    z = (z ^ _shr(z, 27)) * _signed(_M2)
    return z ^ _shr(z, 31)


def poisson_draws(x: Tensor, time_steps: int, seed: int) -> Tensor:
    """The 16-bit draws r ``[T, B, D]`` (int64) of the generator above, in pure PyTorch."""
    if x.dim() != 2:
        raise ValueError(f"poisson_draws expects x [B, D], got shape {tuple(x.shape)}")
    B, D = x.shape
    Q = (time_steps + 3) // 4
    ctr = torch.arange(B * D * Q, dtype=torch.int64, device=x.device).view(B, D, Q) + 1
    z = _mix64(_signed(seed & _MASK64) + ctr * _signed(_GOLDEN))  # int64 arithmetic wraps
    parts = torch.stack([_shr(z, 16 * k) & 0xFFFF for k in range(4)], dim=-1)  # [B, D, Q, 4]
    return parts.reshape(B, D, 4 * Q)[:, :, :time_steps].permute(2, 0, 1)


def poisson_spikes(x: Tensor, time_steps: int, seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Dense spikes ``[T, B, D]`` of uint8 ``x [B, D]``: ``draw < thr(x)``, in pure PyTorch."""
    return (poisson_draws(x, time_steps, seed) < threshold16(x)).to(dtype)


def poisson_spikes_like(x: Tensor, time_steps: int, seed: int | Tensor) -> Tensor:
    """Float32 spikes ``[T, *x.shape]`` of uint8 ``x [B, *]`` from the generator above.

    Uses the compiled generator on the CPU when it is built, the Triton kernel on CUDA when
    triton is installed (it reads a tensor ``seed`` on the GPU: no synchronisation), else
    :func:`poisson_spikes`: the same draws every way.
    """
    from snnkit.kernels import reference_forced, triton_available

    flat = x.reshape(x.shape[0], -1).contiguous()
    if reference_forced():
        return poisson_spikes(flat, time_steps, int(seed)).view(time_steps, *x.shape)
    if x.device.type == "cuda":
        if triton_available():
            from snnkit.kernels.cuda.triton_poisson import triton_poisson_spikes

            return triton_poisson_spikes(flat, time_steps, seed).view(time_steps, *x.shape)
    seed = int(seed)
    ext = None
    if x.device.type == "cpu":
        from snnkit.kernels.cpu.build import cpu_extension

        ext = cpu_extension()
    spikes = ext.event_spikes(flat, time_steps, seed) if ext is not None else \
        poisson_spikes(flat, time_steps, seed)
    return spikes.view(time_steps, *x.shape)


def dense_event_linear(x: Tensor, weight: Tensor, bias: Tensor | None, time_steps: int,
                       seed: int) -> Tensor:
    """The event layer in dense PyTorch: ``linear(poisson_spikes(x), weight, bias)``."""
    spikes = poisson_spikes(x.reshape(x.shape[0], -1), time_steps, seed, weight.dtype)
    return nn.functional.linear(spikes, weight, bias)


class _EventLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, time_steps: int,
                seed: int, ext: Any, save: bool) -> Tensor:  # type: ignore[override]
        out, masks = ext.event_forward(x, weight.detach().contiguous(), time_steps, seed, save)
        if bias is not None:
            out += bias.detach().to(out.dtype)
        ctx.masks, ctx.d, ctx.ext = masks, x.shape[1], ext
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            if ctx.masks is None:
                raise RuntimeError("snnkit event input: no spikes were saved for backward")
            grad_w = ctx.ext.event_backward(grad.contiguous(), ctx.masks, ctx.d)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 1))
        return None, grad_w, grad_b, None, None, None, None


def event_linear(x: Tensor, weight: Tensor, bias: Tensor | None, time_steps: int,
                 seed: int | None = None, ext: Any = None) -> Tensor:
    """Poisson-encode uint8 ``x [B, *]`` over ``time_steps`` and apply ``Linear``: ``[T, B, C]``.

    ``seed`` defaults to :func:`draw_seed`. Uses the compiled event kernel (``ext``, default
    the built one); without it, :func:`dense_event_linear` (same draws, dense maths).
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"event_linear expects uint8 input, got {x.dtype}")
    x2 = x.reshape(x.shape[0], -1).contiguous()
    if x2.shape[1] != weight.shape[1]:
        raise ValueError(f"event_linear: input has {x2.shape[1]} features per sample, the weight "
                         f"expects {weight.shape[1]}")
    if seed is None:
        seed = draw_seed(x.device)
    if ext is None:
        from snnkit.kernels.cpu.build import cpu_extension

        ext = cpu_extension()
    usable = (ext is not None and x.device.type == "cpu" and weight.device.type == "cpu"
              and weight.dtype in (torch.float32, torch.float64))
    if not usable:
        return dense_event_linear(x2, weight, bias, time_steps, seed)
    needs = torch.is_grad_enabled() and (weight.requires_grad
                                         or (bias is not None and bias.requires_grad))
    return _EventLinear.apply(x2, weight, bias, time_steps, seed, ext, needs)
