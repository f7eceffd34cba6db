"""Rewrite of a Poisson encoder + ``[Flatten,] Linear`` model into the event-driven input layer.

:func:`fuse_input` recognises an encoder/model pair that
:func:`snnkit.kernels.event_linear.event_linear` can replace (same spikes, same currents and
gradients, computed from the fired events only) and returns the fused forward function.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from snnkit.components.encoders import PoissonEncoder
from snnkit.components.layers import Flatten, Linear
from snnkit.kernels.event_linear import event_linear


def _plain_forward(module: nn.Module, cls: type) -> bool:
    return (isinstance(module, cls) and type(module).forward in (cls.forward,)
            and not module._forward_hooks and not module._forward_pre_hooks)


def fuse_input(encoder: nn.Module, model: nn.Module) -> Callable[[Tensor], Tensor] | None:
    """``f(x_uint8) -> out [T, B, C]`` running the event input layer then the rest of ``model``.

    Recognised: a :class:`~snnkit.components.encoders.PoissonEncoder` and a multi-step ``nn.Sequential``
    on the CPU whose first layers are ``[Flatten,] Linear`` (snnkit layers in step mode
    ``'m'``). Returns None for anything else, or when the C++ kernels are unavailable. The returned function falls
    back to ``model(encoder(x))`` for input that is not uint8 on the CPU.
    """
    from snnkit.kernels.cpu.build import cpu_extension

    if type(encoder).forward is not PoissonEncoder.forward or not isinstance(encoder, PoissonEncoder):
        return None
    if not isinstance(model, nn.Sequential) or getattr(model, "step_mode", "m") != "m":
        return None
    mods = list(model)
    i = 0
    if mods and isinstance(mods[0], Flatten):
        if not _plain_forward(mods[0], Flatten) or mods[0].step_mode != "m":
            return None
        i = 1
    if len(mods) <= i or not _plain_forward(mods[i], Linear) or mods[i].step_mode != "m":
        return None
    flatten = i == 1
    linear: Linear = mods[i]  # type: ignore[assignment]
    if linear.weight.device.type != "cpu":
        return None  # a CUDA model: the dense encoder (Triton) is the fast path there
    rest = mods[i + 1:]
    ext = cpu_extension()
    if ext is None:
        return None
    time_steps = encoder.time_steps

    def fused(x: Tensor) -> Tensor:
        w = linear.weight
        plain = (not model._forward_hooks and not model._forward_pre_hooks
                 and not linear._forward_hooks and not linear._forward_pre_hooks)
        if (x.dtype != torch.uint8 or x.device.type != "cpu" or w.device.type != "cpu"
                or w.dtype not in (torch.float32, torch.float64) or not plain
                or x.dim() < 2 or (not flatten and x.dim() != 2)):
            return model(encoder(x))
        out = event_linear(x, w, linear.bias, time_steps, ext=ext)
        for module in rest:
            out = module(out)
        return out

    return fused
