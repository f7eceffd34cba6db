"""Which kernel runs a neuron or a recurrent layer over one time segment from a given state.

A memory mode (:mod:`snnkit.assembly.memory.segmented`) runs each neuron segment by segment,
handing the state over. Where the fused CPU kernel runs the neuron in ``full`` (``cpp``), it
runs each segment too, from the handed-over state (:func:`snnkit.kernels.cpu.neuron.cpp_segment`:
forward without a graph; backward = one fused recompute of H and one fused backward pass, which
also returns dL/dV(−1)). Every other neuron runs its step function step by step
(:func:`~snnkit.assembly.memory.neuron_segment.neuron_segment`, the reference path), which
:func:`segment_kernel` names so that the fallback can be warned about once per layer.

A recurrent layer's state is ``(neuron state, S(t−1))``; with a fused neuron form on the CPU it
runs :func:`snnkit.kernels.cpu.recurrent.cpp_recurrent_segment` from ``(V, S)``, else its
``step`` loop from the state (the segment's graph is built only when the segment is recomputed
for backward).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snnkit.assembly.memory.neuron_segment import neuron_segment
from snnkit.kernels import recurrent as recurrent_kernels
from snnkit.kernels import select_kernel


class FlatState(tuple):  # type: ignore[type-arg]
    """A state as a flat tuple of tensors built like a NamedTuple (``FlatState(*tensors)``), for
    the recurrent layer's ``(*neuron state, S(t−1))``."""

    def __new__(cls, *items: Tensor) -> FlatState:
        return super().__new__(cls, items)


def segment_kernel(module: Any, probe: Tensor) -> str:
    """``cpp`` when ``module`` (a neuron or a recurrent layer) runs a segment fused from a given
    state on input like ``probe``; else the kernel it would run in ``full`` (``reference`` or
    ``triton``), which in a segment is replaced by the step-by-step reference path."""
    is_recurrent = hasattr(module, "neuron") and hasattr(module, "reference_multi_step")
    select = recurrent_kernels.select_kernel if is_recurrent else select_kernel
    return select(module, probe)[0]


def run_neuron(neuron: Any, x_seg: Tensor, state: Any) -> tuple[Tensor, Any, str]:
    """``(out [T_seg, B, *], end state, kernel)`` of ``neuron`` over ``x_seg`` from ``state``
    (None: its initial state); ``kernel`` is ``cpp`` (fused) or ``reference`` (step by step)."""
    name, form = select_kernel(neuron, x_seg)
    if name != "cpp" or form is None:
        out, end = neuron_segment(neuron, x_seg, state)
        return out, end, "reference"
    from snnkit.kernels.cpu.build import cpu_extension
    from snnkit.kernels.cpu.neuron import cpp_segment

    ext = cpu_extension()
    assert ext is not None
    initial = state is None
    if state is None:
        state = neuron.initial_state(x_seg[0])
    out, v_end = cpp_segment(form, ext, x_seg, state[0], initial)
    return out, type(state)(v_end), "cpp"


def run_recurrent(layer: Any, x_seg: Tensor, state: FlatState | None) -> tuple[Tensor, Any, str]:
    """``(spikes, end state, kernel)`` of a recurrent layer over ``x_seg`` from the flat state
    ``(*neuron state, S(t−1))`` (None: the layer's start, V = v0 and S = 0)."""
    name, form = recurrent_kernels.select_kernel(layer, x_seg)
    neuron = layer.neuron
    initial = state is None
    if state is None:
        first = x_seg[0]
        state = FlatState(*neuron.initial_state(first), torch.zeros_like(first))
    *neuron_state, s_prev = state
    if name == "cpp" and form is not None and len(neuron_state) == 1:
        from snnkit.kernels.cpu.build import recurrent_extension
        from snnkit.kernels.cpu.recurrent import cpp_recurrent_segment

        ext = recurrent_extension()
        assert ext is not None
        out, v_end = cpp_recurrent_segment(
            form, ext, x_seg, layer.weight, layer.bias, (neuron_state[0], s_prev), initial
        )
        # S(T−1) as its own tensor: a view would keep the whole segment's spikes alive
        return out, FlatState(v_end, out[-1].clone()), "cpp"
    kind = type(neuron.initial_state(x_seg[0][:0]))
    step_state: Any = (kind(*neuron_state), s_prev)
    outs = []
    for x in x_seg:
        out, step_state = layer.step(step_state, x)
        outs.append(out)
    return torch.stack(outs), FlatState(*step_state[0], step_state[1]), "reference"


def run_norm_neuron_pair(
    bn: Any, conv: Any, neuron: Any, x_seg: Tensor, state: Any, bits: bool = False
) -> tuple[Tensor, Any, str]:
    """:func:`run_neuron` of ``neuron`` on ``bn(conv(x_seg))`` (a training batch norm; ``conv``
    None: none), keeping only ``x_seg`` (as bits when ``bits``: spikes into ``conv``) for
    backward where the neuron runs fused
    (:func:`~snnkit.assembly.memory.norm_neuron.run_norm_neuron`); else the layers apart (the
    convolution then keeping spikes as bits too)."""
    name, form = select_kernel(neuron, x_seg)  # the same device and dtype as the neuron's input
    if name != "cpp" or form is None:
        if conv is None:
            z = x_seg
        elif bits:
            from snnkit.kernels.bitpack import binary_conv

            z = binary_conv(x_seg.flatten(0, 1), conv).unflatten(0, x_seg.shape[:2])
        else:
            z = type(conv).forward(conv, x_seg)
        return run_neuron(neuron, type(bn).forward(bn, z), state)
    from snnkit.assembly.memory.norm_neuron import run_norm_neuron

    kind = type(neuron.initial_state(x_seg[0][:0]))
    v_init = None if state is None else state[0]  # None: v0, shaped once the input is known
    segment = _FusedSegment(form, state is None)
    out, v_end = run_norm_neuron(bn, conv, x_seg, v_init, segment, bits)
    return out, kind(v_end), "cpp"


class _FusedSegment:
    """The fused CPU kernel of a neuron over one segment, forward and backward apart (for
    :func:`~snnkit.assembly.memory.norm_neuron.run_norm_neuron`)."""

    def __init__(self, form: Any, initial: bool) -> None:
        from snnkit.kernels.cpu.build import cpu_extension

        ext = cpu_extension()
        assert ext is not None and form.w is None and form.leak is not None
        self.form, self.initial, self.ext = form, initial, ext

    def forward(self, y: Tensor, v_init: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(spikes, V(T−1))`` from ``v_init`` (None: v0 everywhere)."""
        from snnkit.kernels.cpu.neuron import cpp_segment

        if v_init is None:
            v_init = y.new_full(y.shape[1:], self.form.v0)
        return cpp_segment(self.form, self.ext, y, v_init, self.initial)

    def backward(
        self, y: Tensor, v_init: Tensor | None, g_out: Tensor | None, g_vend: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """``(dL/dy, dL/dV(−1))``; ``v_init`` None: v0 everywhere."""
        from snnkit.kernels.cpu.neuron import fused_backward

        y = y.contiguous()
        if v_init is None:
            v_init = y.new_full(y.shape[1:], self.form.v0)
        v0 = v_init.to(y.dtype).contiguous()
        g_end = None if g_vend is None else g_vend.reshape(v0.shape)
        gy, _, gv0 = fused_backward(self.form, self.ext, y, v0, self.form.leak, g_out, g_end)
        return gy, gv0.view_as(v_init)
