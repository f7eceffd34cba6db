"""Batch norm followed by a fused neuron, over one time segment, keeping only batch norm's input.

In a segment, ``y = BN(x)`` feeds a neuron that the fused CPU kernel runs from the handed-over
state. Run as two layers, autograd keeps ``x`` for batch norm's backward and ``y`` for the
neuron's: two float32 values per element, most of a segment step's memory in a conv net. Run
as one (:func:`run_norm_neuron`), only ``x`` is kept; the backward recomputes
``y = BN(x)`` with the same operation and batch statistics (``F.batch_norm`` in training mode,
on copies of the running statistics so that the same code path runs: the same ``y``, bit for
bit), then runs the neuron's fused backward on it and batch norm's backward::

    forward:  y = BN_train(x) (running statistics updated once);  S, V_end = neuron(y; V_init)
    backward: y = BN_train(x) again;  (dL/dy, dL/dV_init) = neuron backward;
              (dL/dx, dL/dγ, dL/dβ) = BN backward(dL/dy)

The gradients are those of the two layers run apart (tested equal). It costs one more batch
norm forward per segment. Pairs are a training-mode ``BatchNorm1d/2d`` in step mode ``'m'``
without hooks directly followed, in an ``nn.Sequential``, by a neuron the fused kernel runs with
no learnable parameter of its own (:func:`norm_neuron_pairs`); others run as two layers.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnkit.components.neuron_base import BaseNeuron


def norm_neuron_pairs(model: nn.Module) -> dict[str, tuple[str, Any, Any]]:
    """``{neuron name: (batch norm name, batch norm, neuron)}`` for each batch norm directly
    followed by a neuron among the children of an ``nn.Sequential`` ``model``."""
    if not isinstance(model, nn.Sequential):
        return {}
    pairs = {}
    children = list(model.named_children())
    for (bn_name, bn), (name, neuron) in itertools.pairwise(children):
        if (
            isinstance(bn, nn.modules.batchnorm._BatchNorm)
            and getattr(bn, "step_mode", "s") == "m"
            and isinstance(neuron, BaseNeuron)
            and getattr(neuron, "step_mode", "s") == "m"
            and not any(True for _ in neuron.parameters())
        ):
            pairs[name] = (bn_name, bn, neuron)
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
        v_init: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        bn: Any,
        run: Any,
        initial: bool,
    ) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            y = type(bn).forward(bn, x_seq)  # the layer's own call: running statistics updated
            out, v_end = run(y, v_init)
        ctx.save_for_backward(x_seq, None if initial else v_init, weight, bias)
        ctx.bn, ctx.run, ctx.initial = bn, run, initial
        ctx.v_shape, ctx.v_like = v_init.shape, v_init.detach()[:0]
        return out, v_end

    @staticmethod
    def backward(ctx: Any, g_out: Tensor | None, g_vend: Tensor | None) -> tuple[Any, ...]:
        x_seq, v_init, weight, bias = ctx.saved_tensors
        x = x_seq.detach().requires_grad_(ctx.needs_input_grad[0])
        w = None if weight is None else weight.detach().requires_grad_(ctx.needs_input_grad[2])
        b = None if bias is None else bias.detach().requires_grad_(ctx.needs_input_grad[3])
        v0 = None if v_init is None else v_init.detach().requires_grad_(ctx.needs_input_grad[1])
        with torch.enable_grad():
            y = _normalize(ctx.bn, x, w, b)
            out, v_end = ctx.run(y, v0)
        outputs, grads = [], []
        for t, g in ((out, g_out), (v_end, g_vend)):
            if g is not None and t.requires_grad:
                outputs.append(t)
                grads.append(g)
        inputs = [t for t in (x, v0, w, b) if t is not None and t.requires_grad]
        found = torch.autograd.grad(outputs, inputs, grads, allow_unused=True) if outputs else []
        by_id = {id(t): g for t, g in zip(inputs, found, strict=True)}

        def grad_of(t: Tensor | None) -> Tensor | None:
            return None if t is None else by_id.get(id(t))

        return grad_of(x), grad_of(v0), grad_of(w), grad_of(b), None, None, None


def run_norm_neuron(
    bn: Any, x_seq: Tensor, v_init: Tensor, initial: bool, run: Any
) -> tuple[Tensor, Tensor]:
    """``run(BN(x_seq), v_init)`` — ``run(y, v)`` the neuron's fused segment, ``(spikes,
    V_end)`` — keeping only ``x_seq`` (and ``v_init`` unless ``initial``) for backward."""
    return _NormNeuron.apply(x_seq, v_init, bn.weight, bn.bias, bn, run, initial)
