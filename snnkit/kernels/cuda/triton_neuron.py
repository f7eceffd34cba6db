"""Fused CUDA kernel in Triton: one forward and one backward pass through time (float32).

Same equations and gradient recursion as :mod:`snnkit.kernels.cpu.neuron` (see there). On the GPU
the forward pass saves H ``[T, B, *]`` (bandwidth is plentiful) and the backward pass reads it
back from t = T−1 to 0. The forward kernel divides with IEEE ``div_rn`` and is compiled with
``enable_fp_fusion=False`` (no contracted multiply-adds), so its spikes match the PyTorch step
function bit for bit.
Imported lazily (it imports triton): only when a CUDA tensor reaches a fusable neuron.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from snnkit.kernels.forms import ChargeMode, NeuronForm, SurrogateKind

BLOCK = 512

# The numbers of snnkit.kernels.forms as compile-time constants of the kernels (which also take
# the ChargeMode predicates DIVIDE, DECAY_INPUT and LEARN_K as constexpr arguments).
CHARGE_IF = tl.constexpr(int(ChargeMode.IF))
SUR_GENERIC = tl.constexpr(int(SurrogateKind.GENERIC))
SUR_SIGMOID = tl.constexpr(int(SurrogateKind.SIGMOID))
SUR_ATAN = tl.constexpr(int(SurrogateKind.ATAN))
SUR_PIECEWISE_QUADRATIC = tl.constexpr(int(SurrogateKind.PIECEWISE_QUADRATIC))
SUR_PIECEWISE_EXP = tl.constexpr(int(SurrogateKind.PIECEWISE_EXP))
SUR_SOFTSIGN = tl.constexpr(int(SurrogateKind.SOFTSIGN))
SUR_ERF = tl.constexpr(int(SurrogateKind.ERF))
SUR_SUPERSPIKE = tl.constexpr(int(SurrogateKind.SUPERSPIKE))
SUR_FAST_SIGMOID = tl.constexpr(int(SurrogateKind.FAST_SIGMOID))
SUR_PIECEWISE_LEAKY_RELU = tl.constexpr(int(SurrogateKind.PIECEWISE_LEAKY_RELU))
SUR_RECT = tl.constexpr(int(SurrogateKind.RECT))
SUR_Q_PSEUDO_SPIKE = tl.constexpr(int(SurrogateKind.Q_PSEUDO_SPIKE))
SUR_STRAIGHT_THROUGH = tl.constexpr(int(SurrogateKind.STRAIGHT_THROUGH))


@triton.jit
def _charge(v, x, a, rest, CHARGE: tl.constexpr, DIVIDE: tl.constexpr, DECAY_INPUT: tl.constexpr):
    if CHARGE == CHARGE_IF:
        h = v + x
    elif DIVIDE:
        if DECAY_INPUT:
            h = v + tl.math.div_rn(x - (v - rest), a)
        else:
            h = v - tl.math.div_rn(v - rest, a) + x
    elif DECAY_INPUT:
        h = v + (x - (v - rest)) * a
    else:
        h = v - (v - rest) * a + x
    return h


@triton.jit
def _reset(h, s, vth, vr, HARD: tl.constexpr):
    if HARD:
        out = h * (1.0 - s) + vr * s
    else:
        out = h - vth * s
    return out


@triton.jit
def _surrogate(d, c1, c2, c3, SUR: tl.constexpr):
    if SUR == SUR_SIGMOID:
        sg_s = 1.0 / (1.0 + tl.exp(-(c1 * d)))
        g = c1 * sg_s * (1.0 - sg_s)
    elif SUR == SUR_ATAN:
        z = c2 * d
        g = c1 / (1.0 + z * z)
    elif SUR == SUR_PIECEWISE_QUADRATIC:
        g = tl.maximum(c1 - c2 * tl.abs(d), 0.0)
    elif SUR == SUR_PIECEWISE_EXP:
        g = c1 * tl.exp(c2 * tl.abs(d))
    elif SUR == SUR_SOFTSIGN:
        u = 1.0 + tl.abs(c2 * d)
        g = c1 / (u * u)
    elif SUR == SUR_ERF:
        z = c2 * d
        g = c1 * tl.exp(-(z * z))
    elif SUR == SUR_SUPERSPIKE:
        u = 1.0 + tl.abs(d)
        g = c1 / (u * u)
    elif SUR == SUR_FAST_SIGMOID:
        u = c1 * tl.abs(d) + 1.0
        g = 1.0 / (u * u)
    elif SUR == SUR_PIECEWISE_LEAKY_RELU:
        g = tl.where(tl.abs(d) < c1, c2, c3)
    elif SUR == SUR_RECT:
        g = tl.where(tl.abs(d) < c2, c1, 0.0)
    elif SUR == SUR_Q_PSEUDO_SPIKE:
        g = tl.exp(c2 * tl.log(1.0 + c1 * tl.abs(d)))
    else:  # SUR_STRAIGHT_THROUGH
        g = d * 0.0 + 1.0
    return g


@triton.jit
def forward_kernel(
    x_ptr,
    s_ptr,
    h_ptr,
    v_ptr,
    a_ptr,
    T,
    N,
    a,
    rest,
    vth,
    vr,
    v0,
    CHARGE: tl.constexpr,
    DIVIDE: tl.constexpr,
    DECAY_INPUT: tl.constexpr,
    HARD: tl.constexpr,
    SAVE: tl.constexpr,
    REC: tl.constexpr,
    A_PTR: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if A_PTR:
        a = tl.load(a_ptr)
    v = tl.zeros([BLOCK], dtype=tl.float32) + v0
    for t in range(T):
        o = t * N + offs
        x = tl.load(x_ptr + o, mask=mask, other=0.0)
        h = _charge(v, x, a, rest, CHARGE, DIVIDE, DECAY_INPUT)
        s = tl.where(h - vth >= 0.0, 1.0, 0.0)
        tl.store(s_ptr + o, s, mask=mask)
        if SAVE:
            tl.store(h_ptr + o, h, mask=mask)
        v = _reset(h, s, vth, vr, HARD)
        if REC:
            tl.store(v_ptr + o, v, mask=mask)


@triton.jit
def backward_kernel(
    g_ptr,
    h_ptr,
    x_ptr,
    pre_ptr,
    gx_ptr,
    gk_ptr,
    a_ptr,
    T,
    N,
    a,
    rest,
    vth,
    vr,
    v0,
    c1,
    c2,
    c3,
    CHARGE: tl.constexpr,
    DIVIDE: tl.constexpr,
    DECAY_INPUT: tl.constexpr,
    LEARN_K: tl.constexpr,
    HARD: tl.constexpr,
    DETACH: tl.constexpr,
    SUR: tl.constexpr,
    A_PTR: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if A_PTR:
        a = tl.load(a_ptr)
    gv = tl.zeros([BLOCK], dtype=tl.float32)
    gk = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(T):
        t = T - 1 - i
        o = t * N + offs
        h = tl.load(h_ptr + o, mask=mask, other=0.0)
        go = tl.load(g_ptr + o, mask=mask, other=0.0)
        d = h - vth
        s = tl.where(d >= 0.0, 1.0, 0.0)
        if SUR == SUR_GENERIC:
            sg = tl.load(pre_ptr + o, mask=mask, other=0.0)
        else:
            sg = _surrogate(d, c1, c2, c3, SUR)
        if HARD:
            gh_r = gv * (1.0 - s)
            if DETACH:
                gs_r = gv * 0.0
            else:
                gs_r = gv * vr - gv * h
        else:
            gh_r = gv
            if DETACH:
                gs_r = gv * 0.0
            else:
                gs_r = -(gv * vth)
        gh = (go + gs_r) * sg + gh_r
        if CHARGE == CHARGE_IF:
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
            hp = tl.load(h_ptr + o - N, mask=mask & (t > 0), other=0.0)
            sp = tl.where(hp - vth >= 0.0, 1.0, 0.0)
            vp = tl.where(t > 0, _reset(hp, sp, vth, vr, HARD), v0)
            if DECAY_INPUT:
                xt = tl.load(x_ptr + o, mask=mask, other=0.0)
                gk += tl.where(mask, gh * (xt - (vp - rest)), 0.0)
            else:
                gk += tl.where(mask, -(gh * (vp - rest)), 0.0)
        tl.store(gx_ptr + o, gxx, mask=mask)
        gv = gvp
    if LEARN_K:
        tl.store(gk_ptr + pid, tl.sum(gk, axis=0))


def _leak_arg(form: NeuronForm, w: Tensor | None, device: torch.device) -> float | Tensor:
    """The charge constant ``a`` as a kernel argument: a number, or PLIF's k = sigmoid(w) as a
    1-element float32 tensor.

    On CUDA k stays on the device (the kernels read it there): no host wait, and a training
    step with PLIF can be captured as a CUDA graph. Elsewhere it is read as a number.
    """
    if form.leak is not None:
        return form.leak
    assert w is not None
    k = torch.sigmoid(w.detach()).float().reshape(1)
    return k.to(device) if device.type == "cuda" else float(k)


def _scalar_args(a: float | Tensor, like: Tensor) -> tuple[Tensor, float, bool]:
    """``(a_ptr, a, A_PTR)`` kernel arguments for a number or a device tensor ``a``."""
    if isinstance(a, Tensor):
        return a, 0.0, True
    return like, a, False


def _mode_args(mode: ChargeMode) -> dict[str, Any]:
    """The constexpr arguments that name the charge: the mode and its predicates."""
    return {"CHARGE": int(mode), "DIVIDE": mode.divides, "DECAY_INPUT": mode.decays_input}


def _launch_forward(
    form: NeuronForm, x: Tensor, a: float | Tensor, save: bool, record: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    fwd = forward_kernel
    T = x.shape[0]
    N = x.numel() // T
    s = torch.empty_like(x)
    h = torch.empty_like(x) if save else s
    v = torch.empty_like(x) if record else s
    a_ptr, a_num, a_dev = _scalar_args(a, x)
    fwd[(triton.cdiv(N, BLOCK),)](
        x,
        s,
        h,
        v,
        a_ptr,
        T,
        N,
        a_num,
        form.rest,
        form.v_threshold,
        form.v_reset,
        form.v0,
        **_mode_args(form.charge),
        HARD=form.hard,
        SAVE=save,
        REC=record,
        A_PTR=a_dev,
        BLOCK=BLOCK,
        enable_fp_fusion=False,
    )
    return s, (h if save else None), (v if record else None)


class _TritonNeuron(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, w: Tensor | None, form: NeuronForm, record: bool
    ) -> tuple[Tensor, Tensor]:
        a = _leak_arg(form, w, x.device)
        s, h, v = _launch_forward(form, x, a, True, record)
        ctx.save_for_backward(x, h)
        ctx.form, ctx.a = form, a
        v = v if v is not None else s.new_empty(0)
        ctx.mark_non_differentiable(v)
        return s, v

    @staticmethod
    def backward(
        ctx: Any,
        grad_out: Tensor,
        _gv: Tensor,
    ) -> tuple[Any, ...]:
        bwd = backward_kernel
        x, h = ctx.saved_tensors
        form: NeuronForm = ctx.form
        sur = form.surrogate
        T = x.shape[0]
        N = x.numel() // T
        grid = triton.cdiv(N, BLOCK)
        pre = h
        if sur.kind == SurrogateKind.GENERIC:
            assert form.derivative is not None
            pre = form.derivative(h - form.v_threshold).float().contiguous()
        gx = torch.empty_like(x)
        gk = torch.zeros(grid, dtype=torch.float32, device=x.device)
        a_ptr, a_num, a_dev = _scalar_args(ctx.a, x)
        c1, c2, c3 = sur.constants
        bwd[(grid,)](
            grad_out.float().contiguous(),
            h,
            x,
            pre,
            gx,
            gk,
            a_ptr,
            T,
            N,
            a_num,
            form.rest,
            form.v_threshold,
            form.v_reset,
            form.v0,
            c1,
            c2,
            c3,
            **_mode_args(form.charge),
            LEARN_K=form.charge.learns_k,
            HARD=form.hard,
            DETACH=form.detach_reset,
            SUR=int(sur.kind),
            A_PTR=a_dev,
            BLOCK=BLOCK,
        )
        grad_w = None
        if form.w is not None and ctx.needs_input_grad[1]:
            k = ctx.a.double() if isinstance(ctx.a, Tensor) else ctx.a
            grad_w = (gk.double().sum() * (k * (1.0 - k))).to(form.w.dtype).reshape(form.w.shape)
        return (gx if ctx.needs_input_grad[0] else None), grad_w, None, None


def cuda_division(form: NeuronForm) -> NeuronForm:
    """LIF's ``/ tau`` the way PyTorch computes it on CUDA: ``· (1 / tau)``.

    On CUDA, PyTorch divides a tensor by a Python number by multiplying with its float32
    reciprocal ``1.0f / float(tau)`` (``div_true_kernel_cuda``), which can differ from a true
    division in the last bit. The reference loop on a CUDA tensor does exactly that, so the
    kernel does too, and spikes and V stay bit-identical to it on the GPU (the C++ kernel
    divides, as PyTorch does on the CPU).
    """
    if not form.charge.divides:
        return form
    assert form.leak is not None
    inv = float(np.float32(1.0) / np.float32(form.leak))
    return form._replace(charge=form.charge.by_multiplication(), leak=inv)


def triton_multi_step(
    form: NeuronForm, x_seq: Tensor, record: bool
) -> tuple[Tensor, Tensor | None]:
    """Spikes ``[T, B, *]`` (and the V trace if ``record``) from the Triton kernels."""
    x = x_seq.contiguous()
    if x.is_cuda:
        form = cuda_division(form)
    w = form.w
    if w is not None and not (torch.is_grad_enabled() and w.requires_grad):
        form = form._replace(charge=form.charge.without_grad_k())  # frozen PLIF: no dL/dk
    w_grad = w is not None and w.requires_grad
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or w_grad)
    if not needs_grad:
        s, _, v = _launch_forward(form, x.detach(), _leak_arg(form, w, x.device), False, record)
        return s, v
    s, v = _TritonNeuron.apply(x, w, form, record)
    return s, (v if record else None)
