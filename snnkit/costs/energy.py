"""Energy estimate from operation counts: one accumulate per SOP, one multiply-accumulate per MAC.

    E = N_SOP · E_AC + N_MAC · E_MAC

with the 45 nm CMOS figures of Horowitz (ISSCC 2014, "Computing's energy problem") for 32-bit
floating point: ``E_AC = 0.9 pJ`` (an addition) and ``E_MAC = 4.6 pJ`` (a multiplication, 3.7 pJ,
plus an addition, 0.9 pJ). Memory traffic, neuron state updates and bias additions are not
counted (see docs/costs.md). Both constants can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_ENERGY", "EnergyModel"]


@dataclass(frozen=True)
class EnergyModel:
    """Picojoules per operation: ``ac_pj`` per accumulate (SOP), ``mac_pj`` per MAC."""

    ac_pj: float = 0.9
    mac_pj: float = 4.6

    def __post_init__(self) -> None:
        for name in ("ac_pj", "mac_pj"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ValueError(
                    f"{name} must be a number >= 0 (picojoules per operation), got {value!r}"
                )

    def energy_pj(self, sops: float, macs: float) -> float:
        """``sops · ac_pj + macs · mac_pj`` in picojoules."""
        return sops * self.ac_pj + macs * self.mac_pj


#: 45 nm CMOS, 32-bit float (Horowitz 2014): 0.9 pJ per accumulate, 4.6 pJ per MAC.
DEFAULT_ENERGY = EnergyModel()
