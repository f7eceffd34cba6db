"""Fused CPU kernel: one compiled forward pass and one backward pass through time.

Forward (per element, over t): H = charge(V, X); S = Θ(H − V_th); V = reset(H, S).
Backward (t = T−1 … 0), with gV the gradient reaching V(t) from step t+1::

    hard: gH_r = gV (1 − S);  gS_r = gV V_reset − gV H      soft: gH_r = gV;  gS_r = −gV V_th
    (gS_r = 0 with detach_reset)
    gS = grad_out(t) + gS_r;  gH = gS g'(H − V_th) + gH_r
    gX(t) = gH ∂H/∂X;  gV(t−1) = gH ∂H/∂V
    PLIF: dL/dk += gH ∂H/∂k;  dL/dw = dL/dk k (1 − k)

From a given state V(−1) (a time segment of the memory modes, :func:`cpp_segment`), the loop
starts there instead of at v0, returns V(T−1) too, and its backward starts gV at dL/dV(T−1)
(from after the segment) and returns dL/dV(−1) = the last gV(t−1). Without a state, V(−1) = v0
and gV(T−1) = 0 (bit-identical to the stateless kernel).

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
    ext: ModuleType,
    form: NeuronForm,
    x: Tensor,
    a: float,
    save: bool,
    record: bool,
    v_init: Tensor | None = None,
    repeat: int = 0,
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
        v_init,
        repeat,
    )


def fused_backward(
    form: NeuronForm,
    ext: ModuleType,
    x: Tensor,
    v_init: Tensor | None,
    a: float,
    grad_out: Tensor | None,
    grad_v_end: Tensor | None,
    repeat: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The fused backward pass through time (module docstring) of the neuron run on ``x`` from
    ``v_init`` (None: v0): ``(dL/dX, Σ dL/dk as a float64 scalar, dL/dV(−1))`` for the gradients
    ``grad_out`` of the spikes (None: 0) and ``grad_v_end`` of V(T−1) (None: 0); dL/dV(−1) is
    undefined (an empty tensor from the kernel) without ``v_init``."""
    sur = form.surrogate
    gpre = None
    if sur.kind == SurrogateKind.GENERIC:
        assert form.derivative is not None
        h = _forward(ext, form, x, a, True, False, v_init, repeat)[1]
        gpre = form.derivative(h - form.v_threshold).to(x.dtype).contiguous()
    if grad_out is None:
        grad_out = x.new_zeros((repeat, *x.shape) if repeat else x.shape)
    else:
        grad_out = grad_out.to(x.dtype).contiguous()
    if grad_v_end is not None:
        grad_v_end = grad_v_end.to(x.dtype).contiguous()
    c1, c2, c3 = sur.constants
    gx, gk, gv0 = ext.neuron_backward(
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
        v_init,
        grad_v_end,
        repeat,
    )
    return gx, gk, gv0


class _FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w: Tensor | None,
        v_init: Tensor | None,
        form: NeuronForm,
        ext: ModuleType,
        record: bool,
        initial: bool = False,
        repeat: int = 0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        a = _leak_value(form, w)
        out, _, v, v_end = _forward(ext, form, x, a, False, record, v_init, repeat)
        # a v_init equal to v0 everywhere (``initial``) need not be kept: backward uses v0
        ctx.save_for_backward(x, None if initial else v_init)
        ctx.has_end = v_init is not None
        ctx.form, ctx.ext, ctx.a, ctx.repeat = form, ext, a, repeat
        v = v if record else out.new_empty(0)
        v_end = v_end if v_init is not None else out.new_empty(0)
        ctx.mark_non_differentiable(v)
        if v_init is None:
            ctx.mark_non_differentiable(v_end)
        return out, v, v_end

    @staticmethod
    def backward(
        ctx: Any,
        grad_out: Tensor | None,
        _grad_v: Tensor | None,
        grad_v_end: Tensor | None,
    ) -> tuple[Any, ...]:
        x, v_init = ctx.saved_tensors
        form: NeuronForm = ctx.form
        a = ctx.a
        if not ctx.has_end or grad_v_end is None or grad_v_end.numel() == 0:
            grad_v_end = None
        gx, gk, gv0 = fused_backward(form, ctx.ext, x, v_init, a, grad_out, grad_v_end, ctx.repeat)
        grad_w = None
        if form.w is not None and ctx.needs_input_grad[1]:
            grad_w = (gk * (a * (1.0 - a))).to(form.w.dtype).reshape(form.w.shape)
        return (
            gx if ctx.needs_input_grad[0] else None,
            grad_w,
            gv0 if ctx.needs_input_grad[2] and v_init is not None else None,
            *(None,) * 5,
        )


def cpp_multi_step(
    form: NeuronForm, ext: ModuleType, x_seq: Tensor, record: bool
) -> tuple[Tensor, Tensor | None]:
    """Spikes ``[T, B, *]`` (and the V trace if ``record``) from the fused CPU kernel."""
    x = x_seq.contiguous()
    w = form.w
    w_grad = w is not None and w.requires_grad
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or w_grad)
    if not needs_grad:
        out, _, v, _ = _forward(ext, form, x.detach(), _leak_value(form, w), False, record)
        return out, (v if record else None)
    if w is not None and not (torch.is_grad_enabled() and w.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())  # no dL/dk to accumulate
    out, v, _ = _FusedNeuron.apply(x, w, None, form, ext, record, False)
    return out, (v if record else None)


def cpp_multi_step_repeated(
    form: NeuronForm, ext: ModuleType, x_step: Tensor, steps: int, record: bool
) -> tuple[Tensor, Tensor | None]:
    """Spikes ``[steps, B, *]`` (and the V trace if ``record``) for the input ``x_step [B, *]``
    fed at every step, without materialising the repeated input: the kernel reads the one step
    at each t, and its backward returns ``Σ_t dL/dX(t)``, the gradient of the repetition."""
    x = x_step.contiguous()
    w = form.w
    w_grad = w is not None and w.requires_grad
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or w_grad)
    a = _leak_value(form, w)
    if not needs_grad:
        out, _, v, _ = _forward(ext, form, x.detach(), a, False, record, None, steps)
        return out, (v if record else None)
    if w is not None and not (torch.is_grad_enabled() and w.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())
    out, v, _ = _FusedNeuron.apply(x, w, None, form, ext, record, False, steps)
    return out, (v if record else None)


def cpp_segment(
    form: NeuronForm, ext: ModuleType, x_seg: Tensor, v_init: Tensor, initial: bool = False
) -> tuple[Tensor, Tensor]:
    """``(spikes [T, B, *], V(T−1) [B, *])`` of the fused CPU kernel over ``x_seg`` from
    ``V(−1) = v_init`` (one time segment); gradients reach ``x_seg``, PLIF's ``w`` and
    ``v_init``. Only ``x_seg`` and ``v_init`` are saved (the backward recomputes H); with
    ``initial`` (``v_init`` is the neuron's initial state, v0 everywhere, without a gradient)
    only ``x_seg``."""
    x = x_seg.contiguous()
    v0 = v_init.to(x.dtype).contiguous()
    w = form.w
    grad = torch.is_grad_enabled() and (
        x.requires_grad or v0.requires_grad or (w is not None and w.requires_grad)
    )
    if not grad:
        out, _, _, v_end = _forward(ext, form, x.detach(), _leak_value(form, w), False, False, v0)
        return out, v_end.view_as(v_init)
    if w is not None and not w.requires_grad:
        form = form._replace(charge=form.charge.without_grad_k())
    out, _, v_end = _FusedNeuron.apply(x, w, v0, form, ext, False, initial and not v0.requires_grad)
    return out, v_end.view_as(v_init)
