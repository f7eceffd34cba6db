"""Public import path of :mod:`snnkit.components.surrogates` (where the code lives), kept for
plugins and scripts: ``from snnkit.surrogates import ...``."""

from snnkit.components.surrogates import (
    ATan,
    Erf,
    FastSigmoid,
    PiecewiseExp,
    PiecewiseLeakyReLU,
    PiecewiseQuadratic,
    QPseudoSpike,
    Rect,
    Sigmoid,
    SoftSign,
    StraightThrough,
    SuperSpike,
    Surrogate,
    heaviside,
)

__all__ = [
    "ATan",
    "Erf",
    "FastSigmoid",
    "PiecewiseExp",
    "PiecewiseLeakyReLU",
    "PiecewiseQuadratic",
    "QPseudoSpike",
    "Rect",
    "Sigmoid",
    "SoftSign",
    "StraightThrough",
    "SuperSpike",
    "Surrogate",
    "heaviside",
]
