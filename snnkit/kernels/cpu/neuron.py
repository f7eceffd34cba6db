"""Fused CPU kernel: one compiled forward pass and one backward pass through time.

Forward (per element, over t): H = charge(V, X); S = Θ(H − V_th); V = reset(H, S); it saves H
only. Backward (t = T−1 … 0), with gV the gradient reaching V(t) from step t+1::

    hard: gH_r = gV (1 − S);  gS_r = gV V_reset − gV H      soft: gH_r = gV;  gS_r = −gV V_th
    (gS_r = 0 with detach_reset)
    gS = grad_out(t) + gS_r;  gH = gS g'(H − V_th) + gH_r
    gX(t) = gH ∂H/∂X;  gV(t−1) = gH ∂H/∂V
    PLIF: dL/dk += gH ∂H/∂k;  dL/dw = dL/dk k (1 − k)

g' is compiled in for built-in surrogates and evaluated by ``surrogate.derivative`` for others.
Only the input X is kept for the backward pass: it recomputes H block by block into a small
cache-resident buffer, so memory traffic is one read of X and one write of S forward, and
reads of X and grad_out plus one write of dL/dX backward.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.forms import SURROGATE_GENERIC, NeuronSpec


def _a(spec: NeuronSpec, w: Tensor | None) -> float:
    if spec.a is not None:
        return spec.a
    assert w is not None
    return float(torch.sigmoid(w.detach()))  # k in w's dtype, as plif_charge computes it


class _FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor | None, spec: NeuronSpec, ext: ModuleType,
                record: bool) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        a = _a(spec, w)
        out, _, v = ext.neuron_forward(x, spec.charge, spec.hard, a, spec.rest, spec.v_threshold,
                                       spec.v_reset, spec.v0, False, record)
        ctx.save_for_backward(x)
        ctx.spec, ctx.ext, ctx.a = spec, ext, a
        v = v if record else out.new_empty(0)
        ctx.mark_non_differentiable(v)
        return out, v

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor,  # type: ignore[override]
                 _grad_v: Tensor) -> tuple[Any, ...]:
        (x,) = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        sur, ext, a = spec.surrogate, ctx.ext, ctx.a
        gpre = None
        if sur.sid == SURROGATE_GENERIC:
            _, h, _ = ext.neuron_forward(x, spec.charge, spec.hard, a, spec.rest,
                                         spec.v_threshold, spec.v_reset, spec.v0, True, False)
            gpre = spec.module.derivative(h - spec.v_threshold).to(x.dtype).contiguous()
        grad_out = grad_out.to(x.dtype).contiguous()
        gx, gk = ext.neuron_backward(grad_out, x, gpre, spec.charge, spec.hard, spec.detach_reset,
                                     sur.sid, sur.c1, sur.c2, sur.c3, a, spec.rest,
                                     spec.v_threshold, spec.v_reset, spec.v0)
        grad_w = None
        if spec.w is not None and ctx.needs_input_grad[1]:
            grad_w = (gk * (a * (1.0 - a))).to(spec.w.dtype).reshape(spec.w.shape)
        return (gx if ctx.needs_input_grad[0] else None), grad_w, None, None, None


def cpp_multi_step(spec: NeuronSpec, ext: ModuleType, x_seq: Tensor,
                   record: bool) -> tuple[Tensor, Tensor | None]:
    """Spikes ``[T, B, *]`` (and the V trace if ``record``) from the fused CPU kernel."""
    x = x_seq.contiguous()
    w = spec.w
    w_grad = w is not None and w.requires_grad
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or w_grad)
    if not needs_grad:
        out, _, v = ext.neuron_forward(x.detach(), spec.charge, spec.hard, _a(spec, w), spec.rest,
                                       spec.v_threshold, spec.v_reset, spec.v0, False, record)
        return out, (v if record else None)
    if w is not None and not (torch.is_grad_enabled() and w.requires_grad):
        spec = spec._replace(charge=spec.charge + 2)  # PLIF -> MUL: no dL/dk to accumulate
    out, v = _FusedNeuron.apply(x, w, spec, ext, record)
    return out, (v if record else None)
