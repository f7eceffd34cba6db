"""Fast input: the model rewrite that runs Poisson encoding and the first Linear as one event layer.

For a :class:`~snnkit.components.encoders.PoissonEncoder` in front of a multi-step
``nn.Sequential`` on the CPU whose first layers are ``[Flatten,] Linear``, the dense path
``TimeLoop(model)(encoder(x))`` is replaced by::

    out = rest(event_linear(x, linear.weight, linear.bias, T))     # [T, B, C]

where ``event_linear`` (:mod:`snnkit.kernels.event_linear`) draws the Poisson spikes of uint8
``x [B, *]`` and adds one weight column per spike (no dense spike tensor), and ``rest`` is the
model after that Linear; neuron state is cleared afterwards as in the time loop. The spikes are
drawn from the same distribution as the encoder's (not the same numbers). Input the event layer
cannot take (not uint8, not on the CPU, hooks on the model or the Linear, ...) runs the dense
path instead — except the counting hooks of :mod:`snnkit.costs.counting` without gradients
(``counts_events``): they are told the number of spikes the kernel drew (its spike masks'
set bits) and the event path stays.

:func:`build_forward` is what assembly calls: the :class:`FastInput` module where it fits and
is asked for (``train.fast_input``, single-process training), else for direct input the
:class:`~snnkit.assembly.direct_input.DirectInput` rewrite where it fits, else the dense
:class:`~snnkit.assembly.forward.EncodedForward`; with the switch on, plain conv nets on the
CPU are also put in channels-last format.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snnkit.assembly.direct_input import direct_input_module, prefer_channels_last
from snnkit.assembly.forward import EncodedForward
from snnkit.components.encoders import PoissonEncoder
from snnkit.components.functional import reset_net
from snnkit.components.layers import Flatten, Linear
from snnkit.kernels.event_linear import event_linear, event_linear_counted


class FastInput(nn.Module):
    """``x [B, *] -> [T, B, C]``: the event input layer, then the model's remaining layers.

    Built by :func:`fast_input_module`, which checks that ``model[index]`` is the Linear the
    event layer replaces (after a Flatten when ``flatten``) and that the C++ kernels exist.
    """

    def __init__(self, encoder: PoissonEncoder, model: nn.Sequential, index: int, ext: Any) -> None:
        super().__init__()
        self.dense = EncodedForward.dense(encoder, model)
        self.model = model
        self.linear: Linear = model[index]  # type: ignore[assignment]
        self.rest = list(model)[index + 1 :]
        self.flatten = index == 1
        self.time_steps = int(encoder.time_steps)
        self.ext = ext

    def forward(self, x: Tensor) -> Tensor:
        model, linear = self.model, self.linear
        w = linear.weight
        counters: list[Any] = list(linear._forward_hooks.values())
        counting = bool(counters) and all(getattr(h, "counts_events", False) for h in counters)
        plain = (
            not model._forward_hooks
            and not model._forward_pre_hooks
            and (not linear._forward_hooks or (counting and not torch.is_grad_enabled()))
            and not linear._forward_pre_hooks
        )
        if (
            x.dtype != torch.uint8
            or x.device.type != "cpu"
            or w.device.type != "cpu"
            or w.dtype not in (torch.float32, torch.float64)
            or not plain
            or x.dim() < 2
            or (not self.flatten and x.dim() != 2)
        ):
            return self.dense(x)
        if counters:  # counting hooks (snnkit.costs) take the number of input spikes instead
            out, spikes = event_linear_counted(x, w, linear.bias, self.time_steps, self.ext)
            for hook in counters:
                hook.count_events(spikes, out)
        else:
            out = event_linear(x, w, linear.bias, self.time_steps, ext=self.ext)
        for module in self.rest:
            out = module(out)
        reset_net(model)
        return out


def fast_input_module(encoder: nn.Module, model: nn.Module) -> FastInput | None:
    """The :class:`FastInput` rewrite of ``encoder`` + ``model``, or None where it does not fit.

    Fits: a plain :class:`~snnkit.components.encoders.PoissonEncoder` and a multi-step
    ``nn.Sequential`` on the CPU starting with ``[Flatten,] Linear`` (snnkit layers in step
    mode ``'m'``, no subclass overriding ``forward``), with the C++ kernels built.
    """
    from snnkit.kernels.cpu.build import cpu_extension

    if type(encoder).forward is not PoissonEncoder.forward or not isinstance(
        encoder, PoissonEncoder
    ):
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
    if mods[i].weight.device.type != "cpu":
        return None  # a CUDA model: the dense encoder (Triton) is the fast path there
    ext = cpu_extension()
    if ext is None:
        return None
    return FastInput(encoder, model, i, ext)


def build_forward(encoder: nn.Module, model: nn.Module, *, fast_input: bool) -> nn.Module:
    """The forward module ``x [B, *] -> [T, B, C]``: a fast path if asked for and one fits.

    Fast paths: the Poisson event layer (:class:`FastInput`), or for direct input the prefix
    once per sample (:class:`~snnkit.assembly.direct_input.DirectInput`); and a plain conv net
    on the CPU runs channels-last (:func:`~snnkit.assembly.direct_input.prefer_channels_last`).
    """
    if not fast_input:
        return EncodedForward.dense(encoder, model)
    prefer_channels_last(model)
    fast: nn.Module | None = fast_input_module(encoder, model) or direct_input_module(
        encoder, model
    )
    return fast if fast is not None else EncodedForward.dense(encoder, model)


def _plain_forward(module: nn.Module, cls: type[nn.Module]) -> bool:
    return (
        isinstance(module, cls)
        and type(module).forward in (cls.forward,)
        and not module._forward_hooks
        and not module._forward_pre_hooks
    )
