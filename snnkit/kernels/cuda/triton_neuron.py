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

from snnkit.kernels.forms import (CHARGE_LIF, CHARGE_LIF_NODECAY, CHARGE_MUL, CHARGE_MUL_NODECAY,
                                 SURROGATE_GENERIC, NeuronSpec)

BLOCK = 512


@triton.jit
def _charge(v, x, a, rest, CHARGE: tl.constexpr):
    if CHARGE == 0:
        h = v + x
    elif CHARGE == 1:
        h = v + tl.math.div_rn(x - (v - rest), a)
    elif CHARGE == 2:
        h = v - tl.math.div_rn(v - rest, a) + x
    elif CHARGE == 3 or CHARGE == 5:
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
    if SUR == 1:
        sg_s = 1.0 / (1.0 + tl.exp(-(c1 * d)))
        g = c1 * sg_s * (1.0 - sg_s)
    elif SUR == 2:
        z = c2 * d
        g = c1 / (1.0 + z * z)
    elif SUR == 3:
        g = tl.maximum(c1 - c2 * tl.abs(d), 0.0)
    elif SUR == 4:
        g = c1 * tl.exp(c2 * tl.abs(d))
    elif SUR == 5:
        u = 1.0 + tl.abs(c2 * d)
        g = c1 / (u * u)
    elif SUR == 6:
        z = c2 * d
        g = c1 * tl.exp(-(z * z))
    elif SUR == 7:
        u = 1.0 + tl.abs(d)
        g = c1 / (u * u)
    elif SUR == 8:
        u = c1 * tl.abs(d) + 1.0
        g = 1.0 / (u * u)
    elif SUR == 9:
        g = tl.where(tl.abs(d) < c1, c2, c3)
    elif SUR == 10:
        g = tl.where(tl.abs(d) < c2, c1, 0.0)
    elif SUR == 11:
        g = tl.exp(c2 * tl.log(1.0 + c1 * tl.abs(d)))
    else:
        g = d * 0.0 + 1.0
    return g

@triton.jit
def forward_kernel(x_ptr, s_ptr, h_ptr, v_ptr, a_ptr, T, N, a, rest, vth, vr, v0,
                   CHARGE: tl.constexpr, HARD: tl.constexpr, SAVE: tl.constexpr,
                   REC: tl.constexpr, A_PTR: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if A_PTR:
        a = tl.load(a_ptr)
    v = tl.zeros([BLOCK], dtype=tl.float32) + v0
    for t in range(T):
        o = t * N + offs
        x = tl.load(x_ptr + o, mask=mask, other=0.0)
        h = _charge(v, x, a, rest, CHARGE)
        s = tl.where(h - vth >= 0.0, 1.0, 0.0)
        tl.store(s_ptr + o, s, mask=mask)
        if SAVE:
            tl.store(h_ptr + o, h, mask=mask)
        v = _reset(h, s, vth, vr, HARD)
        if REC:
            tl.store(v_ptr + o, v, mask=mask)

@triton.jit
def backward_kernel(g_ptr, h_ptr, x_ptr, pre_ptr, gx_ptr, gk_ptr, a_ptr, T, N, a, rest, vth,
                    vr, v0, c1, c2, c3, CHARGE: tl.constexpr, HARD: tl.constexpr,
                    DETACH: tl.constexpr, SUR: tl.constexpr, A_PTR: tl.constexpr,
                    BLOCK: tl.constexpr):
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
        if SUR == 0:
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
        if CHARGE == 0:
            gxx = gh
            gvp = gh
        elif CHARGE == 1:
            gxx = gh / a
            gvp = gh - gxx
        elif CHARGE == 2:
            gxx = gh
            gvp = gh - gh / a
        elif CHARGE == 3 or CHARGE == 5:
            gxx = gh * a
            gvp = gh - gxx
        else:
            gxx = gh
            gvp = gh - gh * a
        if CHARGE == 3 or CHARGE == 4:
            hp = tl.load(h_ptr + o - N, mask=mask & (t > 0), other=0.0)
            sp = tl.where(hp - vth >= 0.0, 1.0, 0.0)
            vp = tl.where(t > 0, _reset(hp, sp, vth, vr, HARD), v0)
            if CHARGE == 3:
                xt = tl.load(x_ptr + o, mask=mask, other=0.0)
                gk += tl.where(mask, gh * (xt - (vp - rest)), 0.0)
            else:
                gk += tl.where(mask, -(gh * (vp - rest)), 0.0)
        tl.store(gx_ptr + o, gxx, mask=mask)
        gv = gvp
    if CHARGE == 3 or CHARGE == 4:
        tl.store(gk_ptr + pid, tl.sum(gk, axis=0))



def _a(spec: NeuronSpec, w: Tensor | None, device: torch.device) -> float | Tensor:
    """The charge constant: a number, or PLIF's k = sigmoid(w) as a 1-element float32 tensor.

    On CUDA k stays on the device (the kernels read it there): no host wait, and a training
    step with PLIF can be captured as a CUDA graph. Elsewhere it is read as a number.
    """
    if spec.a is not None:
        return spec.a
    assert w is not None
    k = torch.sigmoid(w.detach()).float().reshape(1)
    return k.to(device) if device.type == "cuda" else float(k)


def _scalar_args(a: float | Tensor, like: Tensor) -> tuple[Tensor, float, bool]:
    """``(a_ptr, a, A_PTR)`` kernel arguments for a number or a device tensor ``a``."""
    if isinstance(a, Tensor):
        return a, 0.0, True
    return like, a, False


def _launch_forward(spec: NeuronSpec, x: Tensor, a: float | Tensor, save: bool,
                    record: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    fwd = forward_kernel
    T = x.shape[0]
    N = x.numel() // T
    s = torch.empty_like(x)
    h = torch.empty_like(x) if save else s
    v = torch.empty_like(x) if record else s
    a_ptr, a_num, a_dev = _scalar_args(a, x)
    fwd[(triton.cdiv(N, BLOCK),)](x, s, h, v, a_ptr, T, N, a_num, spec.rest, spec.v_threshold,
                                  spec.v_reset, spec.v0, CHARGE=spec.charge, HARD=spec.hard,
                                  SAVE=save, REC=record, A_PTR=a_dev, BLOCK=BLOCK,
                                  enable_fp_fusion=False)
    return s, (h if save else None), (v if record else None)


class _TritonNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor | None, spec: NeuronSpec,
                record: bool) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        a = _a(spec, w, x.device)
        s, h, v = _launch_forward(spec, x, a, True, record)
        ctx.save_for_backward(x, h)
        ctx.spec, ctx.a = spec, a
        v = v if v is not None else s.new_empty(0)
        ctx.mark_non_differentiable(v)
        return s, v

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor,  # type: ignore[override]
                 _gv: Tensor) -> tuple[Any, ...]:
        bwd = backward_kernel
        x, h = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        sur = spec.surrogate
        T = x.shape[0]
        N = x.numel() // T
        grid = triton.cdiv(N, BLOCK)
        pre = h
        if sur.sid == SURROGATE_GENERIC:
            pre = spec.module.derivative(h - spec.v_threshold).float().contiguous()
        gx = torch.empty_like(x)
        gk = torch.zeros(grid, dtype=torch.float32, device=x.device)
        a_ptr, a_num, a_dev = _scalar_args(ctx.a, x)
        bwd[(grid,)](grad_out.float().contiguous(), h, x, pre, gx, gk, a_ptr, T, N, a_num,
                     spec.rest, spec.v_threshold, spec.v_reset, spec.v0, sur.c1, sur.c2, sur.c3,
                     CHARGE=spec.charge, HARD=spec.hard, DETACH=spec.detach_reset, SUR=sur.sid,
                     A_PTR=a_dev, BLOCK=BLOCK)
        grad_w = None
        if spec.w is not None and ctx.needs_input_grad[1]:
            k = ctx.a.double() if isinstance(ctx.a, Tensor) else ctx.a
            grad_w = (gk.double().sum() * (k * (1.0 - k))).to(spec.w.dtype).reshape(spec.w.shape)
        return (gx if ctx.needs_input_grad[0] else None), grad_w, None, None


def cuda_division(spec: NeuronSpec) -> NeuronSpec:
    """LIF's ``/ tau`` the way PyTorch computes it on CUDA: ``· (1 / tau)``.

    On CUDA, PyTorch divides a tensor by a Python number by multiplying with its float32
    reciprocal ``1.0f / float(tau)`` (``div_true_kernel_cuda``), which can differ from a true
    division in the last bit. The reference loop on a CUDA tensor does exactly that, so the
    kernel does too, and spikes and V stay bit-identical to it on the GPU (the C++ kernel
    divides, as PyTorch does on the CPU).
    """
    if spec.charge not in (CHARGE_LIF, CHARGE_LIF_NODECAY):
        return spec
    assert spec.a is not None
    inv = float(np.float32(1.0) / np.float32(spec.a))
    charge = CHARGE_MUL if spec.charge == CHARGE_LIF else CHARGE_MUL_NODECAY
    return spec._replace(charge=charge, a=inv)


def triton_multi_step(spec: NeuronSpec, x_seq: Tensor,
                      record: bool) -> tuple[Tensor, Tensor | None]:
    """Spikes ``[T, B, *]`` (and the V trace if ``record``) from the Triton kernels."""
    x = x_seq.contiguous()
    if x.is_cuda:
        spec = cuda_division(spec)
    w = spec.w
    if w is not None and not (torch.is_grad_enabled() and w.requires_grad):
        spec = spec._replace(charge=spec.charge + 2)  # frozen PLIF: no dL/dk
    w_grad = w is not None and w.requires_grad
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or w_grad)
    if not needs_grad:
        s, _, v = _launch_forward(spec, x.detach(), _a(spec, w, x.device), False, record)
        return s, v
    s, v = _TritonNeuron.apply(x, w, spec, record)
    return s, (v if record else None)

