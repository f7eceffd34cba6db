"""The result of a counted pass: per-layer rows, totals, and the per-sample layout of metrics.

:class:`CostReport` is what :meth:`~snnkit.costs.counting.CostCounter.report` returns;
:meth:`CostReport.as_json` is the ``snnkit profile --json`` list (sums over the pass) and
:meth:`CostReport.per_sample` the ``costs`` entry of a ``metrics.jsonl`` row (every count divided
by the number of samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snnkit.costs.energy import DEFAULT_ENERGY, EnergyModel

__all__ = ["CostReport", "LayerCost"]


@dataclass
class LayerCost:
    """One layer's counts over the pass (``rate``/``silent`` are None for non-neuron layers).

    ``name`` is the module's name in ``model.named_modules()`` (``'2'``, ``'block.0.conv'``).
    """

    layer: str
    shape: list[int]
    rate: float | None
    silent: float | None
    sops: int
    macs: int
    params: int
    energy_pj: float
    name: str = ""

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

    def rates(self) -> dict[str, float]:
        """Module name -> firing rate of every spiking layer that ran (``firing_rates``)."""
        return {r.name: r.rate for r in self.layers if r.rate is not None}

    def per_sample(self) -> dict[str, Any]:
        """The ``costs`` entry of a metrics row: counts **per test sample**.

        ``{"per": "sample", "samples", "ac_pj", "mac_pj", "bn_folded", "layers": [{"layer",
        "rate", "silent", "sops", "macs", "energy_pj", "params"}, ...], "totals": {"rate",
        "silent", "sops", "macs", "energy_pj", "params"}}`` where ``sops``, ``macs`` and
        ``energy_pj`` are the pass's sums divided by ``samples``; ``rate``/``silent`` as in
        :meth:`as_json` (they are already per neuron, step and sample).
        """
        n = max(self.samples, 1)
        totals = self.totals

        def row(r: dict[str, Any], label: str) -> dict[str, Any]:
            return {
                "layer": label,
                "rate": r["rate"],
                "silent": r["silent"],
                "sops": r["sops"] / n,
                "macs": r["macs"] / n,
                "energy_pj": r["energy_pj"] / n,
                "params": r["params"],
            }

        return {
            "per": "sample",
            "samples": self.samples,
            "ac_pj": self.energy.ac_pj,
            "mac_pj": self.energy.mac_pj,
            "bn_folded": self.fold_bn,
            "layers": [row(r.as_dict(), r.layer) for r in self.layers],
            "totals": {k: v for k, v in row(totals, "total").items() if k != "layer"},
        }
