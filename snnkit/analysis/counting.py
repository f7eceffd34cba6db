"""Exact per-layer operation counts over a pass of data, taken with forward hooks.

For every counted layer of a model (snnkit's or torch's Linear, Conv1d/2d/3d, BatchNorm,
pooling, and every neuron) a hook adds up, over all calls (multi-step ``[T, B, *]`` or
single-step ``[B, *]``, so T steps and every batch are included):

* ``sops`` — synaptic operations, for a layer whose input is binary (every value 0 or 1):
  one accumulate per input spike per outgoing synapse it reaches.
  Linear: ``SOPs = nnz(x) · out_features``. Convolution, exactly per output position with
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
* ``params`` — the layer's parameters (``numel``, its submodules included).

Whether a layer's input is binary is decided on the first time step of its first call
(``0 <= x <= 1`` and ``sum(x) = nnz(x)``: one host sync per layer) and kept for the pass:
spikes stay spikes and analogue inputs stay analogue. Later calls cost one reduction over the
layer's input (none for MACs, which follow from shapes), and the spike counts stay on the
device until
:meth:`CostCounter.report`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnkit.analysis.energy import DEFAULT_ENERGY, EnergyModel
from snnkit.components.neurons import BaseNeuron

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
class LayerCost:
    """One layer's counts over the pass (``rate``/``silent`` are None for non-neuron layers)."""

    layer: str
    shape: list[int]
    rate: float | None
    silent: float | None
    sops: int
    macs: int
    params: int
    energy_pj: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "shape": self.shape,
            "rate": self.rate,
            "silent": self.silent,
            "sops": self.sops,
            "macs": self.macs,
            "params": self.params,
            "energy_pj": self.energy_pj,
        }


@dataclass
class CostReport:
    """Per-layer rows in forward order, the number of samples and the energy constants used."""

    layers: list[LayerCost]
    samples: int
    params: int
    energy: EnergyModel = DEFAULT_ENERGY
    fold_bn: bool = False
    neurons: int = 0
    silent_neurons: int = 0
    spikes: float = 0.0
    neuron_steps: float = 0.0

    @property
    def totals(self) -> dict[str, Any]:
        """Sums over the layers, the whole model's parameters, and per-sample figures."""
        sops = sum(r.sops for r in self.layers)
        macs = sum(r.macs for r in self.layers)
        energy = self.energy.energy_pj(sops, macs)
        n = max(self.samples, 1)
        return {
            "layer": "total",
            "samples": self.samples,
            "rate": self.spikes / self.neuron_steps if self.neuron_steps else None,
            "silent": self.silent_neurons / self.neurons if self.neurons else None,
            "sops": sops,
            "macs": macs,
            "params": self.params,
            "energy_pj": energy,
            "sops_per_sample": sops / n,
            "macs_per_sample": macs / n,
            "energy_pj_per_sample": energy / n,
            "ac_pj": self.energy.ac_pj,
            "mac_pj": self.energy.mac_pj,
            "bn_folded": self.fold_bn,
        }

    def as_json(self) -> list[dict[str, Any]]:
        """One object per layer, then the totals object (the ``snnkit profile --json`` shape)."""
        return [r.as_dict() for r in self.layers] + [self.totals]


@dataclass
class _Tally:
    """Device-side running sums of one layer."""

    label: str
    module: nn.Module
    kind: str  # "synapse", "bn", "neuron" or "free" (shape only)
    shape: list[int] = field(default_factory=list)
    sops: Tensor | None = None
    macs: int = 0
    binary: bool | None = None
    steps: int = 0
    per_neuron: Tensor | None = None
    coverage: dict[tuple[int, ...], Tensor] = field(default_factory=dict)

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
    if hasattr(module, "surrogate") and hasattr(module, "step_mode"):
        return "neuron"  # emits spikes (0 or 1) through a Heaviside step
    if isinstance(module, BaseNeuron):
        return "free"  # a non-spiking neuron (e.g. the LI readout): no rate, no operations
    if isinstance(module, (nn.Linear, *_CONVS)):
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
        for name, module in model.named_modules():
            kind = _kind(module)
            if kind is None or not name:
                continue
            label = layer_label(name, types.get(name, type(module).__name__.lower()), sequential)
            self._tallies.append(_Tally(label, module, kind))
        self._handles: list[Any] = []
        self.samples = 0

    def __enter__(self) -> CostCounter:
        self.attach()
        return self

    def __exit__(self, *_: Any) -> None:
        self.detach()

    def attach(self) -> None:
        """Register the forward hooks (once)."""
        if not self._handles:
            self._handles = [t.module.register_forward_hook(self._hook(t)) for t in self._tallies]

    def detach(self) -> None:
        """Remove the hooks; the counts so far are kept."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def add_samples(self, n: int) -> None:
        """Tell the counter how many samples the pass has seen (for per-sample totals)."""
        self.samples += int(n)

    def _hook(self, tally: _Tally) -> Any:
        counters = {
            "synapse": self._synapse,
            "bn": self._bn,
            "free": self._free,
            "neuron": self._neuron,
        }
        count = counters[tally.kind]

        @torch.no_grad()
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if not inputs or not isinstance(inputs[0], Tensor) or not isinstance(output, Tensor):
                return
            lead = 2 if getattr(module, "step_mode", "m") == "m" else 1
            tally.shape = list(output.shape[lead:])
            count(tally, module, inputs[0].detach(), output.detach(), lead)

        return hook

    # -- per kind -------------------------------------------------------------------------
    def _synapse(self, t: _Tally, module: nn.Module, x: Tensor, _y: Tensor, lead: int) -> None:
        if t.binary is None:  # once per layer: 0 <= x <= 1 and every nonzero value is 1
            probe = x[0] if lead == 2 else x  # its first time step
            lo, hi = torch.aminmax(probe)
            nnz = torch.count_nonzero(probe)
            t.binary = bool((lo >= 0) & (hi <= 1) & (probe.sum(dtype=torch.float64) == nnz))
        if isinstance(module, nn.Linear):
            if t.binary:
                spikes = _column_sums(x.reshape(-1, x.shape[-1])).sum()
                t.add("sops", spikes.round().to(torch.int64) * module.out_features)
            else:
                t.macs += x.numel() * module.out_features
            return
        conv: Any = module
        d = len(conv.kernel_size)
        spatial = tuple(x.shape[-d:])
        w = self._coverage(t, conv, spatial, x.device)
        if t.binary:  # spikes per input position (over samples and channels) · windows there
            spikes = _column_sums(x.reshape(-1, w.numel()))
            reached = torch.dot(spikes, w).round().to(torch.int64)
            t.add("sops", reached * (conv.out_channels // conv.groups))
        else:
            samples = x.numel() // (conv.in_channels * w.numel())
            taps = int(w.sum().round())
            t.macs += taps * samples * (conv.in_channels // conv.groups) * conv.out_channels

    @staticmethod
    def _coverage(t: _Tally, conv: Any, spatial: tuple[int, ...], device: Any) -> Tensor:
        """w(q): how many output windows of ``conv`` read input position q (flat, float64)."""
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
            t.coverage[spatial] = s.grad.reshape(-1).to(device)
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

    # -- the result -----------------------------------------------------------------------
    def report(self) -> CostReport:
        """The counts so far as plain numbers (one host sync)."""
        rows: list[LayerCost] = []
        neurons = silent_total = 0
        spikes = neuron_steps = 0.0
        for t in self._tallies:
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
            rows.append(
                LayerCost(
                    t.label,
                    t.shape,
                    rate,
                    silent,
                    sops,
                    macs,
                    params,
                    self.energy.energy_pj(sops, macs),
                )
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
