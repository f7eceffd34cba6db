"""snnkit-triangle: an example plugin registering a surrogate and a loss through snnkit's hooks.

Installed, its entry point (group ``snnkit``, name ``triangle``) makes snnkit import this module
and call the two hooks below; ``snnkit list`` then shows ``triangle`` and ``rate_hinge`` with
this distribution's name and version. Read it with ``docs/plugins.md``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import snnkit
from snnkit.components.surrogates import Surrogate
from snnkit.hookspecs import Register

__all__ = ["RateHinge", "Triangle", "register_losses", "register_surrogates"]
__version__ = "0.1.0"


class Triangle(Surrogate):
    r"""Triangle surrogate: g'(x) = α·max(0, 1 − |x|).

    A triangle of height α on [−1, 1] (area α). Primitive g(x) = ∫_{−∞}^{x} g'(u) du:
    0 for x < −1; α(x + 1)²/2 on [−1, 0]; α(1/2 + x − x²/2) on [0, 1]; α for x > 1.
    Defaults: alpha=1.0 (g' integrates to 1, g rises from 0 to 1).
    Reference: Bellec et al., "Long short-term memory and learning-to-learn in networks of
    spiking neurons", NeurIPS 2018 (the triangular pseudo-derivative).
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(spiking)
        alpha = float(alpha)
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(
                f"alpha must be a finite number > 0 (the triangle's height), got {alpha!r}"
            )
        self.alpha = alpha

    def primitive(self, x: Tensor) -> Tensor:
        # Outside [−1, 1] g is constant (0 or α); clamp makes the two quadratics meet there.
        u = x.clamp(-1.0, 1.0)
        left = (u + 1) ** 2 / 2  # ∫_{−1}^{u} (1 + v) dv
        right = 0.5 + u - u**2 / 2  # 1/2 + ∫_{0}^{u} (1 − v) dv
        return self.alpha * torch.where(u <= 0, left, right)

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha * torch.relu(1 - x.abs())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, spiking={self.spiking}"


class RateHinge(nn.Module):
    """Multi-class hinge on firing rates: mean_b Σ_{c≠y} max(0, margin − (r_y − r_c)) / (C − 1).

    r = mean_t O[t] (the firing rate of each class). The loss is 0 once the true class fires at
    least ``margin`` more often than every other class; ``predict`` is the class with the
    highest rate (ties to the lowest index).
    """

    def __init__(self, margin: float = 0.5) -> None:
        super().__init__()
        margin = float(margin)
        if not 0 < margin <= 1:
            raise ValueError(
                f"margin must be in (0, 1] (a difference of firing rates), got {margin!r}"
            )
        self.margin = margin

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        if output.dim() != 3 or target.shape != output.shape[1:2]:
            raise ValueError(
                f"rate_hinge: expected output [T, B, C] and target [B], got "
                f"{tuple(output.shape)} and {tuple(target.shape)}"
            )
        rate = output.mean(0)  # [B, C]
        true = rate.gather(1, target.long().unsqueeze(1))  # [B, 1]
        violation = torch.relu(self.margin - (true - rate))  # [B, C]; c = y gives margin
        others = torch.ones_like(rate).scatter_(1, target.long().unsqueeze(1), 0.0)
        classes = output.shape[2]
        return (violation * others).sum(1).mean() / max(classes - 1, 1)

    def predict(self, output: Tensor) -> Tensor:
        """argmax_c mean_t O[t, b, c] as int64 ``[B]``."""
        return output.detach().mean(0).argmax(-1)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


@snnkit.hookimpl
def register_surrogates(register: Register) -> None:
    register("triangle", Triangle)


@snnkit.hookimpl
def register_losses(register: Register) -> None:
    register("rate_hinge", RateHinge)
