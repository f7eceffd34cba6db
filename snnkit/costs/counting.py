"""Exact per-layer operation counts over a pass of data, taken with forward hooks.

For every counted layer of a model (snnkit's or torch's Linear, Conv1d/2d/3d, BatchNorm,
pooling, and every neuron) a hook adds up, over all calls (multi-step ``[T, B, *]`` or
single-step ``[B, *]``, so T steps and every batch are included):

* ``sops`` — synaptic operations, for a layer whose input is binary (every value 0 or 1):
  one accumulate per input spike per outgoing synapse it reaches.
  Linear (and ``dcls_delay``, one accumulate per synapse whatever its delay):
  ``SOPs = nnz(x) · out_features``. Convolution, exactly per output position with
  padding, stride and dilation included::

      SOPs = (C_out / groups) · Σ_p Σ_{taps k} s(p·stride + k·dilation − padding)
           = (C_out / groups) · Σ_q s(q) · w(q)

  where ``s(q)`` is the number of spikes at input position ``q`` (over channels and samples)
  and ``w(q)`` the number of output windows that read ``q`` — the gradient of the sum of the
  all-ones convolution of the layer's geometry, computed once per input shape. (The first
  line is the convolution of the spike map with an all-ones kernel, summed; the second is the
  same sum reordered, one reduction over the input instead of a convolution per call.)
* ``macs`` — multiply-accumulates, for a layer whose input is not binary (e.g. the first layer
  of a direct-input recipe): every product of a weight with a real input element.
  Linear: ``MACs = (x.numel() / in_features) · in_features · out_features``. Convolution: the
  formula above with every input element nonzero, times ``C_in / groups``, so a layer fed
  all-ones spikes has ``SOPs == MACs``; zero padding is not multiplied (non-zero padding modes
  — reflect, replicate, circular — are, as they copy real inputs). BatchNorm: one MAC per
  element (``y = a·x + b`` at inference) unless ``fold_bn=True`` (folded into the preceding
  layer's weights: 0). Pooling, flatten and dropout: no operations counted. Bias additions and
  neuron state updates are not counted.
* ``rate`` (spiking neurons: modules with a ``surrogate`` and a ``step_mode``, whose output is
  0 or 1 by construction) — spikes / (neurons · steps · samples); ``silent`` — the fraction
  of neurons (positions in one sample's output) that never fired during the whole pass.
  Non-spiking neurons (the LI readout) get a row without rate or operations.
* ``recurrent`` layers: the wrapped neuron's ``rate``/``silent``, plus the feedback: every
  spike S(t−1) reaches its outgoing recurrent synapses at step t, ``N`` of them for
  ``all_to_all`` (``W_rec [N, N]``), 1 for ``one_to_one``: ``SOPs = fan-out · nnz(S[0..T−2])``
  (the last step's spikes reach no later step).
* Spiking self-attention (the ``spikformer`` zoo model's SSA, on spikes Q, K, V): ``Q K^T``
  costs one accumulate per pair of spikes sharing a channel, ``Σ_c (Σ_i Q_ic)(Σ_j K_jc)``;
  ``(Q K^T) V`` one per spike of V per token, ``nnz(V) · N``; the scale is not counted. Its
  projections, BatchNorms and neurons are counted as any other layer; residual joins and
  delays (``residual``, ``branches``, ``delay``) are data movement or element-wise and cost
  nothing here, the layers inside them are counted where they run.
* ``params`` — the layer's parameters (``numel``, its submodules included).

Whether a layer's input is binary is decided on the first time step of its first call
(``0 <= x <= 1`` and ``sum(x) = nnz(x)``: one host sync per layer) and kept for the pass:
spikes stay spikes and analogue inputs stay analogue. Later calls cost one reduction over the
layer's input (none for MACs, which follow from shapes), and the spike counts stay on the
device until :meth:`CostCounter.report`. A Linear computed from events without a dense input
(the event input layer of :mod:`snnkit.assembly.fast_input`) is told its input spike count
instead (``_Hook.count_events``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnkit.components.delays import DCLSDelay
from snnkit.components.neurons import BaseNeuron
from snnkit.components.recurrent import Recurrent
from snnkit.components.zoo.spikformer import SSA
from snnkit.costs.energy import DEFAULT_ENERGY, EnergyModel
from snnkit.costs.report import CostReport, LayerCost

__all__ = ["CostCounter", "CostReport", "LayerCost", "layer_label"]

_POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class _Tally:
    """Device-side running sums of one layer."""

    label: str
    name: str
    module: nn.Module
    kind: str  # "synapse", "bn", "neuron", "recurrent", "attention" or "free" (shape only)
    shape: list[int] = field(default_factory=list)
    sops: Tensor | None = None
    macs: int = 0
    binary: bool | None = None
    steps: int = 0
    per_neuron: Tensor | None = None
    coverage: dict[tuple[int, ...], tuple[Tensor, int]] = field(default_factory=dict)
    keep: bool = False  # keep the latest output in ``last`` (an attention layer's Q, K, V)
    last: Tensor | None = None

    def add(self, name: str, value: Tensor) -> None:
        old = getattr(self, name)
        setattr(self, name, value if old is None else old + value)


def layer_label(name: str, kind: str, sequential: bool = True) -> str:
    """``'3'`` -> ``'model.layers[3] linear'``; ``'block.0.conv'`` -> ``'model.block[0].conv ...'``.

    ``sequential``: the model is an ``nn.Sequential`` whose children are the recipe's
    ``model.layers`` in order (snnkit's ``sequential`` and ``mlp``).
    """
    head, _, rest = name.partition(".")
    path = (
        f"layers[{head}]" + (f".{rest}" if rest else "") if sequential and head.isdigit() else name
    )
    path = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path)
    return f"model.{path} {kind}"


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, Recurrent):
        return "recurrent"  # a neuron with its own feedback synapses
    if isinstance(module, SSA):
        return "attention"  # the Q K^T V products between its neurons' spikes
    if hasattr(module, "surrogate") and hasattr(module, "step_mode"):
        return "neuron"  # emits spikes (0 or 1) through a Heaviside step
    if isinstance(module, BaseNeuron):
        return "free"  # a non-spiking neuron (e.g. the LI readout): no rate, no operations
    if isinstance(module, (nn.Linear, DCLSDelay, *_CONVS)):
        return "synapse"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, _POOLS):
        return "free"
    return None


def _column_sums(m: Tensor) -> Tensor:
    """Column sums of a 2-D tensor in float64, as one matrix-vector product (BLAS is several
    times faster than a reduction here); exact for 0/1 entries (each sum <= rows < 2**24)."""
    if m.dtype not in (torch.float32, torch.float64):
        m = m.float()
    ones = torch.ones(m.shape[0], dtype=m.dtype, device=m.device)
    return (ones @ m).double()


def _spikes(x: Tensor) -> Tensor:
    """``Σ x`` of a {0, 1} tensor as a 0-dim int64 tensor (no host sync)."""
    return _column_sums(x.reshape(-1, x.shape[-1])).sum().round().to(torch.int64)


class _Hook:
    """A counter's forward hook on one layer.

    ``counts_events``: the layer is a Linear, so a forward module that computes it without
    materialising its input spikes (the event input layer of
    :mod:`snnkit.assembly.fast_input`) may call :meth:`count_events` instead of running the
    layer's forward (which would call this hook).
    """

    def __init__(self, counter: CostCounter, tally: _Tally) -> None:
        self.counter, self.tally = counter, tally
        self.counts_events = isinstance(tally.module, nn.Linear)
        self.count = {
            "synapse": counter._synapse,
            "bn": counter._bn,
            "free": counter._free,
            "neuron": counter._neuron,
            "recurrent": counter._recurrent,
            "attention": counter._attention,
        }[tally.kind]

    @torch.no_grad()
    def __call__(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if not inputs or not isinstance(inputs[0], Tensor) or not isinstance(output, Tensor):
            return
        lead = 2 if getattr(module, "step_mode", "m") == "m" else 1
        self.tally.shape = list(output.shape[lead:])
        self.count(self.tally, module, inputs[0].detach(), output.detach(), lead)

    def count_events(self, spikes: Tensor, output: Tensor) -> None:
        """``spikes`` binary input events (a 0-dim tensor) reached this Linear, giving
        ``output [T, B, out_features]``: ``SOPs += spikes · out_features``."""
        t = self.tally
        t.shape, t.binary = list(output.shape[2:]), True
        fan_out = int(t.module.out_features)  # type: ignore[arg-type]
        t.add("sops", spikes.to(torch.int64) * fan_out)


class CostCounter:
    """Hooks that count a model's operations while it runs; a context manager.

    ``types`` maps a module name (``model.named_modules()``) to the type shown in its label
    (e.g. the recipe's ``linear``); other modules show their class name in lower case.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        fold_bn: bool = False,
        energy: EnergyModel = DEFAULT_ENERGY,
        types: Mapping[str, str] | None = None,
    ) -> None:
        self.model, self.fold_bn, self.energy = model, fold_bn, energy
        types = types or {}
        sequential = isinstance(model, nn.Sequential)
        self._tallies: list[_Tally] = []
        self._by_module: dict[nn.Module, _Tally] = {}
        for name, module in model.named_modules():
            kind = _kind(module)
            if kind is None or not name:
                continue
            label = layer_label(name, types.get(name, type(module).__name__.lower()), sequential)
            self._tallies.append(_Tally(label, name, module, kind))
            self._by_module[module] = self._tallies[-1]
        for t in self._tallies:
            if isinstance(t.module, SSA):
                for n in _qkv(t.module):
                    if n in self._by_module:
                        self._by_module[n].keep = True
        self._handles: list[Any] = []
        self.samples = 0

    def __enter__(self) -> CostCounter:
        self.attach()
        return self

    def __exit__(self, *_: Any) -> None:
        self.detach()

    def attach(self) -> None:
        """Register the forward hooks (once)."""
        if self._handles:
            return
        for t in self._tallies:
            self._handles.append(t.module.register_forward_hook(_Hook(self, t)))
            if t.kind == "recurrent":
                self._handles.append(t.module.register_forward_pre_hook(self._feedback(t)))

    def detach(self) -> None:
        """Remove the hooks; the counts so far are kept."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def add_samples(self, n: int) -> None:
        """Tell the counter how many samples the pass has seen (for per-sample totals)."""
        self.samples += int(n)

    # -- per kind -------------------------------------------------------------------------
    def _synapse(self, t: _Tally, module: nn.Module, x: Tensor, _y: Tensor, lead: int) -> None:
        if t.binary is None:  # once per layer: 0 <= x <= 1 and every nonzero value is 1
            probe = x[0] if lead == 2 else x  # its first time step
            lo, hi = torch.aminmax(probe)
            nnz = torch.count_nonzero(probe)
            t.binary = bool((lo >= 0) & (hi <= 1) & (probe.sum(dtype=torch.float64) == nnz))
        if isinstance(module, (nn.Linear, DCLSDelay)):
            if t.binary:
                t.add("sops", _spikes(x) * module.out_features)
            else:
                t.macs += x.numel() * module.out_features
            return
        conv: Any = module
        d = len(conv.kernel_size)
        spatial = tuple(x.shape[-d:])
        w, taps = self._coverage(t, conv, spatial, x.device)
        if t.binary:  # spikes per input position (over samples and channels) · windows there
            spikes = _column_sums(x.reshape(-1, w.numel()))
            reached = torch.dot(spikes, w).round().to(torch.int64)
            t.add("sops", reached * (conv.out_channels // conv.groups))
        else:
            samples = x.numel() // (conv.in_channels * w.numel())
            t.macs += taps * samples * (conv.in_channels // conv.groups) * conv.out_channels

    @staticmethod
    def _coverage(
        t: _Tally, conv: Any, spatial: tuple[int, ...], device: Any
    ) -> tuple[Tensor, int]:
        """w(q): how many output windows of ``conv`` read input position q (flat, float64),
        and Σ_q w(q) (the taps on real inputs of one channel), once per input shape."""
        if spatial not in t.coverage:
            with torch.enable_grad():
                s = torch.zeros((1, 1, *spatial), dtype=torch.float64, requires_grad=True)
                kernel = torch.ones((1, 1, *conv.kernel_size), dtype=torch.float64)
                padded, padding = s, conv.padding
                if conv.padding_mode != "zeros":
                    padded = F.pad(s, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
                    padding = 0
                fn = (F.conv1d, F.conv2d, F.conv3d)[len(spatial) - 1]
                fn(
                    padded, kernel, stride=conv.stride, padding=padding, dilation=conv.dilation
                ).sum().backward()
            assert s.grad is not None
            w = s.grad.reshape(-1)
            t.coverage[spatial] = (w.to(device), int(w.sum().round()))
        return t.coverage[spatial]

    def _bn(self, t: _Tally, _m: nn.Module, x: Tensor, _y: Tensor, _lead: int) -> None:
        if not self.fold_bn:
            t.macs += x.numel()

    def _free(self, t: _Tally, _m: nn.Module, _x: Tensor, _y: Tensor, _lead: int) -> None:
        pass

    def _neuron(self, t: _Tally, _m: nn.Module, _x: Tensor, y: Tensor, lead: int) -> None:
        per_neuron = _column_sums(y.reshape(-1, *y.shape[lead:]).flatten(1)).reshape(
            y.shape[lead:]
        )  # spikes per neuron
        if t.per_neuron is not None and t.per_neuron.shape != per_neuron.shape:
            raise ValueError(
                f"{t.label}: the output shape changed during the pass "
                f"({list(t.per_neuron.shape)} -> {list(per_neuron.shape)})"
            )
        t.add("per_neuron", per_neuron)
        t.steps += y.numel() // max(per_neuron.numel(), 1)  # samples x time steps
        if t.keep:
            t.last = y

    def _recurrent(self, t: _Tally, m: nn.Module, x: Tensor, y: Tensor, lead: int) -> None:
        """A neuron's rate, plus its feedback: each spike S(t−1) reaches its outgoing
        recurrent synapses at step t — N of them (``all_to_all``), 1 (``one_to_one``).
        Multi-step: the spikes of steps 0..T−2 (the last step's spikes reach no later step);
        single-step: counted by the pre-hook from the state, S(t−1), before each call."""
        self._neuron(t, m, x, y, lead)
        if lead == 2 and y.shape[0] > 1:
            t.add("sops", _spikes(y[:-1]) * _fan_out(m))

    def _feedback(self, t: _Tally) -> Any:
        @torch.no_grad()
        def pre_hook(module: nn.Module, _inputs: Any) -> None:
            state = getattr(module, "state", None)
            if getattr(module, "step_mode", "m") == "s" and state is not None:
                t.add("sops", _spikes(state[1].detach()) * _fan_out(module))

        return pre_hook

    def _attention(self, t: _Tally, m: nn.Module, _x: Tensor, _y: Tensor, _lead: int) -> None:
        """Spiking self-attention ``(Q K^T) V`` per head on spikes Q, K, V ``[..., N, d]``:
        ``Q K^T`` accumulates one per pair of spikes Q[i, c], K[j, c] sharing a channel c:
        ``Σ_c (Σ_i Q[i, c]) (Σ_j K[j, c])``; ``(Q K^T) V`` adds, for each spike V[j, c], the
        column ``(Q K^T)[:, j]`` into N outputs: ``nnz(V) · N``. The scale is not counted."""
        kept = [self._by_module.get(n) for n in _qkv(m)]
        q, k, v = (None if s is None else s.last for s in kept)
        if q is None or k is None or v is None:
            return  # its neurons are not spiking neurons: nothing binary to count
        tokens = q.shape[-2]
        qs, ks = q.sum(-2, dtype=torch.float64), k.sum(-2, dtype=torch.float64)
        pairs = (qs * ks).sum().round().to(torch.int64)
        t.add("sops", pairs + _spikes(v) * tokens)
        for kept_tally in kept:
            assert kept_tally is not None
            kept_tally.last = None

    def merge(self, reduce: Callable[[Tensor], None]) -> None:
        """Sum the counts of several processes (each counted its share of a pass):
        ``reduce(flat)`` sums a float64 tensor in place over them (``dist.all_reduce``).
        Every process must have run the same layers."""
        called = [t for t in self._tallies if t.shape]
        device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
        parts: list[Tensor] = [torch.tensor([float(self.samples)], dtype=torch.float64)]
        for t in called:
            sops = t.sops if t.sops is not None else torch.zeros((), dtype=torch.int64)
            scalars = [sops.double().cpu(), torch.tensor(float(t.macs)), torch.tensor(t.steps)]
            parts.append(torch.stack([v.double() for v in scalars]))
            if t.per_neuron is not None:
                parts.append(t.per_neuron.double().reshape(-1).cpu())
        flat = torch.cat(parts).to(device)
        reduce(flat)
        flat = flat.cpu()
        self.samples, i = int(flat[0]), 1
        for t in called:
            sops, macs, steps = flat[i : i + 3].tolist()
            t.sops, t.macs, t.steps, i = torch.tensor(round(sops)), round(macs), round(steps), i + 3
            if t.per_neuron is not None:
                n = t.per_neuron.numel()
                t.per_neuron = flat[i : i + n].reshape(t.per_neuron.shape)
                i += n

    # -- the result -----------------------------------------------------------------------
    def report(self) -> CostReport:
        """The counts so far as plain numbers (one host sync)."""
        rows: list[LayerCost] = []
        neurons = silent_total = 0
        spikes = neuron_steps = 0.0
        for t in self._tallies:
            t.last = None
            if not t.shape:
                continue  # never called
            sops = int(t.sops) if t.sops is not None else 0
            macs = t.macs
            rate = silent = None
            if t.per_neuron is not None:
                n = t.per_neuron.numel()
                fired = float(t.per_neuron.sum())
                silent_n = int((t.per_neuron == 0).sum())
                rate = fired / (n * t.steps) if n and t.steps else 0.0
                silent = silent_n / n if n else 0.0
                neurons, silent_total = neurons + n, silent_total + silent_n
                spikes, neuron_steps = spikes + fired, neuron_steps + n * t.steps
            params = sum(p.numel() for p in t.module.parameters())
            energy = self.energy.energy_pj(sops, macs)
            rows.append(
                LayerCost(t.label, t.shape, rate, silent, sops, macs, params, energy, t.name)
            )
        total_params = sum(p.numel() for p in self.model.parameters())
        return CostReport(
            rows,
            self.samples,
            total_params,
            self.energy,
            self.fold_bn,
            neurons,
            silent_total,
            spikes,
            neuron_steps,
        )


def _qkv(module: Any) -> list[nn.Module]:
    """The neurons of an attention layer whose spikes are Q, K and V."""
    return [module.q_sn, module.k_sn, module.v_sn]


def _fan_out(module: Any) -> int:
    """Recurrent synapses leaving one neuron: N (``all_to_all``) or 1 (``one_to_one``)."""
    return int(module.features) if module.mode == "all_to_all" else 1
