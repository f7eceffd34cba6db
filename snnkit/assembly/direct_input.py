"""Direct input: the layers in front of the first neuron run once per sample, not once per step.

A :class:`~snnkit.components.encoders.DirectEncoder` repeats the analog image at every step,
``seq[t] = x`` for t = 0 … T−1, so every layer before the first neuron sees T identical copies.
For per-sample layers (convolution, linear, pooling, flatten, random shift and dropout, whose
draws in step mode ``'m'`` are one per sample and shared by all steps) the output for the
copies is the output for one copy, repeated. :class:`DirectInput` therefore runs that prefix on
``[1, B, *]`` and broadcasts the result over T (``expand``, no copy)::

    out = rest(prefix(x[None]).expand(T, B, ...))

The random draws are the same calls with the same shapes, so the result is the dense path's,
within float32 rounding; backward sums the gradient over T at the broadcast (``expand``), and
that sum is exactly what the dense prefix's gradients add up to.

Batch norm in training mode is the one prefix layer that mixes samples. Over N identical
copies of the batch its mean μ and biased variance σ² are those of one copy, so the output is
``(x − μ) / sqrt(σ² + eps) · γ + β`` computed on one copy; with G = Σ_t g(t) the gradient
``dL/dx = γ/σ (G − mean(G) − x̂ mean(G x̂))`` is batch norm's backward on one copy with
gradient G (mean(G) = T mean(g), mean(G x̂) = T mean(g x̂)), and dγ, dβ are Σ G x̂ and Σ G.
Only the running variance differs: torch stores the unbiased σ² n / (n − 1) with n the number
of values per channel, which here is T times larger; :func:`batch_norm_repeated` updates the
running statistics itself with the n of the dense path.

:func:`prefer_channels_last` switches the convolutions of a plain convolutional
``nn.Sequential`` on the CPU to channels-last memory format
(:meth:`~snnkit.components.layers.Conv2d.use_channels_last`), so that convolutions (oneDNN),
batch norm, pooling and the fused neuron kernels all run on NHWC tensors without layout
conversions between them (same values within float32 rounding; the layout is not visible in
results or checkpoints).
"""

from __future__ import annotations

from typing import TypeGuard

import torch
from torch import Tensor, nn

from snnkit import kernels
from snnkit.assembly.forward import EncodedForward
from snnkit.components import layers
from snnkit.components.encoders import DirectEncoder
from snnkit.components.functional import reset_net
from snnkit.components.neuron_base import BaseNeuron
from snnkit.kernels.forms import form_of

#: layers whose multi-step output for T identical steps is their output for one step, repeated
PER_SAMPLE = (
    layers.AdaptiveAvgPool2d,
    layers.AvgPool2d,
    layers.BatchNorm1d,
    layers.BatchNorm2d,
    layers.Conv1d,
    layers.Conv2d,
    layers.Dropout,
    layers.Dropout2d,
    layers.Flatten,
    layers.Identity,
    layers.Linear,
    layers.MaxPool2d,
    layers.RandomShift,
)


def batch_norm_repeated(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, repeats: int) -> Tensor:
    """``bn`` over ``repeats`` identical copies of ``x [N, C, *]``, computed on ``x`` once.

    Returns one copy of the output. In training mode with running statistics they are updated
    as over the ``repeats · N`` samples: ``r_μ ← (1 − m) r_μ + m μ``,
    ``r_σ² ← (1 − m) r_σ² + m σ² n / (n − 1)`` with n = repeats · N · (values per channel per
    sample) and m the momentum (1 / batches seen when momentum is None). Torch's batch norm
    on ``x`` applies n₁ = n / repeats; the difference ``m σ² (n / (n − 1) − n₁ / (n₁ − 1))`` is
    added afterwards, with σ² = 1 / invstd² − eps from the kernel's saved ``invstd``.
    """
    track = bn.training and bn.track_running_stats and bn.running_mean is not None
    n1 = x.numel() // x.shape[1] if x.dim() > 1 else 0
    if repeats == 1 or not track or n1 < 2:
        if track and repeats > 1:  # one value per channel in x: run the copies themselves
            rep = x.unsqueeze(0).expand(repeats, *x.shape).flatten(0, 1)
            return nn.modules.batchnorm._BatchNorm.forward(bn, rep)[: x.shape[0]]
        return nn.modules.batchnorm._BatchNorm.forward(bn, x)
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    bn.num_batches_tracked.add_(1)
    m = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    # Copies of the running statistics: autograd keeps the ones passed in for the backward.
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    out, _, invstd = torch.native_batch_norm(x, bn.weight, bn.bias, mean, var, True, m, bn.eps)
    n = repeats * n1
    with torch.no_grad():
        sigma2 = invstd.double().reciprocal().square() - bn.eps
        gap = m * (n / (n - 1) - n1 / (n1 - 1))
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var + (sigma2 * gap).to(var.dtype))
    return out


class DirectInput(nn.Module):
    """``x [B, *] -> [T, B, C]``: the per-sample prefix once over ``[1, B, *]``, then the rest.

    Built by :func:`direct_input_module`; ``model[:index]`` is the prefix (layers of
    :data:`PER_SAMPLE`), ``model[index]`` the first layer that needs every step (a neuron).
    """

    def __init__(self, encoder: DirectEncoder, model: nn.Sequential, index: int) -> None:
        super().__init__()
        self.dense = EncodedForward.dense(encoder, model)
        self.encoder = encoder
        self.model = model
        self.prefix = list(model)[:index]
        self.rest = list(model)[index:]
        self.time_steps = int(encoder.time_steps)

    def forward(self, x: Tensor) -> Tensor:
        hooked = any(m._forward_hooks or m._forward_pre_hooks for m in (self.model, *self.prefix))
        if hooked or x.dim() < 1:
            return self.dense(x)
        T = self.time_steps
        out = self.encoder(x)[:1]  # [1, B, *]: one step of the repeated input
        for module in self.prefix:
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                flat = batch_norm_repeated(module, out.flatten(0, 1), T)
                out = flat.unflatten(0, out.shape[:2])
            else:
                out = module(out)
        rest = self.rest
        if rest and _plain_neuron(rest[0]):  # the fused kernel reads the one step T times
            out, v_seq = kernels.multi_step_repeated(rest[0], out, T)
            rest[0]._v_seq = v_seq
            rest = rest[1:]
        else:
            out = kernels.repeat_steps(out, T)
        for module in rest:
            out = module(out)
        reset_net(self.model)
        return out


def _plain_neuron(module: nn.Module) -> TypeGuard[BaseNeuron]:
    """A multi-step neuron of snnkit's base class whose forward is the base one, without hooks
    (whose call :func:`~snnkit.kernels.multi_step_repeated` may stand for)."""
    return (
        isinstance(module, BaseNeuron)
        and type(module).forward is BaseNeuron.forward
        and type(module)._multi_step is BaseNeuron._multi_step
        and module.step_mode == "m"
        and not (module._forward_hooks or module._forward_pre_hooks)
    )


def direct_input_module(encoder: nn.Module, model: nn.Module) -> DirectInput | None:
    """The :class:`DirectInput` rewrite of ``encoder`` + ``model``, or None where it does not fit.

    Fits: a plain :class:`~snnkit.components.encoders.DirectEncoder` with T > 1 and a
    multi-step ``nn.Sequential`` whose first layers are of :data:`PER_SAMPLE` exactly (no
    subclass), in step mode ``'m'``, with at least one layer that computes something.
    """
    if type(encoder) is not DirectEncoder or int(encoder.time_steps) < 2:
        return None
    if not _plain_sequential(model):
        return None
    index = 0
    for module in model:
        if type(module) not in PER_SAMPLE or getattr(module, "step_mode", "m") != "m":
            break
        index += 1
    computes = (
        layers.Conv1d,
        layers.Conv2d,
        layers.Linear,
        layers.BatchNorm1d,
        layers.BatchNorm2d,
        layers.AvgPool2d,
        layers.MaxPool2d,
    )
    if not any(isinstance(m, computes) for m in list(model)[:index]):
        return None
    return DirectInput(encoder, model, index)


def prefer_channels_last(model: nn.Module) -> bool:
    """Run ``model``'s convolutions channels-last if it is a plain conv net on the CPU.

    Plain: an ``nn.Sequential`` in step mode ``'m'`` of :data:`PER_SAMPLE` layers (exact types)
    and element-wise neurons (fusable ones, or snnkit's own with the base forward), with a
    ``Conv2d``, every
    parameter on the CPU. Parameters keep their identity (only their storage layout changes),
    so an optimizer built before keeps working. Returns whether it converted.
    """
    if not _plain_sequential(model) or not any(type(m) is layers.Conv2d for m in model):
        return False
    for module in model:
        if getattr(module, "step_mode", "m") != "m":
            return False
        if type(module) in PER_SAMPLE:
            continue
        if not _elementwise_neuron(module):
            return False
    if any(p.device.type != "cpu" for p in model.parameters()):
        return False
    for module in model:
        if type(module) is layers.Conv2d:
            module.use_channels_last()
    return True


def _plain_sequential(model: nn.Module) -> TypeGuard[nn.Sequential]:
    """An ``nn.Sequential`` (or subclass keeping its forward) in step mode ``'m'``."""
    return (
        isinstance(model, nn.Sequential)
        and type(model).forward is nn.Sequential.forward
        and getattr(model, "step_mode", "m") == "m"
    )


def _elementwise_neuron(module: nn.Module) -> bool:
    """A neuron that maps ``[T, B, *]`` element by element whatever its memory layout: the base
    forward, and either a fused kernel form or one of snnkit's own step functions."""
    if not isinstance(module, BaseNeuron) or type(module).forward is not BaseNeuron.forward:
        return False
    return form_of(module) is not None or type(module).__module__.startswith("snnkit.")
