"""Fused CPU kernel of a recurrent layer: one compiled forward and one backward pass through time.

Forward (``recurrent.cpp``), per step: I(t) = (X(t) + W_rec S(t−1)) + b_rec with the product by
``at::matmul``, then the neuron's charge, fire and reset (IF, LIF or PLIF of its
:class:`~snnkit.kernels.forms.NeuronForm`); H, S (and I for a learning PLIF) are kept.
Backward: g'(H − V_th) is the surrogate's ``derivative`` over all steps at once (one PyTorch
call), then the compiled pass from t = T−1 to 0 gives dL/dI(t) (the recurrence feeds
dL/dI(t+1) W_rec back into dL/dS(t)); after it::

    dL/dX = dL/dI;   dL/dW_rec = Σ_t dL/dI(t)ᵀ S(t−1) (one GEMM; one-to-one: Σ dL/dI ⊙ S(t−1))
    dL/db_rec = Σ_t dL/dI(t);   PLIF: dL/dw = dL/dk k (1 − k)
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
        form: NeuronForm,
        ext: ModuleType,
    ) -> Tensor:
        a = _leak_value(form, w_k)
        spikes, h, i = ext.recurrent_forward(
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
        )
        ctx.save_for_backward(h, spikes, i, w_rec)
        ctx.form, ctx.ext, ctx.a, ctx.has_bias = form, ext, a, b_rec is not None
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Any, ...]:
        h, spikes, i, w_rec = ctx.saved_tensors
        form: NeuronForm = ctx.form
        assert form.derivative is not None
        gpre = form.derivative(h - form.v_threshold).to(h.dtype).contiguous()
        g_in, gk = ctx.ext.recurrent_backward(
            grad_out.to(h.dtype).contiguous(),
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
        )
        n = w_rec.shape[0]
        grad_w = grad_b = grad_k = None
        if ctx.needs_input_grad[1]:
            g_next, s_prev = g_in[1:].reshape(-1, n), spikes[:-1].reshape(-1, n)
            grad_w = g_next.t() @ s_prev if w_rec.dim() == 2 else (g_next * s_prev).sum(0)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g_in.sum((0, 1))
        if form.w is not None and ctx.needs_input_grad[3]:
            grad_k = (gk * (ctx.a * (1.0 - ctx.a))).to(form.w.dtype).reshape(form.w.shape)
        return g_in, grad_w, grad_b, grad_k, None, None


def cpp_recurrent(
    form: NeuronForm, ext: ModuleType, x_seq: Tensor, w_rec: Tensor, b_rec: Tensor | None
) -> Tensor:
    """Spikes ``[T, B, ..., N]`` of the recurrent layer from the fused CPU kernel."""
    shape = x_seq.shape
    x = x_seq.reshape(shape[0], -1, shape[-1]).contiguous()
    w_k = form.w
    if w_k is not None and not (torch.is_grad_enabled() and w_k.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())  # no dL/dk to accumulate
    w = w_rec.contiguous()
    b = None if b_rec is None else b_rec.contiguous()
    return _FusedRecurrent.apply(x, w, b, w_k, form, ext).reshape(shape)
