"""Batch norm followed by a fused neuron, over one time segment, keeping only batch norm's input.

In a segment, ``y = BN(x)`` feeds a neuron that the fused CPU kernel runs from the handed-over
state. Run as two layers, autograd keeps ``x`` for batch norm's backward and ``y`` for the
neuron's: two float32 values per element, most of a segment step's memory in a conv net. Run
as one (:func:`run_norm_neuron`), only ``x`` is kept; the backward recomputes
``y = BN(x)`` with the same operation and batch statistics (``F.batch_norm`` in training mode,
on copies of the running statistics so that the same code path runs: the same ``y``, bit for
bit), then runs the neuron's fused backward pass on it (no forward recompute of the neuron: the
kernel's backward recomputes H itself) and batch norm's backward::

    forward:  y = BN_train(x) (running statistics updated once);  S, V_end = neuron(y; V_init)
    backward: y = BN_train(x) again;  (dL/dy, dL/dV_init) = neuron backward;
              (dL/dx, dL/dγ, dL/dβ) = BN backward(dL/dy)

The gradients are those of the two layers run apart (tested equal). It costs one more batch
norm forward per segment. Pairs are a training-mode ``BatchNorm1d/2d`` in step mode ``'m'``
without hooks directly followed, in an ``nn.Sequential``, by a neuron the fused kernel runs with
no learnable parameter of its own (:func:`norm_neuron_pairs`); others run as two layers. A
convolution before the batch norm with fewer input than output channels whose input is not
spikes (the first layer of a conv net on direct input: 3 channels in, 64 out) joins the pair:
its input, which it keeps anyway for its weight gradient, is then all that is kept, and the
backward recomputes the convolution too (cheap for so few input channels).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnkit.components.neuron_base import BaseNeuron

Pair = tuple[str, Any, Any, Any]
"""``(batch norm name, batch norm, neuron, convolution before the batch norm or None)``."""


def norm_neuron_pairs(model: nn.Module, binary: Iterable[str] = ()) -> dict[str, Pair]:
    """``{neuron name: Pair}`` for each batch norm directly followed by a neuron among the
    children of an ``nn.Sequential`` ``model``, with the convolution before the batch norm when
    keeping its input costs less than keeping its output (fewer input than output channels; not
    one of the layers in ``binary``, which keep their spike input as bits)."""
    if not isinstance(model, nn.Sequential):
        return {}
    pairs: dict[str, Pair] = {}
    children = list(model.named_children())
    for i, ((bn_name, bn), (name, neuron)) in enumerate(itertools.pairwise(children)):
        if (
            isinstance(bn, nn.modules.batchnorm._BatchNorm)
            and getattr(bn, "step_mode", "s") == "m"
            and isinstance(neuron, BaseNeuron)
            and getattr(neuron, "step_mode", "s") == "m"
            and not any(True for _ in neuron.parameters())
        ):
            conv = None
            if i > 0:
                conv_name, before = children[i - 1]
                if (
                    isinstance(before, (nn.Conv1d, nn.Conv2d))
                    and getattr(before, "step_mode", "s") == "m"
                    and conv_name not in set(binary)
                    and before.in_channels < before.out_channels
                ):
                    conv = before
            pairs[name] = (bn_name, bn, neuron, conv)
    return pairs


def _normalize(bn: Any, x_seq: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """``BN(x)`` in training mode over ``[T*B, ...]`` without touching the running statistics
    (copies of them take the same code path as the layer's own call)."""
    rm = None if bn.running_mean is None else bn.running_mean.clone()
    rv = None if bn.running_var is None else bn.running_var.clone()
    momentum = 0.0 if bn.momentum is None else bn.momentum
    y = F.batch_norm(x_seq.flatten(0, 1), rm, rv, weight, bias, True, momentum, bn.eps)
    return y.unflatten(0, x_seq.shape[:2])


class _NormNeuron(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x_seq: Tensor,
        v_init: Tensor | None,
        weight: Tensor | None,
        bias: Tensor | None,
        conv_weight: Tensor | None,
        conv_bias: Tensor | None,
        bn: Any,
        conv: Any,
        segment: Any,
        initial: bool,
    ) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            z = x_seq if conv is None else type(conv).forward(conv, x_seq)
            y = type(bn).forward(bn, z)  # the layer's own call: running statistics updated
            out, v_end = segment.forward(y, v_init)
        ctx.save_for_backward(x_seq, v_init, weight, bias)
        ctx.bn, ctx.conv, ctx.segment = bn, conv, segment
        return out, v_end

    @staticmethod
    def backward(ctx: Any, g_out: Tensor | None, g_vend: Tensor | None) -> tuple[Any, ...]:
        x_seq, v_init, weight, bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        conv = ctx.conv
        x = x_seq.detach().requires_grad_(need[0] or conv is None)
        w = None if weight is None else weight.detach().requires_grad_(need[2])
        b = None if bias is None else bias.detach().requires_grad_(need[3])
        with torch.enable_grad():
            z = x if conv is None else type(conv).forward(conv, x)  # the layer's parameters
            y = _normalize(ctx.bn, z, w, b)
        gy, gv0 = ctx.segment.backward(y.detach(), v_init, g_out, g_vend)
        conv_w = None if conv is None or not need[4] else conv.weight
        conv_b = None if conv is None or not need[5] else conv.bias
        wanted = [x if need[0] else None, w, b, conv_w, conv_b]
        inputs = [t for t in wanted if t is not None and t.requires_grad]
        grads = torch.autograd.grad(y, inputs, gy, allow_unused=True) if inputs else ()
        found = dict(zip(map(id, inputs), grads, strict=True))

        def grad_of(t: Tensor | None) -> Tensor | None:
            return None if t is None else found.get(id(t))

        gv0 = gv0 if need[1] and v_init is not None else None
        gx = grad_of(wanted[0])
        return gx, gv0, grad_of(w), grad_of(b), grad_of(conv_w), grad_of(conv_b), *(None,) * 4


def run_norm_neuron(
    bn: Any, conv: Any, x_seq: Tensor, v_init: Tensor | None, initial: bool, segment: Any
) -> tuple[Tensor, Tensor]:
    """``segment.forward(BN(conv(x_seq)), v_init) -> (spikes, V_end)`` (``conv`` None: no
    convolution; ``v_init`` None: v0 everywhere, the neuron's start), keeping only ``x_seq``
    (and ``v_init``) for the backward pass, which calls ``segment.backward(y, v_init or None, dL/dS,
    dL/dV_end) -> (dL/dy, dL/dV_init)``, the neuron's fused backward, between the recomputed
    normalisation (and convolution) and their backward."""
    conv_w = None if conv is None else conv.weight
    conv_b = None if conv is None else conv.bias
    return _NormNeuron.apply(
        x_seq, v_init, bn.weight, bn.bias, conv_w, conv_b, bn, conv, segment, initial
    )
