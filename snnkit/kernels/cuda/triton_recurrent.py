"""Recurrent layer on CUDA: per step the product W_rec S(t−1) by cuBLAS (``torch.matmul``) and
the neuron's charge, fire and reset in one Triton launch (float32).

Same equations and gradient recursion as :mod:`snnkit.kernels.cpu.recurrent` (see there and
``cpu/csrc/recurrent.cpp``); the charge and reset are the ``@triton.jit`` helpers of
:mod:`snnkit.kernels.cuda.triton_neuron`. Forward saves H, S (and I for a learning PLIF);
backward evaluates g'(H − V_th) with the surrogate's ``derivative`` over all steps, then runs
t = T−1 … 0, one product ``dL/dI(t+1) W_rec`` and one Triton launch per step.
Imported lazily (it imports triton). Not run on a GPU in this project yet: it is tested under
``TRITON_INTERPRET=1`` on the CPU (``tests/test_recurrent_triton.py``).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from snnkit.kernels.cuda.triton_neuron import _charge, _reset
from snnkit.kernels.forms import NeuronForm

BLOCK = 512


@triton.jit
def _fwd_step(
    x_ptr, fed_ptr, s_prev_ptr, w1_ptr, b_ptr, v_ptr, s_ptr, h_ptr, i_ptr,
    numel, n_features, a, rest, vth, vr,
    ALL: tl.constexpr, HAS_BIAS: tl.constexpr, SAVE_I: tl.constexpr,
    CHARGE: tl.constexpr, DIVIDE: tl.constexpr, DECAY_INPUT: tl.constexpr, HARD: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < numel
    n = offs % n_features
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    if ALL:
        i = x + tl.load(fed_ptr + offs, mask=mask, other=0.0)
    else:
        sp = tl.load(s_prev_ptr + offs, mask=mask, other=0.0)
        i = x + sp * tl.load(w1_ptr + n, mask=mask, other=0.0)
    if HAS_BIAS:
        i = i + tl.load(b_ptr + n, mask=mask, other=0.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    h = _charge(v, i, a, rest, CHARGE, DIVIDE, DECAY_INPUT)
    s = tl.where(h - vth >= 0.0, 1.0, 0.0)
    tl.store(s_ptr + offs, s, mask=mask)
    tl.store(h_ptr + offs, h, mask=mask)
    if SAVE_I:
        tl.store(i_ptr + offs, i, mask=mask)
    tl.store(v_ptr + offs, _reset(h, s, vth, vr, HARD), mask=mask)


@triton.jit
def _bwd_step(
    gout_ptr, grec_ptr, gin_next_ptr, w1_ptr, h_ptr, s_ptr, gpre_ptr, hp_ptr, sp_ptr, i_ptr,
    gin_ptr, gv_ptr, gk_ptr, numel, n_features, a, rest, vth, vr, v0,
    ALL: tl.constexpr, HAS_NEXT: tl.constexpr, HAS_PREV: tl.constexpr, DETACH: tl.constexpr,
    CHARGE: tl.constexpr, DIVIDE: tl.constexpr, DECAY_INPUT: tl.constexpr, LEARN_K: tl.constexpr,
    HARD: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < numel
    h = tl.load(h_ptr + offs, mask=mask, other=0.0)
    s = tl.load(s_ptr + offs, mask=mask, other=0.0)
    g_v = tl.load(gv_ptr + offs, mask=mask, other=0.0)
    if HARD:
        gh_r = g_v * (1.0 - s)
        gs_r = g_v * vr - g_v * h
    else:
        gh_r = g_v
        gs_r = -(g_v * vth)
    if DETACH:
        gs_r = gs_r * 0.0
    gr = tl.zeros_like(h)
    if HAS_NEXT:
        if ALL:
            gr = tl.load(grec_ptr + offs, mask=mask, other=0.0)
        else:
            n = offs % n_features
            gr = tl.load(gin_next_ptr + offs, mask=mask, other=0.0) * tl.load(
                w1_ptr + n, mask=mask, other=0.0
            )
    gs = tl.load(gout_ptr + offs, mask=mask, other=0.0) + gr + gs_r
    gh = gs * tl.load(gpre_ptr + offs, mask=mask, other=0.0) + gh_r
    if CHARGE == 0:  # IF
        gxx = gh
        gvp = gh
    elif DIVIDE:
        if DECAY_INPUT:
            gxx = gh / a
            gvp = gh - gxx
        else:
            gxx = gh
            gvp = gh - gh / a
    elif DECAY_INPUT:
        gxx = gh * a
        gvp = gh - gxx
    else:
        gxx = gh
        gvp = gh - gh * a
    if LEARN_K:
        if HAS_PREV:
            hp = tl.load(hp_ptr + offs, mask=mask, other=0.0)
            vp = _reset(hp, tl.load(sp_ptr + offs, mask=mask, other=0.0), vth, vr, HARD)
        else:
            vp = tl.zeros_like(h) + v0
        if DECAY_INPUT:
            dk = gh * (tl.load(i_ptr + offs, mask=mask, other=0.0) - (vp - rest))
        else:
            dk = -(gh * (vp - rest))
        tl.store(gk_ptr + offs, tl.load(gk_ptr + offs, mask=mask, other=0.0) + dk, mask=mask)
    tl.store(gin_ptr + offs, gxx, mask=mask)
    tl.store(gv_ptr + offs, gvp, mask=mask)


def _a(form: NeuronForm, w_k: Tensor | None) -> float:
    if form.leak is not None:
        return float(form.leak)
    assert w_k is not None
    return float(torch.sigmoid(w_k.detach()))


def _flags(form: NeuronForm) -> dict[str, Any]:
    return {
        "CHARGE": int(form.charge),
        "DIVIDE": form.charge.divides,
        "DECAY_INPUT": form.charge.decays_input,
        "HARD": form.hard,
    }


class _TritonRecurrent(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w_rec: Tensor,
        b_rec: Tensor | None,
        w_k: Tensor | None,
        form: NeuronForm,
    ) -> Tensor:
        steps, m, n = x.shape
        a = _a(form, w_k)
        save_i = form.charge.learns_k
        spikes, h = torch.empty_like(x), torch.empty_like(x)
        i_all = torch.empty_like(x) if save_i else x
        v = torch.full((m, n), form.v0, dtype=x.dtype, device=x.device)
        s_prev = torch.zeros((m, n), dtype=x.dtype, device=x.device)
        all_to_all = w_rec.dim() == 2
        grid = (triton.cdiv(m * n, BLOCK),)
        for t in range(steps):
            fed = s_prev @ w_rec.t() if all_to_all else s_prev
            _fwd_step[grid](
                x[t], fed, s_prev, w_rec, b_rec if b_rec is not None else x, v, spikes[t], h[t],
                i_all[t], m * n, n, a, form.rest, form.v_threshold, form.v_reset,
                ALL=all_to_all, HAS_BIAS=b_rec is not None, SAVE_I=save_i, BLOCK_SIZE=BLOCK,
                **_flags(form),
            )  # fmt: skip
            s_prev = spikes[t]
        ctx.save_for_backward(h, spikes, i_all, w_rec)
        ctx.form, ctx.a, ctx.has_bias = form, a, b_rec is not None
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Any, ...]:
        h, spikes, i_all, w_rec = ctx.saved_tensors
        form: NeuronForm = ctx.form
        assert form.derivative is not None
        gpre = form.derivative(h - form.v_threshold).to(h.dtype).contiguous()
        grad_out = grad_out.to(h.dtype).contiguous()
        steps, m, n = h.shape
        all_to_all = w_rec.dim() == 2
        w = w_rec.detach()
        g_in = torch.empty_like(h)
        gv = torch.zeros((m, n), dtype=h.dtype, device=h.device)
        gk = torch.zeros((m, n), dtype=h.dtype, device=h.device)
        grid = (triton.cdiv(m * n, BLOCK),)
        for t in range(steps - 1, -1, -1):
            nxt = t < steps - 1
            grec = g_in[t + 1] @ w if (nxt and all_to_all) else gv
            prev = t - 1 if t > 0 else 0
            _bwd_step[grid](
                grad_out[t], grec, g_in[t + 1] if nxt else gv, w, h[t], spikes[t], gpre[t],
                h[prev], spikes[prev], i_all[t], g_in[t], gv, gk, m * n, n, ctx.a, form.rest,
                form.v_threshold, form.v_reset, form.v0,
                ALL=all_to_all, HAS_NEXT=nxt, HAS_PREV=t > 0, DETACH=form.detach_reset,
                LEARN_K=form.charge.learns_k, BLOCK_SIZE=BLOCK, **_flags(form),
            )  # fmt: skip
        grad_w = grad_b = grad_k = None
        if ctx.needs_input_grad[1]:
            g_next, s_prev = g_in[1:].reshape(-1, n), spikes[:-1].reshape(-1, n)
            grad_w = g_next.t() @ s_prev if all_to_all else (g_next * s_prev).sum(0)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g_in.sum((0, 1))
        if form.w is not None and ctx.needs_input_grad[3]:
            total = gk.double().sum()
            grad_k = (total * (ctx.a * (1.0 - ctx.a))).to(form.w.dtype).reshape(form.w.shape)
        return g_in, grad_w, grad_b, grad_k, None


def triton_recurrent(
    form: NeuronForm, x_seq: Tensor, w_rec: Tensor, b_rec: Tensor | None
) -> Tensor:
    """Spikes ``[T, B, ..., N]`` of the recurrent layer from the Triton path."""
    shape = x_seq.shape
    x = x_seq.reshape(shape[0], -1, shape[-1]).contiguous()
    w_k = form.w
    if w_k is not None and not (torch.is_grad_enabled() and w_k.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())
    b = None if b_rec is None else b_rec.contiguous()
    return _TritonRecurrent.apply(x, w_rec.contiguous(), b, w_k, form).reshape(shape)
