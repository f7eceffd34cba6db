"""Fused CPU kernel of a recurrent layer: one compiled forward and one backward pass through time.

Forward (``recurrent.cpp``), per step: I(t) = (X(t) + W_rec S(t−1)) + b_rec with the product by
``at::matmul``, then the neuron's charge, fire and reset (IF, LIF or PLIF of its
:class:`~snnkit.kernels.forms.NeuronForm`); H, S (and I for a learning PLIF) are kept.
Backward: g'(H − V_th) is the surrogate's ``derivative`` over all steps at once (one PyTorch
call), then the compiled pass from t = T−1 to 0 gives dL/dI(t) (the recurrence feeds
dL/dI(t+1) W_rec back into dL/dS(t)); after it::

    dL/dX = dL/dI;   dL/dW_rec = Σ_t dL/dI(t)ᵀ S(t−1) (one GEMM; one-to-one: Σ dL/dI ⊙ S(t−1))
    dL/db_rec = Σ_t dL/dI(t);   PLIF: dL/dw = dL/dk k (1 − k)

From a given state (V(−1), S(−1)) (a time segment of the memory modes, :func:`cpp_recurrent`
with ``state``) the forward starts there and also returns V(T−1) (S(T−1) is the last output
step); the backward starts gV at dL/dV(T−1) and returns dL/dV(−1), and::

    dL/dS(−1) = dL/dI(0) W_rec (one-to-one: dL/dI(0) ⊙ w_rec);   dL/dW_rec += dL/dI(0)ᵀ S(−1)

Without a state, V(−1) = v0 and S(−1) = 0 (bit-identical to the stateless kernel).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.cpu.neuron import _leak_value
from snnkit.kernels.forms import NeuronForm


class _FusedRecurrent(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w_rec: Tensor,
        b_rec: Tensor | None,
        w_k: Tensor | None,
        v_init: Tensor | None,
        s_init: Tensor | None,
        form: NeuronForm,
        ext: ModuleType,
        initial: bool = False,
    ) -> tuple[Tensor, Tensor]:
        a = _leak_value(form, w_k)
        spikes, h, i, v_end = ext.recurrent_forward(
            x,
            w_rec,
            b_rec,
            int(form.charge),
            form.hard,
            a,
            form.rest,
            form.v_threshold,
            form.v_reset,
            form.v0,
            True,
            v_init,
            s_init,
        )
        if initial:  # (v0, 0) everywhere: backward needs neither (it uses v0 and S(−1) = 0)
            v_init = s_init = None
        ctx.save_for_backward(h, spikes, i, w_rec, v_init, s_init)
        ctx.has_end = not initial and v_init is not None
        ctx.form, ctx.ext, ctx.a, ctx.has_bias = form, ext, a, b_rec is not None
        if v_end is None:
            v_end = spikes.new_empty(0)
            ctx.mark_non_differentiable(v_end)
        return spikes, v_end

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor | None, grad_v_end: Tensor | None) -> tuple[Any, ...]:
        h, spikes, i, w_rec, v_init, s_init = ctx.saved_tensors
        form: NeuronForm = ctx.form
        assert form.derivative is not None
        gpre = form.derivative(h - form.v_threshold).to(h.dtype).contiguous()
        grad_out = torch.zeros_like(h) if grad_out is None else grad_out.to(h.dtype).contiguous()
        if grad_v_end is None or grad_v_end.numel() == 0:
            grad_v_end = None
        else:
            grad_v_end = grad_v_end.to(h.dtype).contiguous()
        g_in, gk, gv0 = ctx.ext.recurrent_backward(
            grad_out,
            h,
            spikes,
            gpre,
            i,
            w_rec.detach().contiguous(),
            int(form.charge),
            form.hard,
            form.detach_reset,
            ctx.a,
            form.rest,
            form.v_threshold,
            form.v_reset,
            form.v0,
            v_init,
            grad_v_end,
        )
        n = w_rec.shape[0]
        all_to_all = w_rec.dim() == 2
        grad_w = grad_b = grad_k = grad_s0 = None
        if ctx.needs_input_grad[1]:
            if s_init is None:
                g_next, s_prev = g_in[1:].reshape(-1, n), spikes[:-1].reshape(-1, n)
            else:
                g_next, s_prev = g_in.reshape(-1, n), torch.cat([s_init[None], spikes[:-1]])
                s_prev = s_prev.reshape(-1, n)
            grad_w = g_next.t() @ s_prev if all_to_all else (g_next * s_prev).sum(0)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g_in.sum((0, 1))
        if form.w is not None and ctx.needs_input_grad[3]:
            grad_k = (gk * (ctx.a * (1.0 - ctx.a))).to(form.w.dtype).reshape(form.w.shape)
        if s_init is not None and ctx.needs_input_grad[5]:
            grad_s0 = g_in[0] @ w_rec if all_to_all else g_in[0] * w_rec
        gv0 = gv0 if ctx.needs_input_grad[4] and v_init is not None else None
        return g_in, grad_w, grad_b, grad_k, gv0, grad_s0, None, None, None


def _prepared(
    form: NeuronForm, x_seq: Tensor, w_rec: Tensor, b_rec: Tensor | None
) -> tuple[NeuronForm, Tensor, Tensor, Tensor | None]:
    x = x_seq.reshape(x_seq.shape[0], -1, x_seq.shape[-1]).contiguous()
    w_k = form.w
    if w_k is not None and not (torch.is_grad_enabled() and w_k.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())  # no dL/dk to accumulate
    return form, x, w_rec.contiguous(), (None if b_rec is None else b_rec.contiguous())


def cpp_recurrent(
    form: NeuronForm, ext: ModuleType, x_seq: Tensor, w_rec: Tensor, b_rec: Tensor | None
) -> Tensor:
    """Spikes ``[T, B, ..., N]`` of the recurrent layer from the fused CPU kernel."""
    form, x, w, b = _prepared(form, x_seq, w_rec, b_rec)
    return _FusedRecurrent.apply(x, w, b, form.w, None, None, form, ext, False)[0].reshape(
        x_seq.shape
    )


def cpp_recurrent_segment(
    form: NeuronForm,
    ext: ModuleType,
    x_seq: Tensor,
    w_rec: Tensor,
    b_rec: Tensor | None,
    state: tuple[Tensor, Tensor],
    initial: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(spikes [T, B, ..., N], V(T−1) [B, ..., N])`` of the fused CPU kernel from ``state =
    (V(−1), S(−1))`` (a time segment's start); gradients reach both parts of the state.
    ``initial``: the state is the layer's start (v0, 0) without gradient; it is not kept."""
    form, x, w, b = _prepared(form, x_seq, w_rec, b_rec)
    v0, s0 = (st.to(x.dtype).reshape(x.shape[1:]).contiguous() for st in state)
    initial = initial and not (v0.requires_grad or s0.requires_grad)
    spikes, v_end = _FusedRecurrent.apply(x, w, b, form.w, v0, s0, form, ext, initial)
    return spikes.reshape(x_seq.shape), v_end.reshape(x_seq.shape[1:])
