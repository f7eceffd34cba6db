"""Public import path of :mod:`snnkit.components.surrogates` (where the code lives), kept for
plugins and scripts: ``from snnkit.surrogates import ...``."""

from snnkit.components.surrogates import (
    heaviside,
    Surrogate,
    Sigmoid,
    ATan,
    PiecewiseQuadratic,
    PiecewiseExp,
    SoftSign,
    Erf,
    SuperSpike,
    FastSigmoid,
    PiecewiseLeakyReLU,
    Rect,
    QPseudoSpike,
    StraightThrough,
)

__all__ = ["heaviside", "Surrogate", "Sigmoid", "ATan", "PiecewiseQuadratic", "PiecewiseExp", "SoftSign", "Erf", "SuperSpike", "FastSigmoid", "PiecewiseLeakyReLU", "Rect", "QPseudoSpike", "StraightThrough"]
