"""The memory modes as one forward module: time segments, recomputed during backward.

The sequence ``[T, B, *]`` is cut into segments of ``L`` steps. The forward pass runs every
segment without building a graph (:class:`~snnkit.assembly.memory.runner.SegmentRunner`,
neuron state handed from segment to segment) and keeps only what the mode needs; the backward
pass runs each segment again with a graph and backpropagates through it at once, so at most one
segment's activations exist at a time:

- ``checkpoint`` (exact BPTT): keeps the neuron states at the segment starts (and each
  segment's RNG state); backward walks the segments from the last to the first, feeding the
  gradient of each segment's start state into the previous segment's end state. With
  L ≈ √T the memory is O(√T · one step) instead of O(T · one step), the gradients equal full
  BPTT (up to float32 rounding from the order of the sums), for one more forward pass of all
  segments but the last: the last segment runs with a graph in the forward pass already, and
  backward starts from that graph (the peak memory is one segment's graph either way).
- ``tbptt`` K (truncated BPTT, Williams & Peng 1990): segments of K steps whose start states are
  detached: dL/dθ = Σ_s ∂L/∂θ |_s where each segment's term stops at its first step.
- ``online`` (SLTT, Meng et al., "Towards Memory- and Time-Efficient Backpropagation for
  Training Spiking Neural Networks", ICCV 2023): K = 1, every step's temporal path dropped:
  dL/dθ = Σ_t ∂L/∂o(t) · ∂o(t)/∂θ with the states s(t−1) held constant. The loss is the recipe's
  (on all T outputs; ∂L/∂o(t) comes from the first pass), so memory is independent of T except
  for the input sequence and the output [T, B, C]. This is SLTT's gradient, not OTTT's (Xiao et
  al., NeurIPS 2022, whose eligibility traces also keep the leak's contribution of earlier
  inputs to the weight gradient).

Truncated modes walk the segments forwards in backward (no state is kept between the passes).
Batch-norm buffers are restored after each recomputation, so running statistics are updated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.assembly.forward import EncodedForward
from snnkit.assembly.memory.norm_neuron import RECOMPUTE_MACS
from snnkit.assembly.memory.runner import SegmentRunner, States
from snnkit.components.functional import reset_net
from snnkit.kernels.bitpack import pack_bits, unpack_bits


@dataclass(frozen=True)
class SegmentPlan:
    """How T steps are cut: ``mode`` (checkpoint, tbptt or online), ``length`` steps per
    segment, ``exact`` (gradients carried across segment boundaries); ``recompute_macs``: which
    convolutions on spikes are recomputed in backward (``train.recompute_macs``,
    :mod:`~snnkit.assembly.memory.norm_neuron`)."""

    mode: str
    length: int
    recompute_macs: int = RECOMPUTE_MACS

    @property
    def exact(self) -> bool:
        return self.mode == "checkpoint"

    def bounds(self, steps: int) -> list[tuple[int, int]]:
        """``[(t0, t1), ...]`` covering ``range(steps)`` in segments of ``length`` steps."""
        return [(t, min(t + self.length, steps)) for t in range(0, steps, self.length)]


def default_segment(steps: int) -> int:
    """The checkpoint segment length ⌈√T⌉ (memory √T states + √T steps of activations)."""
    return max(1, math.ceil(math.sqrt(steps)))


def segment_plan(
    memory: str,
    steps: int,
    tbptt: int | None,
    segment_steps: int | None,
    recompute_macs: int = RECOMPUTE_MACS,
) -> SegmentPlan | None:
    """The plan for a resolved ``train.memory`` (not ``auto``) and ``train.tbptt``; None for
    ``full`` without truncation (the ordinary forward module)."""
    if memory == "online":
        return SegmentPlan("online", 1, recompute_macs)
    if tbptt is not None and tbptt < steps:
        return SegmentPlan("tbptt", tbptt, recompute_macs)
    if memory == "checkpoint":
        return SegmentPlan("checkpoint", segment_steps or default_segment(steps), recompute_macs)
    return None


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[Tensor, Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _leaves(states: States, grad: bool) -> States:
    """Detached copies of ``states`` (leaves that require grad when ``grad``)."""
    out: States = {}
    for name, st in states.items():
        if st is None:
            out[name] = None
            continue
        out[name] = type(st)(
            *(t.detach().requires_grad_(grad and t.is_floating_point()) for t in st)
        )
    return out


def _pack_steps(seq: Tensor) -> Tensor:
    """``seq [T, *]`` of {0, 1} as bits, one row of whole bytes per step: ``[T, ⌈n/8⌉]``."""
    rows = seq.detach().reshape(seq.shape[0], -1)
    pad = (-rows.shape[1]) % 8
    if pad:
        rows = torch.nn.functional.pad(rows, (0, pad))
    return pack_bits(rows).view(seq.shape[0], -1)


class _Steps:
    """The packed sequence, unpacked one slice of steps at a time (``steps[t0:t1]``)."""

    def __init__(self, packed: Tensor, shape: torch.Size, dtype: torch.dtype) -> None:
        self.packed, self.shape, self.dtype = packed, shape, dtype
        self.device = packed.device

    def __getitem__(self, steps: slice) -> Tensor:
        rows = self.packed[steps]
        n = math.prod(self.shape[1:])
        bits = unpack_bits(
            rows.reshape(-1), torch.Size((rows.shape[0], rows.shape[1] * 8)), self.dtype
        )
        return bits[:, :n].reshape(rows.shape[0], *self.shape[1:])


def _is_binary(x: Tensor) -> bool:
    return x.is_floating_point() and bool(((x == 0) | (x == 1)).all())


class _Segmented(torch.autograd.Function):
    """``out = model(seq)`` through time segments; backward recomputes them (module doc)."""

    @staticmethod
    def forward(
        ctx: Any, runner: SegmentRunner, plan: SegmentPlan, seq: Tensor, anchor: Tensor
    ) -> Tensor:
        del anchor  # only makes the output require grad
        bounds = plan.bounds(seq.shape[0])
        runner.new_sequence()
        ctx.rng0 = _rng_state(seq.device)
        starts: list[States] = []
        rngs = []
        states: States = {}
        outs = []
        ctx.kept = None
        with torch.no_grad():
            for i, (t0, t1) in enumerate(bounds):
                if plan.exact:
                    starts.append(states)
                    rngs.append(_rng_state(seq.device))
                if plan.exact and i == len(bounds) - 1:
                    ctx.kept = _run_with_graph(runner, seq, t0, t1, states, ctx.needs_input_grad[2])
                    outs.append(ctx.kept[2].detach())
                    continue
                out, states = runner.run(seq[t0:t1], states)
                outs.append(out)
        ctx.rng_end = _rng_state(seq.device)
        ctx.runner, ctx.plan, ctx.bounds, ctx.rngs = runner, plan, bounds, rngs
        ctx.seq_shape, ctx.seq_dtype = seq.shape, seq.dtype
        ctx.packed = _is_binary(seq) and not ctx.needs_input_grad[2]
        stored = _pack_steps(seq) if ctx.packed else seq.detach()
        draw_names = list(runner.draws)
        draw_tensors = [t for n in draw_names for t in runner.draws[n]]
        ctx.draw_layout = [(n, len(runner.draws[n])) for n in draw_names]
        state_layout, state_tensors = [], []
        for st in starts:
            layout = []
            for name, value in st.items():
                if value is not None:
                    layout.append((name, type(value), len(value)))
                    state_tensors.extend(value)
            state_layout.append(layout)
        ctx.state_layout = state_layout
        ctx.save_for_backward(stored, *draw_tensors, *state_tensors)
        return torch.cat(outs)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Any, ...]:
        runner: SegmentRunner = ctx.runner
        plan: SegmentPlan = ctx.plan
        saved = list(ctx.saved_tensors)
        stored = saved.pop(0)
        seq = _Steps(stored, ctx.seq_shape, ctx.seq_dtype) if ctx.packed else stored
        draws = {}
        for name, count in ctx.draw_layout:
            draws[name], saved = tuple(saved[:count]), saved[count:]
        starts: list[States] = []
        for layout in ctx.state_layout:
            st: States = {}
            for name, kind, count in layout:
                st[name], saved = kind(*saved[:count]), saved[count:]
            starts.append(st)
        want_seq = ctx.needs_input_grad[2]
        grad_seq = (
            torch.zeros(ctx.seq_shape, dtype=ctx.seq_dtype, device=stored.device)
            if want_seq
            else None
        )
        device = stored.device
        buffers = [b.detach().clone() for b in runner.model.buffers()]
        here = _rng_state(device)
        runner.draws = draws
        try:
            if plan.exact:
                _backward_exact(runner, ctx, seq, grad_out, starts, grad_seq)
            else:
                _set_rng_state(ctx.rng0, device)
                _backward_truncated(runner, ctx, seq, grad_out, grad_seq)
        finally:
            _set_rng_state(here, device)
            with torch.no_grad():
                for b, old in zip(runner.model.buffers(), buffers, strict=True):
                    b.copy_(old)
            runner.new_sequence()
        return None, None, grad_seq, None


def _segment_input(seq: Any, t0: int, t1: int, want: bool) -> Tensor:
    x = seq[t0:t1].detach()
    return x.requires_grad_() if want else x


Kept = tuple[States, Tensor, Tensor]
"""A segment run with a graph: (start-state leaves, input leaf, output)."""


def _run_with_graph(
    runner: SegmentRunner, seq: Any, t0: int, t1: int, states: States, want_seq: bool
) -> Kept:
    """Segment ``[t0, t1)`` from ``states`` with a graph (leaves for the start state and the
    input), for backward to start from."""
    start = _leaves(states, grad=True)
    x = _segment_input(seq, t0, t1, want_seq)
    with torch.enable_grad():
        out, _ = runner.run(x, start)
    return start, x, out


def _backward_exact(
    runner: SegmentRunner,
    ctx: Any,
    seq: Any,
    grad_out: Tensor,
    starts: list[States],
    grad_seq: Tensor | None,
) -> None:
    carry: dict[str, tuple[Tensor | None, ...]] = {}
    kept: Kept | None = ctx.kept
    ctx.kept = None
    for i in reversed(range(len(ctx.bounds))):
        t0, t1 = ctx.bounds[i]
        end: States = {}
        if kept is not None:  # the last segment: its graph is from the forward pass
            (start, x, out), kept = kept, None
        else:
            _set_rng_state(ctx.rngs[i], seq.device)
            start = _leaves(starts[i], grad=True)
            x = _segment_input(seq, t0, t1, grad_seq is not None)
            with torch.enable_grad():
                out, end = runner.run(x, start)
        tensors, grads = [out], [grad_out[t0:t1]]
        for name, g in carry.items():
            for t, gt in zip(end.get(name) or (), g, strict=True):
                if gt is not None and t.requires_grad:
                    tensors.append(t)
                    grads.append(gt)
        pairs = [(t, g) for t, g in zip(tensors, grads, strict=True) if t.requires_grad]
        if pairs:
            torch.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
        carry = {name: tuple(t.grad for t in st) for name, st in start.items() if st is not None}
        if grad_seq is not None and x.grad is not None:
            grad_seq[t0:t1] = x.grad


def _backward_truncated(
    runner: SegmentRunner, ctx: Any, seq: Any, grad_out: Tensor, grad_seq: Tensor | None
) -> None:
    states: States = {}
    for t0, t1 in ctx.bounds:
        x = _segment_input(seq, t0, t1, grad_seq is not None)
        with torch.enable_grad():
            out, end = runner.run(x, _leaves(states, grad=False))
        if out.requires_grad:
            torch.autograd.backward([out], [grad_out[t0:t1]])
        states = {
            n: (None if st is None else type(st)(*(t.detach() for t in st)))
            for n, st in end.items()
        }
        if grad_seq is not None and x.grad is not None:
            grad_seq[t0:t1] = x.grad


class SegmentedForward(nn.Module):
    """``x [B, *] -> [T, B, C]`` training through :class:`SegmentPlan` segments.

    Without a graph to build (``torch.no_grad``, evaluation) or in eval mode it is the ordinary
    :class:`~snnkit.assembly.forward.EncodedForward`. ``capturable`` is False: the engine does
    not record it as a CUDA graph (its backward runs the model again).
    """

    capturable = False

    def __init__(self, encoder: nn.Module, model: nn.Module, plan: SegmentPlan) -> None:
        super().__init__()
        self.encoder, self.model, self.plan = encoder, model, plan
        self.dense = EncodedForward.dense(encoder, model)
        self.runner = SegmentRunner(model, recompute_macs=plan.recompute_macs)
        self._anchor = torch.empty(0, requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and self.model.training):
            return self.dense(x)
        seq = self.encoder(x)
        out = _Segmented.apply(self.runner, self.plan, seq, self._anchor)
        reset_net(self.model)
        return out

    def extra_repr(self) -> str:
        return f"mode={self.plan.mode}, segment_steps={self.plan.length}"
