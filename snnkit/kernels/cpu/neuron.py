"""Fused CPU kernel: one compiled forward pass and one backward pass through time.

Forward (per element, over t): H = charge(V, X); S = Θ(H − V_th); V = reset(H, S).
Backward (t = T−1 … 0), with gV the gradient reaching V(t) from step t+1::

    hard: gH_r = gV (1 − S);  gS_r = gV V_reset − gV H      soft: gH_r = gV;  gS_r = −gV V_th
    (gS_r = 0 with detach_reset)
    gS = grad_out(t) + gS_r;  gH = gS g'(H − V_th) + gH_r
    gX(t) = gH ∂H/∂X;  gV(t−1) = gH ∂H/∂V
    PLIF: dL/dk += gH ∂H/∂k;  dL/dw = dL/dk k (1 − k)

g' is compiled in for the closed-form :class:`~snnkit.kernels.forms.SurrogateKind` values and
evaluated by the surrogate's ``derivative`` for ``GENERIC``.
Only the input X is kept for the backward pass: it recomputes H block by block into a small
cache-resident buffer, so memory traffic is one read of X and one write of S forward, and
reads of X and grad_out plus one write of dL/dX backward.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.forms import NeuronForm, SurrogateKind


def _leak_value(form: NeuronForm, w: Tensor | None) -> float:
    """The charge constant ``a`` as a number: the form's leak, or PLIF's k = sigmoid(w)."""
    if form.leak is not None:
        return form.leak
    assert w is not None
    return float(torch.sigmoid(w.detach()))  # k in w's dtype, as plif_charge computes it


def _forward(
    ext: ModuleType, form: NeuronForm, x: Tensor, a: float, save: bool, record: bool
) -> list[Tensor]:
    return ext.neuron_forward(
        x,
        int(form.charge),
        form.hard,
        a,
        form.rest,
        form.v_threshold,
        form.v_reset,
        form.v0,
        save,
        record,
    )


class _FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, w: Tensor | None, form: NeuronForm, ext: ModuleType, record: bool
    ) -> tuple[Tensor, Tensor]:
        a = _leak_value(form, w)
        out, _, v = _forward(ext, form, x, a, False, record)
        ctx.save_for_backward(x)
        ctx.form, ctx.ext, ctx.a = form, ext, a
        v = v if record else out.new_empty(0)
        ctx.mark_non_differentiable(v)
        return out, v

    @staticmethod
    def backward(
        ctx: Any,
        grad_out: Tensor,
        _grad_v: Tensor,
    ) -> tuple[Any, ...]:
        (x,) = ctx.saved_tensors
        form: NeuronForm = ctx.form
        sur, ext, a = form.surrogate, ctx.ext, ctx.a
        gpre = None
        if sur.kind == SurrogateKind.GENERIC:
            assert form.derivative is not None
            _, h, _ = _forward(ext, form, x, a, True, False)
            gpre = form.derivative(h - form.v_threshold).to(x.dtype).contiguous()
        grad_out = grad_out.to(x.dtype).contiguous()
        c1, c2, c3 = sur.constants
        gx, gk = ext.neuron_backward(
            grad_out,
            x,
            gpre,
            int(form.charge),
            form.hard,
            form.detach_reset,
            int(sur.kind),
            c1,
            c2,
            c3,
            a,
            form.rest,
            form.v_threshold,
            form.v_reset,
            form.v0,
        )
        grad_w = None
        if form.w is not None and ctx.needs_input_grad[1]:
            grad_w = (gk * (a * (1.0 - a))).to(form.w.dtype).reshape(form.w.shape)
        return (gx if ctx.needs_input_grad[0] else None), grad_w, None, None, None


def cpp_multi_step(
    form: NeuronForm, ext: ModuleType, x_seq: Tensor, record: bool
) -> tuple[Tensor, Tensor | None]:
    """Spikes ``[T, B, *]`` (and the V trace if ``record``) from the fused CPU kernel."""
    x = x_seq.contiguous()
    w = form.w
    w_grad = w is not None and w.requires_grad
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or w_grad)
    if not needs_grad:
        out, _, v = _forward(ext, form, x.detach(), _leak_value(form, w), False, record)
        return out, (v if record else None)
    if w is not None and not (torch.is_grad_enabled() and w.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())  # no dL/dk to accumulate
    out, v = _FusedNeuron.apply(x, w, form, ext, record)
    return out, (v if record else None)
