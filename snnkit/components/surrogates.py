r"""Surrogate spike functions: Θ(x) forward, a smooth g'(x) backward.

A surrogate is called on ``x = H - V_threshold``. With ``spiking=True`` its forward pass is the
Heaviside step Θ(x) (1 where ``x >= 0``, so Θ(0) = 1) and its backward pass multiplies the
incoming gradient by g'(x), the derivative of a smooth *primitive* g that approximates Θ. With
``spiking=False`` the module returns g(x) itself, differentiated by ordinary autograd.

Contract every subclass keeps (checked by ``snnkit.testing.check_surrogate``):
``derivative(x) == d/dx primitive(x)`` everywhere g' is continuous. ``derivative`` is plain
elementwise tensor maths, so fused kernels may call it directly on tensors outside autograd.
Shape parameters are stored as Python floats; the defaults below are the usual ones in the
literature (``Sigmoid(alpha=4.0)`` is snnkit's default surrogate). ``kernel_form()`` tells the
fused neuron kernels how to compute g' (see :class:`~snnkit.kernels.forms.SurrogateKind`).
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.forms import SurrogateForm, SurrogateKind

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


def heaviside(x: Tensor) -> Tensor:
    """Heaviside step Θ(x) = 1 where ``x >= 0`` else 0 (so Θ(0) = 1), in ``x``'s dtype."""
    return (x >= 0).to(x.dtype)


def _positive(name: str, value: float, why: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 ({why}), got {value!r}")
    return value


def _only(mask: Tensor, x: Tensor) -> Tensor:
    """``x`` where ``mask`` holds, else 0: feeds one branch of a piecewise primitive.

    The other branch's formula may overflow or hit a negative base outside its half-line, and
    ``torch.where`` would turn its zero gradient there into NaN (0 · inf). Unlike ``clamp``,
    this passes the gradient at the branch point itself, so autograd is exact at x = 0.
    """
    return torch.where(mask, x, 0.0)


class _SpikeFunction(torch.autograd.Function):
    """Θ(x) forward; ``grad_output * surrogate.derivative(x)`` backward (saves only x)."""

    @staticmethod
    def forward(x: Tensor, surrogate: Surrogate) -> Tensor:
        return heaviside(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Surrogate], output: Tensor) -> None:
        x, surrogate = inputs
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class Surrogate(torch.nn.Module, abc.ABC):
    """Base of all surrogates: write ``primitive`` (g), optionally ``derivative`` (g').

    ``forward(x)`` is Θ(x) with gradient ``g'(x)`` when ``spiking`` is true, else ``g(x)``.
    The default ``derivative`` differentiates ``primitive`` with autograd; override it with the
    closed form when you know it (faster, and usable inside fused kernels).
    """

    def __init__(self, spiking: bool = True) -> None:
        super().__init__()
        self.spiking = bool(spiking)

    @abc.abstractmethod
    def primitive(self, x: Tensor) -> Tensor:
        """g(x): a smooth approximation of Θ whose derivative is the surrogate gradient."""

    def derivative(self, x: Tensor) -> Tensor:
        """g'(x), elementwise; by default the autograd derivative of ``primitive``."""
        with torch.inference_mode(False), torch.enable_grad():
            leaf = x.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.primitive(leaf).sum(), leaf)
        return grad

    def forward(self, x: Tensor) -> Tensor:
        if self.spiking:
            return _SpikeFunction.apply(x, self)
        return self.primitive(x)

    def kernel_form(self) -> SurrogateForm | None:
        """How a fused neuron kernel computes this surrogate; None: it cannot (reference loop).

        Base: ``GENERIC`` (the kernel calls ``derivative`` on the saved H − V_th) when the
        surrogate spikes through the base ``forward``, else None. The built-ins return their
        closed form; a plugin whose g' is one of the :class:`~snnkit.kernels.forms.SurrogateKind`
        closed forms may return that form (with its constants) to have it compiled in.
        """
        if not self.spiking or type(self).forward is not Surrogate.forward:
            return None
        return SurrogateForm(SurrogateKind.GENERIC)

    def _closed_form(
        self, owner: type[Surrogate], kind: SurrogateKind, *constants: float
    ) -> SurrogateForm | None:
        """``kind`` with ``constants`` while ``derivative`` is still ``owner``'s closed form (a
        subclass that overrides it is GENERIC); the base form when that is not fusable."""
        form = Surrogate.kernel_form(self)
        if form is None or type(self).derivative is not owner.derivative:
            return form
        return SurrogateForm.of(kind, *constants)

    def _shape_repr(self) -> str:
        return ""

    def extra_repr(self) -> str:
        shape = self._shape_repr()
        return f"{shape}, spiking={self.spiking}" if shape else f"spiking={self.spiking}"


class _AlphaSurrogate(Surrogate):
    """Shared storage and validation of a single positive width parameter ``alpha``."""

    def __init__(self, alpha: float, spiking: bool = True) -> None:
        super().__init__(spiking)
        self.alpha = _positive("alpha", alpha, "it sets the surrogate's width")

    def _shape_repr(self) -> str:
        return f"alpha={self.alpha}"


class Sigmoid(_AlphaSurrogate):
    r"""Sigmoid surrogate: g'(x) = α σ(αx)(1 − σ(αx)).

    Primitive: g(x) = σ(αx) = 1 / (1 + e^(−αx)).
    Derivative: g'(x) = α σ(αx)(1 − σ(αx)); g'(0) = α/4.
    Defaults: alpha=4.0 (g'(0) = 1); larger α is closer to Θ but its gradient vanishes faster.
    Reference: Neftci, Mostafa & Zenke, "Surrogate gradient learning in spiking neural
    networks", IEEE Signal Processing Magazine 36(6), 2019.
    """

    def __init__(self, alpha: float = 4.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(Sigmoid, SurrogateKind.SIGMOID, self.alpha)


class ATan(_AlphaSurrogate):
    r"""Arctangent surrogate: g'(x) = α / (2(1 + (παx/2)²)).

    Primitive: g(x) = arctan(παx/2)/π + 1/2.
    Derivative: g'(x) = α / (2(1 + (παx/2)²)); g'(0) = α/2.
    Defaults: alpha=2.0 (g'(0) = 1).
    Reference: Fang et al., "Incorporating learnable membrane time constant to enhance learning
    of spiking neural networks", ICCV 2021.
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan((math.pi / 2 * self.alpha) * x) / math.pi + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / 2 / (1 + ((math.pi / 2 * self.alpha) * x) ** 2)

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(ATan, SurrogateKind.ATAN, self.alpha / 2, math.pi / 2 * self.alpha)


class PiecewiseQuadratic(_AlphaSurrogate):
    r"""Piecewise quadratic surrogate: g'(x) = max(0, α − α²|x|).

    Primitive: g(x) = 0 for x < −1/α; α²x²/2 + αx + 1/2 for −1/α ≤ x ≤ 0;
    −α²x²/2 + αx + 1/2 for 0 < x ≤ 1/α; 1 for x > 1/α.
    Derivative: g'(x) = α − α²|x| for |x| ≤ 1/α, else 0 (a triangle of height α, area 1).
    Defaults: alpha=1.0.
    Reference: Esser et al., "Convolutional networks for fast, energy-efficient neuromorphic
    computing", PNAS 113(41), 2016 (triangular pseudo-derivative).
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        a = self.alpha
        y = (a * x).clamp(-1.0, 1.0)  # g depends on αx only; outside [-1, 1] it is 0 or 1
        return torch.where(y <= 0, (y + 1) ** 2 / 2, 1 - (1 - y) ** 2 / 2)

    def derivative(self, x: Tensor) -> Tensor:
        return torch.relu(self.alpha - self.alpha**2 * x.abs())

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(
            PiecewiseQuadratic, SurrogateKind.PIECEWISE_QUADRATIC, self.alpha, self.alpha**2
        )


class PiecewiseExp(_AlphaSurrogate):
    r"""Piecewise exponential surrogate: g'(x) = (α/2) e^(−α|x|).

    Primitive: g(x) = e^(αx)/2 for x < 0; 1 − e^(−αx)/2 for x ≥ 0.
    Derivative: g'(x) = (α/2) e^(−α|x|); g'(0) = α/2.
    Defaults: alpha=1.0.
    Reference: Shrestha & Orchard, "SLAYER: spike layer error reassignment in time",
    NeurIPS 2018 (exponentially decaying spike-escape density).
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        negative = x < 0
        below = torch.exp(self.alpha * _only(negative, x)) / 2
        above = 1 - torch.exp(-self.alpha * _only(~negative, x)) / 2
        return torch.where(negative, below, above)

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / 2 * torch.exp(-self.alpha * x.abs())

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(
            PiecewiseExp, SurrogateKind.PIECEWISE_EXP, self.alpha / 2, -self.alpha
        )


class SoftSign(_AlphaSurrogate):
    r"""Soft-sign surrogate: g'(x) = α / (2(1 + |αx|)²).

    Primitive: g(x) = (αx / (1 + |αx|) + 1) / 2.
    Derivative: g'(x) = α / (2(1 + |αx|)²); g'(0) = α/2.
    Defaults: alpha=2.0 (g'(0) = 1).
    Reference: the soft sign x/(1 + |x|) rescaled to (0, 1); its derivative is the SuperSpike
    shape (Zenke & Ganguli, Neural Computation 30(6), 2018).
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        ax = self.alpha * x
        return (ax / (1 + ax.abs()) + 1) / 2

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / 2 / (1 + (self.alpha * x).abs()) ** 2

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(SoftSign, SurrogateKind.SOFTSIGN, self.alpha / 2, self.alpha)


class Erf(_AlphaSurrogate):
    r"""Gaussian (error-function) surrogate: g'(x) = (α/√π) e^(−α²x²).

    Primitive: g(x) = erfc(−αx)/2, the CDF of a normal with standard deviation 1/(α√2).
    Derivative: g'(x) = (α/√π) e^(−α²x²); g'(0) = α/√π.
    Defaults: alpha=2.0.
    Reference: Wu et al., "Spatio-temporal backpropagation for training high-performance spiking
    neural networks", Frontiers in Neuroscience 12:331, 2018 (Gaussian approximation).
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.special.erfc(-self.alpha * x) / 2

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / math.sqrt(math.pi) * torch.exp(-((self.alpha * x) ** 2))

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(
            Erf, SurrogateKind.ERF, self.alpha / math.sqrt(math.pi), self.alpha
        )


class SuperSpike(_AlphaSurrogate):
    r"""SuperSpike surrogate: g'(x) = α / (1 + |x|)².

    Primitive: g(x) = α (1 + x / (1 + |x|)), rising from 0 to 2α (α only scales; width is 1).
    Derivative: g'(x) = α / (1 + |x|)²; g'(0) = α; its integral over ℝ is 2α.
    Defaults: alpha=1.0.
    Reference: Zenke & Ganguli, "SuperSpike: supervised learning in multilayer spiking neural
    networks", Neural Computation 30(6):1514–1541, 2018, doi:10.1162/neco_a_01086.
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        return self.alpha * (1 + x / (1 + x.abs()))

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / (1 + x.abs()) ** 2

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(SuperSpike, SurrogateKind.SUPERSPIKE, self.alpha)


class FastSigmoid(Surrogate):
    r"""Fast-sigmoid surrogate: g'(x) = 1 / (slope·|x| + 1)².

    Primitive: g(x) = x / (1 + slope·|x|) + 1/slope, rising from 0 to 2/slope.
    Derivative: g'(x) = 1 / (slope·|x| + 1)²; g'(0) = 1; its integral over ℝ is 2/slope.
    Defaults: slope=25.0.
    Reference: Zenke & Ganguli, Neural Computation 30(6), 2018 (the fast sigmoid of SuperSpike,
    parameterised by its steepness).
    """

    def __init__(self, slope: float = 25.0, spiking: bool = True) -> None:
        super().__init__(spiking)
        self.slope = _positive("slope", slope, "it sets the surrogate's steepness")

    def primitive(self, x: Tensor) -> Tensor:
        return x / (1 + self.slope * x.abs()) + 1 / self.slope

    def derivative(self, x: Tensor) -> Tensor:
        return 1 / (self.slope * x.abs() + 1) ** 2

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(FastSigmoid, SurrogateKind.FAST_SIGMOID, self.slope)

    def _shape_repr(self) -> str:
        return f"slope={self.slope}"


class PiecewiseLeakyReLU(Surrogate):
    r"""Piecewise leaky-ReLU surrogate: g'(x) = 1/(2w) for |x| < w, else c.

    Primitive (continuous, g(0) = 1/2): g(x) = c(x + w) for x ≤ −w; x/(2w) + 1/2 for |x| < w;
    1 + c(x − w) for x ≥ w. Unbounded when c > 0, so it is not normalised at −∞.
    Derivative: g'(x) = 1/(2w) for |x| < w, else c (g'(±w) = c).
    Defaults: w=1.0, c=0.01.
    Reference: a rectangular surrogate with a leaky floor, so distant inputs still get a
    small gradient (no canonical paper).
    """

    def __init__(self, w: float = 1.0, c: float = 0.01, spiking: bool = True) -> None:
        super().__init__(spiking)
        self.w = _positive("w", w, "it is the half-width of the inner segment")
        c = float(c)
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"c must be a finite number >= 0 (it is the outer slope), got {c!r}")
        self.c = c

    def primitive(self, x: Tensor) -> Tensor:
        w, c = self.w, self.c
        inner = x.clamp(-w, w) / (2 * w) + 0.5
        return inner + c * (x - w).clamp(min=0.0) + c * (x + w).clamp(max=0.0)

    def derivative(self, x: Tensor) -> Tensor:
        return torch.where(x.abs() < self.w, torch.full_like(x, 1 / (2 * self.w)), self.c)

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(
            PiecewiseLeakyReLU, SurrogateKind.PIECEWISE_LEAKY_RELU, self.w, 1 / (2 * self.w), self.c
        )

    def _shape_repr(self) -> str:
        return f"w={self.w}, c={self.c}"


class Rect(_AlphaSurrogate):
    r"""Rectangular surrogate: g'(x) = α·1[|x| < 1/(2α)].

    Primitive: g(x) = clamp(αx + 1/2, 0, 1).
    Derivative: g'(x) = α for |x| < 1/(2α), else 0 (a box of height α, area 1).
    Defaults: alpha=1.0.
    Reference: Wu et al., "Spatio-temporal backpropagation for training high-performance spiking
    neural networks", Frontiers in Neuroscience 12:331, 2018 (rectangular approximation).
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: Tensor) -> Tensor:
        return (self.alpha * x + 0.5).clamp(0.0, 1.0)

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha * (x.abs() < 0.5 / self.alpha).to(x.dtype)

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(Rect, SurrogateKind.RECT, self.alpha, 0.5 / self.alpha)


class QPseudoSpike(Surrogate):
    r"""q-PseudoSpike surrogate: g'(x) = (1 + 2|x|/(α − 1))^(−α).

    Primitive: with u = 1 + 2|x|/(α − 1), g(x) = u^(1−α)/2 for x < 0 and 1 − u^(1−α)/2 for
    x ≥ 0, rising from 0 to 1.
    Derivative: g'(x) = (1 + 2|x|/(α − 1))^(−α); g'(0) = 1; the tail decays like |x|^(−α), so
    smaller α (> 1) gives heavier tails.
    Defaults: alpha=2.0 (must be > 1).
    Reference: Herranz-Celotti & Rouat, "Surrogate gradients design", arXiv:2202.00282, 2022.
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(spiking)
        alpha = float(alpha)
        if not (math.isfinite(alpha) and alpha > 1):
            raise ValueError(
                f"alpha must be a finite number > 1 (the primitive divides by alpha - 1), "
                f"got {alpha!r}"
            )
        self.alpha = alpha

    def primitive(self, x: Tensor) -> Tensor:
        a = self.alpha
        negative = x < 0
        below = (1 - 2 / (a - 1) * _only(negative, x)) ** (1 - a) / 2
        above = 1 - (1 + 2 / (a - 1) * _only(~negative, x)) ** (1 - a) / 2
        return torch.where(negative, below, above)

    def derivative(self, x: Tensor) -> Tensor:
        return (1 + 2 / (self.alpha - 1) * x.abs()) ** (-self.alpha)

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(
            QPseudoSpike, SurrogateKind.Q_PSEUDO_SPIKE, 2 / (self.alpha - 1), -self.alpha
        )

    def _shape_repr(self) -> str:
        return f"alpha={self.alpha}"


class StraightThrough(Surrogate):
    r"""Straight-through surrogate: g'(x) = 1.

    Primitive: g(x) = x + 1/2 (the identity, shifted so g(0) = 1/2; unbounded).
    Derivative: g'(x) = 1: the gradient passes through the step unchanged.
    Defaults: no shape parameter.
    Reference: Bengio, Léonard & Courville, "Estimating or propagating gradients through
    stochastic neurons for conditional computation", arXiv:1308.3432, 2013.
    """

    def __init__(self, spiking: bool = True) -> None:
        super().__init__(spiking)

    def primitive(self, x: Tensor) -> Tensor:
        return x + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return torch.ones_like(x)

    def kernel_form(self) -> SurrogateForm | None:
        return self._closed_form(StraightThrough, SurrogateKind.STRAIGHT_THROUGH)
