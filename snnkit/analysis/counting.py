"""Re-export of :mod:`snnkit.costs.counting` (the counting hooks live below the engine)."""

from snnkit.costs.counting import CostCounter, CostReport, LayerCost, layer_label

__all__ = ["CostCounter", "CostReport", "LayerCost", "layer_label"]
