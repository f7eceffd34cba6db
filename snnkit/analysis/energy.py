"""Re-export of :mod:`snnkit.costs.energy` (the energy model lives below the engine)."""

from snnkit.costs.energy import DEFAULT_ENERGY, EnergyModel

__all__ = ["DEFAULT_ENERGY", "EnergyModel"]
