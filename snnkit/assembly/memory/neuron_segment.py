"""A neuron over one time segment from a given state, saving only its input and start state.

``neuron_segment(neuron, x_seg, state) -> (out_seg, end_state)`` runs the neuron's pure
``step_fn`` over ``x_seg [T_seg, B, *]`` from ``state`` (None: its initial state). The forward
pass builds no graph and saves ``x_seg`` and the start state (what a fused backward needs:
every other value of the segment is recomputed from them). The backward pass recomputes the
states s(0..T_seg−1) once, then walks the steps backwards; at step t it runs
``(o(t), s(t)) = step_fn(s(t−1), x(t))`` with a graph and takes

    (dL/dx(t), dL/ds(t−1), dL/dθ) = vjp of step_fn at (s(t−1), x(t), θ) with (dL/do(t), dL/ds(t))

so the gradients are the reference loop's (the same step function, by the chain rule), and the
gradient of the end state (from the next segment) and of the start state (to the previous one)
flow through. θ: the neuron's parameters (PLIF's w, a learnable surrogate's shape).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class _NeuronSegment(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, neuron: Any, n_state: int, x_seg: Tensor, *rest: Tensor
    ) -> tuple[Tensor, ...]:
        start, params = rest[:n_state], rest[n_state:]
        del params  # read by step_fn through the module
        state = neuron.initial_state(x_seg[0]) if n_state == 0 else ctx_state(neuron, x_seg, start)
        outs = []
        with torch.no_grad():
            for x in x_seg:
                out, state = neuron.step(state, x)
                outs.append(out)
        ctx.neuron, ctx.n_state, ctx.kind = neuron, n_state, type(state)
        ctx.save_for_backward(x_seg, *start)
        return (torch.stack(outs), *state)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor, *grad_end: Tensor | None) -> tuple[Any, ...]:
        neuron = ctx.neuron
        x_seg, *start_list = ctx.saved_tensors
        params = [p for p in neuron.parameters() if p.requires_grad]
        with torch.no_grad():
            state = neuron.initial_state(x_seg[0]) if ctx.n_state == 0 else ctx.kind(*start_list)
            states = [state]
            for x in x_seg[:-1]:
                _, state = neuron.step(state, x)
                states.append(state)
        g_state: list[Tensor | None] = list(grad_end)
        gx = torch.zeros_like(x_seg) if ctx.needs_input_grad[2] else None
        g_params: list[Tensor | None] = [None] * len(params)
        for t in range(x_seg.shape[0] - 1, -1, -1):
            prev = ctx.kind(*(s.detach().requires_grad_() for s in states[t]))
            x = x_seg[t].detach().requires_grad_()
            with torch.enable_grad():
                out, new = neuron.step(prev, x)
            outputs, grads = [out], [grad_out[t]]
            for value, g in zip(new, g_state, strict=True):
                if g is not None and value.requires_grad:
                    outputs.append(value)
                    grads.append(g)
            inputs = [x, *prev, *params]
            got = torch.autograd.grad(outputs, inputs, grads, allow_unused=True)
            if gx is not None and got[0] is not None:
                gx[t] = got[0]
            g_state = list(got[1 : 1 + len(prev)])
            for i, g in enumerate(got[1 + len(prev) :]):
                if g is not None:
                    prev_g = g_params[i]
                    g_params[i] = g if prev_g is None else prev_g + g
        g_start = g_state if ctx.n_state else []
        all_params = list(neuron.parameters())
        by_param = dict(zip((id(p) for p in params), g_params, strict=True))
        return (None, None, gx, *g_start, *(by_param.get(id(p)) for p in all_params))


def ctx_state(neuron: Any, x_seg: Tensor, start: tuple[Tensor, ...]) -> Any:
    """``start`` as the neuron's state type (a NamedTuple such as ``MembraneState``)."""
    return type(neuron.initial_state(x_seg[0][:0]))(*start)


def neuron_segment(neuron: Any, x_seg: Tensor, state: Any) -> tuple[Tensor, Any]:
    """``(out [T_seg, B, *], end state)`` of ``neuron`` over ``x_seg`` from ``state`` (None:
    the initial state); see the module doc for what is saved and how gradients flow."""
    start = () if state is None else tuple(state)
    params = list(neuron.parameters())
    result = _NeuronSegment.apply(neuron, len(start), x_seg, *start, *params)
    out, end = result[0], result[1:]
    kind = type(state) if state is not None else type(neuron.initial_state(x_seg[0][:0]))
    return out, kind(*end)
