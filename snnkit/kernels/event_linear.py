"""Event-driven input layer: Poisson encoding of uint8 images fused with the first Linear layer.

The spikes are those of :mod:`snnkit.kernels.random_stream` (the Poisson encoder's scheme).
Forward: only pixels with v > 0 draw, and only fired spikes add a weight column into
``out[T, B, C]``; the spikes are kept as a bitmask ``[B, D, ceil(T/64)]``. Backward:
``dL/dW[:, d] = Σ_{fired (t, b, d)} dL/dout[t, b, :]`` (fired events only), ``dL/db`` the sum
of ``dL/dout`` over t and b, no gradient for the uint8 input.

:func:`dense_event_linear` computes the same layer with dense PyTorch ops from the same draws
(the test oracle). :func:`poisson_spikes_like` picks the fastest generator of the same draws
(compiled on the CPU, Triton on CUDA, else PyTorch). The rewrite that puts this layer into a
model is :func:`snnkit.assembly.fast_input.fast_input_module`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snnkit.kernels.bitpack import popcount
from snnkit.kernels.random_stream import draw_seed, poisson_spikes
from snnkit.kernels.switches import reference_forced, triton_available


def poisson_spikes_like(x: Tensor, time_steps: int, seed: int | Tensor) -> Tensor:
    """Float32 spikes ``[T, *x.shape]`` of uint8 ``x [B, *]`` from the random stream.

    Uses the compiled generator on the CPU when it is built, the Triton kernel on CUDA when
    triton is installed (it reads a tensor ``seed`` on the GPU: no synchronisation), else
    :func:`~snnkit.kernels.random_stream.poisson_spikes`: the same draws every way.
    """
    flat = x.reshape(x.shape[0], -1).contiguous()
    if reference_forced():
        return poisson_spikes(flat, time_steps, int(seed)).view(time_steps, *x.shape)
    if x.device.type == "cuda" and triton_available():
        from snnkit.kernels.cuda.triton_poisson import triton_poisson_spikes

        return triton_poisson_spikes(flat, time_steps, seed).view(time_steps, *x.shape)
    seed = int(seed)
    ext = None
    if x.device.type == "cpu":
        from snnkit.kernels.cpu.build import cpu_extension

        ext = cpu_extension()
    spikes = (
        ext.event_spikes(flat, time_steps, seed)
        if ext is not None
        else poisson_spikes(flat, time_steps, seed)
    )
    return spikes.view(time_steps, *x.shape)


def dense_event_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None, time_steps: int, seed: int
) -> Tensor:
    """The event layer in dense PyTorch: ``linear(poisson_spikes(x), weight, bias)``."""
    spikes = poisson_spikes(x.reshape(x.shape[0], -1), time_steps, seed, weight.dtype)
    return nn.functional.linear(spikes, weight, bias)


class _EventLinear(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        time_steps: int,
        seed: int,
        ext: Any,
        save: bool,
    ) -> Tensor:
        out, masks = ext.event_forward(x, weight.detach().contiguous(), time_steps, seed, save)
        if bias is not None:
            out += bias.detach().to(out.dtype)
        ctx.has_masks, ctx.d, ctx.ext = masks is not None, x.shape[1], ext
        if masks is not None:  # saved, not an attribute: the saved-tensor hooks count it
            ctx.save_for_backward(masks)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            if not ctx.has_masks:
                raise RuntimeError("snnkit event input: no spikes were saved for backward")
            (masks,) = ctx.saved_tensors
            grad_w = ctx.ext.event_backward(grad.contiguous(), masks, ctx.d)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 1))
        return None, grad_w, grad_b, None, None, None, None


def event_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    time_steps: int,
    seed: int | None = None,
    ext: Any = None,
) -> Tensor:
    """Poisson-encode uint8 ``x [B, *]`` over ``time_steps`` and apply ``Linear``: ``[T, B, C]``.

    ``seed`` defaults to :func:`~snnkit.kernels.random_stream.draw_seed`. Uses the compiled
    event kernel (``ext``, default the built one); without it, :func:`dense_event_linear`
    (same draws, dense maths).
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"event_linear expects uint8 input, got {x.dtype}")
    x2 = x.reshape(x.shape[0], -1).contiguous()
    if x2.shape[1] != weight.shape[1]:
        raise ValueError(
            f"event_linear: input has {x2.shape[1]} features per sample, the weight "
            f"expects {weight.shape[1]}"
        )
    if seed is None:
        seed = draw_seed(x.device)
    if ext is None:
        from snnkit.kernels.cpu.build import cpu_extension

        ext = cpu_extension()
    usable = (
        ext is not None
        and x.device.type == "cpu"
        and weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.float64)
    )
    if not usable:
        return dense_event_linear(x2, weight, bias, time_steps, seed)
    needs = torch.is_grad_enabled() and (
        weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    return _EventLinear.apply(x2, weight, bias, time_steps, seed, ext, needs)


@torch.no_grad()
def event_linear_counted(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    time_steps: int,
    ext: Any,
    seed: int | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`event_linear` without gradients, also returning the number of input spikes drawn.

    ``(out [T, B, C], spikes)``: ``spikes`` (0-dim int64, on x's device, not read back) is
    ``Σ_{t,b,d} S[t, b, d]``, the set bits of the kernel's spike masks (:func:`popcount`).
    """
    x2 = x.reshape(x.shape[0], -1).contiguous()
    if seed is None:
        seed = draw_seed(x.device)
    out, masks = ext.event_forward(x2, weight.detach().contiguous(), time_steps, seed, True)
    if bias is not None:
        out += bias.detach().to(out.dtype)
    return out, popcount(masks)
