"""How much memory a training batch needs in each mode, from one small measured step.

:func:`profile` runs the model once with a graph on a probe of ``T_p`` steps and ``B_p``
samples under :class:`~snnkit.assembly.memory.meter.SavedTensorMeter` and divides by
``T_p · B_p``: the bytes each layer saves per step and sample in ``full`` mode, the bytes one
step of a recomputed segment saves, and the bytes of every neuron's state per sample. Saved
activations grow linearly in T and B, so for the recipe's T and batch B
(:class:`MemoryEstimate`)::

    full        = Σ_layers a_l · T · B
    checkpoint  = i · T · B + (⌈T/L⌉ − 1) · s · B + (a_seg · L + r) · B       (L segment steps)
    tbptt K     = i · T · B + s · B + (a_seg · K + r) · B
    online      = i · T · B + s · B + (a_seg + r) · B

with ``i`` the stored input per step and sample (1 bit per value when it is spikes), ``s`` the
neuron state and ``a_seg · L + r`` the peak of the bytes a recomputed segment of L steps saves
through its forward and backward pass (a neuron on the step-by-step path builds one step's
graph while the layers before it still hold theirs): a line through the peaks measured on one
step and on all ``T_p`` steps of the probe. Where the forward module ``full`` trains with is given,
``full`` is measured through it instead, over all T steps of a few samples (a fast path keeps
less than Σ a_l; :func:`profile`). The rest of a batch's memory is the parameters,
their gradients and the optimizer's state (:data:`OPTIMIZER_SLOTS` tensors per parameter).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.assembly.memory.meter import SavedTensorMeter
from snnkit.assembly.memory.norm_neuron import RECOMPUTE_MACS
from snnkit.assembly.memory.runner import SegmentRunner
from snnkit.assembly.memory.segmented import default_segment
from snnkit.components.functional import reset_net
from snnkit.recipes.sizes import format_size

#: Tensors of parameter size an optimizer keeps per parameter (Adam: two moments).
OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1, "adagrad": 1}
#: Modes in the order ``auto`` tries them: fastest first, the approximate one last.
AUTO_ORDER = ("full", "checkpoint", "online")


@dataclass
class LayerRow:
    """One top-level layer: bytes saved per step and sample in ``full`` mode, and its neuron
    state bytes per sample (0 for layers without state)."""

    name: str
    kind: str
    step_bytes: float
    state_bytes: float = 0.0


@dataclass
class MemoryEstimate:
    """Per-sample, per-step figures of one model and what they make at T and batch."""

    time_steps: int
    batch: int
    layers: list[LayerRow]
    input_bytes: float
    segment_step_bytes: float
    param_bytes: int
    optimizer_slots: int
    segment: int
    tbptt: int | None = None
    backward_extra_bytes: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    full_step_bytes: float | None = None
    """``full``'s bytes per step and sample measured through its own forward module (which may
    keep less than the layers one by one, :attr:`layers`); None: the layers' sum."""

    @property
    def state_bytes(self) -> float:
        return sum(r.state_bytes for r in self.layers)

    def activations(self, mode: str) -> float:
        """Saved activation bytes of one batch in ``mode`` (full, checkpoint, tbptt, online)."""
        t, b = self.time_steps, self.batch
        if mode == "full":
            per_step = self.full_step_bytes
            if per_step is None:
                per_step = sum(r.step_bytes for r in self.layers)
            return per_step * t * b
        stored = self.input_bytes * t * b
        if mode == "checkpoint":
            length = min(self.segment, t)
            starts = math.ceil(t / length) - 1
            held = starts * self.state_bytes * b  # the recomputed segment's start is one of them
            return stored + held + self._segment(length) * b
        if mode == "tbptt":
            length = min(self.tbptt or t, t)
            return stored + self.state_bytes * b + self._segment(length) * b
        if mode == "online":
            return stored + self.state_bytes * b + self._segment(1) * b
        raise ValueError(f"unknown memory mode {mode!r}")

    def _segment(self, length: int) -> float:
        """Peak saved bytes per sample of one segment of ``length`` steps in its backward."""
        return self.segment_step_bytes * length + self.backward_extra_bytes

    @property
    def fixed_bytes(self) -> int:
        """Parameters, their gradients and the optimizer state."""
        return self.param_bytes * (2 + self.optimizer_slots)

    def total(self, mode: str) -> float:
        """Everything one training batch holds in ``mode``: activations + fixed."""
        return self.activations(mode) + self.fixed_bytes

    def fitting_batch(self, mode: str, budget: int) -> int:
        """The largest batch whose ``total(mode)`` fits in ``budget`` (0 if none)."""
        per_sample = self.activations(mode) / self.batch
        room = budget - self.fixed_bytes
        return max(0, int(room // per_sample)) if per_sample > 0 else self.batch

    def choose(self, budget: int) -> str | None:
        """The first mode of :data:`AUTO_ORDER` whose total fits in ``budget``, else None."""
        for mode in AUTO_ORDER:
            if self.total(mode) <= budget:
                return mode
        return None

    def over_budget(self, mode: str, budget: int, what: str) -> str:
        """Why ``mode`` does not fit ``budget`` and which setting would, as one clause."""
        need = self.total(mode)
        fits = self.choose(budget)
        if fits is not None:
            fix = f"set train.memory: {fits} (needs {format_size(self.total(fits))})"
        else:
            small = min(AUTO_ORDER, key=self.total)
            batch = self.fitting_batch(small, budget)
            fix = (
                f"lower train.batch_size to {batch} with train.memory: {small}"
                if batch > 0
                else "the parameters and optimizer state alone do not fit: use a smaller model"
            )
        return (
            f"train.memory {mode} needs about {format_size(need)} per batch, "
            f"{format_size(need - budget)} more than {what} ({format_size(budget)}) — {fix}"
        )


def _param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def profile(
    model: nn.Module,
    seq: Tensor,
    *,
    time_steps: int,
    batch: int,
    optimizer: str = "adam",
    segment: int | None = None,
    tbptt: int | None = None,
    full: tuple[nn.Module, Tensor] | None = None,
    recompute_macs: int = RECOMPUTE_MACS,
) -> MemoryEstimate:
    """Measure ``model`` on the probe ``seq [T_p, B_p, *]`` (a graph is built; RNG, buffers and
    neuron state are left as they were) and scale to ``time_steps`` and ``batch``.

    ``full``: ``(forward, x)``, the forward module ``full`` trains with (``x [B, *] -> [T, B,
    C]``) and a few samples ``x [B_f, *]`` of its input. ``full`` is then measured through it
    over all ``time_steps`` and scaled to ``batch`` only, so that what that module keeps less
    than the layers one by one (a per-sample prefix run once, a fused neuron on a repeated
    step) is counted as it will run; the per-layer rows stay those of the layers one by one
    (the probe's plain pass, scaled from ``T_p`` to ``time_steps``), and so does ``full``
    without it. ``recompute_macs``: ``train.recompute_macs`` of the segmented modes."""
    steps, samples = seq.shape[0], seq.shape[1]
    per = float(steps * samples)
    params = list(model.parameters())
    buffers = [b.detach().clone() for b in model.buffers()]
    was_training = model.training
    model.train()
    rows: list[LayerRow] = []
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            meter = SavedTensorMeter(params)
            children = list(model.named_children()) if isinstance(model, nn.Sequential) else []
            hooks = [
                child.register_forward_pre_hook(_tagger(meter, name)) for name, child in children
            ]
            try:
                with meter:
                    out = _run(model, seq)
            finally:
                for hook in hooks:
                    hook.remove()
                reset_net(model)
            del out
            full_bytes = None
            if full is not None:  # no hooks: a fast path takes a hooked layer for a user's
                with SavedTensorMeter(params) as whole:
                    out = full[0](full[1])
                reset_net(model)
                del out
                full_bytes = whole.saved / (time_steps * full[1].shape[0])
            runner = SegmentRunner(model, recompute_macs=recompute_macs)
            one, _ = _segment_peak(runner, seq[:1], params)
            peak, states = _segment_peak(runner, seq, params)
            state_bytes = {
                name: sum(t.numel() * t.element_size() for t in st) / samples
                for name, st in states.items()
                if st is not None
            }
            runner.new_sequence()
    finally:
        with torch.no_grad():
            for b, old in zip(model.buffers(), buffers, strict=True):
                b.copy_(old)
        model.train(was_training)
    if children:
        for name, child in children:
            rows.append(
                LayerRow(
                    name,
                    type(child).__name__,
                    meter.by_tag.get(name, 0) / per,
                    sum(v for k, v in state_bytes.items() if k == name or k.startswith(f"{name}.")),
                )
            )
    else:
        rows.append(
            LayerRow("model", type(model).__name__, meter.saved / per, sum(state_bytes.values()))
        )
    slope = (peak - one) / (steps - 1) if steps > 1 else float(one)
    binary = seq.is_floating_point() and bool(((seq == 0) | (seq == 1)).all())
    values = seq[0, 0].numel()
    input_bytes = values / 8 if binary else values * seq.element_size()
    return MemoryEstimate(
        time_steps=time_steps,
        batch=batch,
        layers=rows,
        input_bytes=input_bytes,
        segment_step_bytes=slope / samples,
        backward_extra_bytes=(one - slope) / samples,
        param_bytes=_param_bytes(model),
        optimizer_slots=OPTIMIZER_SLOTS.get(optimizer, 2),
        segment=segment or default_segment(time_steps),
        tbptt=tbptt,
        full_step_bytes=full_bytes,
    )


def _segment_peak(
    runner: SegmentRunner, seq: Tensor, params: Sequence[Tensor]
) -> tuple[int, dict[str, Any]]:
    """(peak saved bytes through forward and backward, end states) of one segment over ``seq``
    from the initial states, the input left out (the mode stores it once: ``i``); the backward
    pass accumulates into the probe only."""
    leaf = seq.detach().requires_grad_()
    meter = SavedTensorMeter([*params, leaf])
    with meter:
        out, states = runner.run(leaf, {})
        if out.requires_grad:
            # A component's broken backward is not the probe's to report: the first training
            # step fails on it and names the layer (engine.blame); the forward peak stays.
            with contextlib.suppress(Exception):
                torch.autograd.backward(out, torch.ones_like(out), inputs=[leaf])
    runner.new_sequence()
    return meter.peak, states


def _run(model: nn.Module, seq: Tensor) -> Tensor:
    if getattr(model, "step_mode", "m") == "s":
        return torch.stack([model(x) for x in seq])
    return model(seq)


def _tagger(meter: SavedTensorMeter, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        meter.tag = name

    return hook
