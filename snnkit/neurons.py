"""Public import path of :mod:`snnkit.components.neurons` (where the code lives), kept for
plugins and scripts: ``from snnkit.neurons import ...``."""

from snnkit.components.neurons import (
    BaseNeuron,
    SpikingNeuron,
    IF,
    LIF,
    PLIF,
    QIF,
    EIF,
    Izhikevich,
    ALIF,
    CubaLIF,
    LI,
)

__all__ = ["BaseNeuron", "SpikingNeuron", "IF", "LIF", "PLIF", "QIF", "EIF", "Izhikevich", "ALIF", "CubaLIF", "LI"]
