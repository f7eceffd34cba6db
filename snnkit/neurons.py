"""Public import path of :mod:`snnkit.components.neurons` (where the code lives), kept for
plugins and scripts: ``from snnkit.neurons import ...``."""

from snnkit.components.neurons import (
    ALIF,
    EIF,
    IF,
    LI,
    LIF,
    PLIF,
    QIF,
    BaseNeuron,
    CubaLIF,
    Izhikevich,
    SpikingNeuron,
)

__all__ = [
    "ALIF",
    "EIF",
    "IF",
    "LI",
    "LIF",
    "PLIF",
    "QIF",
    "BaseNeuron",
    "CubaLIF",
    "Izhikevich",
    "SpikingNeuron",
]
