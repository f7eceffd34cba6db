"""What a fused kernel needs to know about a neuron: its charge mode, constants and surrogate.

The numbers the kernels switch on are defined here, once: :class:`ChargeMode` and
:class:`SurrogateKind`. The C++ header ``cpu/csrc/constants.h`` is generated from them
(``python -m snnkit.kernels.gen_constants``) and the Triton kernels import them.

Neurons and surrogates DECLARE their fused form (``kernel_form()``); this module only describes
the forms and builds one from a neuron's step keyword arguments (:func:`neuron_form`). It
imports nothing of snnkit, so a plugin's neuron or surrogate opts in by overriding
``kernel_form``, never by being listed here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor


class ChargeMode(enum.IntEnum):
    """The charge equation a fused kernel runs (``a`` is :attr:`NeuronForm.leak`).

    - ``IF``:           H = V + X
    - ``LIF``:          H = V + (X − (V − rest)) / a          (a = tau)
    - ``LIF_NODECAY``:  H = V − (V − rest) / a + X
    - ``PLIF``:         H = V + (X − (V − rest)) · a          (a = k = sigmoid(w), with dL/dk)
    - ``PLIF_NODECAY``: H = V − (V − rest) · a + X
    - ``MUL``, ``MUL_NODECAY``: as ``PLIF``, ``PLIF_NODECAY`` without dL/dk (LIF whose tau is a
      power of two, a = 1/tau exactly, or a frozen PLIF).
    """

    IF = 0
    LIF = 1
    LIF_NODECAY = 2
    PLIF = 3
    PLIF_NODECAY = 4
    MUL = 5
    MUL_NODECAY = 6

    @property
    def divides(self) -> bool:
        """The leak divides by ``a`` (LIF with a general tau)."""
        return self in (ChargeMode.LIF, ChargeMode.LIF_NODECAY)

    @property
    def multiplies(self) -> bool:
        """The leak multiplies by ``a`` (PLIF's k, or 1/tau)."""
        return self in (
            ChargeMode.PLIF,
            ChargeMode.PLIF_NODECAY,
            ChargeMode.MUL,
            ChargeMode.MUL_NODECAY,
        )

    @property
    def decays_input(self) -> bool:
        """X is inside the leak: H = V + (X − (V − rest)) ∘ a, not H = V − (V − rest) ∘ a + X."""
        return self in (ChargeMode.LIF, ChargeMode.PLIF, ChargeMode.MUL)

    @property
    def learns_k(self) -> bool:
        """The backward pass accumulates dL/dk (a trainable PLIF)."""
        return self in (ChargeMode.PLIF, ChargeMode.PLIF_NODECAY)

    def without_input_decay(self) -> ChargeMode:
        """The ``decay_input=False`` variant of this mode."""
        return _NODECAY.get(self, self)

    def by_multiplication(self) -> ChargeMode:
        """A dividing mode as the multiplying mode with the same equation (a → 1/a)."""
        return _MULTIPLYING.get(self, self)

    def without_grad_k(self) -> ChargeMode:
        """A PLIF mode as the same equation without dL/dk (a frozen PLIF)."""
        return _FROZEN.get(self, self)


_NODECAY = {
    ChargeMode.LIF: ChargeMode.LIF_NODECAY,
    ChargeMode.PLIF: ChargeMode.PLIF_NODECAY,
    ChargeMode.MUL: ChargeMode.MUL_NODECAY,
}
_MULTIPLYING = {ChargeMode.LIF: ChargeMode.MUL, ChargeMode.LIF_NODECAY: ChargeMode.MUL_NODECAY}
_FROZEN = {ChargeMode.PLIF: ChargeMode.MUL, ChargeMode.PLIF_NODECAY: ChargeMode.MUL_NODECAY}

#: The :class:`ChargeMode` predicates the kernels test (also generated into ``constants.h``).
CHARGE_PREDICATES = ("divides", "multiplies", "decays_input", "learns_k")


class SurrogateKind(enum.IntEnum):
    """How a fused kernel computes g'(d), d = H − V_th, and what ``constants`` (c1, c2, c3) hold.

    - ``GENERIC``: ``surrogate.derivative`` evaluated in PyTorch and passed in; no constants.
    - ``SIGMOID``: s = 1/(1 + e^(−c1 d)), g' = c1 s (1 − s);         c1 = α
    - ``ATAN``: g' = c1 / (1 + (c2 d)²);                             c1 = α/2, c2 = π/2 α
    - ``PIECEWISE_QUADRATIC``: g' = max(0, c1 − c2 |d|);             c1 = α, c2 = α²
    - ``PIECEWISE_EXP``: g' = c1 e^(c2 |d|);                         c1 = α/2, c2 = −α
    - ``SOFTSIGN``: g' = c1 / (1 + |c2 d|)²;                         c1 = α/2, c2 = α
    - ``ERF``: g' = c1 e^(−(c2 d)²);                                 c1 = α/√π, c2 = α
    - ``SUPERSPIKE``: g' = c1 / (1 + |d|)²;                          c1 = α
    - ``FAST_SIGMOID``: g' = 1 / (c1 |d| + 1)²;                      c1 = slope
    - ``PIECEWISE_LEAKY_RELU``: g' = c2 if |d| < c1 else c3;         c1 = w, c2 = 1/(2w), c3 = c
    - ``RECT``: g' = c1 if |d| < c2 else 0;                          c1 = α, c2 = 0.5/α
    - ``Q_PSEUDO_SPIKE``: g' = (1 + c1 |d|)^c2;                      c1 = 2/(α − 1), c2 = −α
    - ``STRAIGHT_THROUGH``: g' = 1;                                  no constants

    The constants are computed in Python exactly as the surrogate's PyTorch ``derivative``
    forms its scalar factors, so the compiled g' agrees with it to rounding.
    """

    GENERIC = 0
    SIGMOID = 1
    ATAN = 2
    PIECEWISE_QUADRATIC = 3
    PIECEWISE_EXP = 4
    SOFTSIGN = 5
    ERF = 6
    SUPERSPIKE = 7
    FAST_SIGMOID = 8
    PIECEWISE_LEAKY_RELU = 9
    RECT = 10
    Q_PSEUDO_SPIKE = 11
    STRAIGHT_THROUGH = 12


class SurrogateForm(NamedTuple):
    """A surrogate as the kernels see it: its kind and up to three constants (see
    :class:`SurrogateKind` for what each kind's constants mean; unused ones are 0)."""

    kind: SurrogateKind
    constants: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def of(cls, kind: SurrogateKind, *constants: float) -> SurrogateForm:
        """``SurrogateForm(kind, constants)`` with the constants padded with zeros to three."""
        if len(constants) > 3:
            raise ValueError(f"a surrogate form has at most 3 constants, got {len(constants)}")
        padded = tuple(float(c) for c in constants) + (0.0,) * (3 - len(constants))
        return cls(SurrogateKind(kind), padded)  # type: ignore[arg-type]


class NeuronForm(NamedTuple):
    """A fusable neuron: what the fused kernels compute, per element and step.

    ``H = charge(V, X)`` (:class:`ChargeMode`, ``leak`` as its ``a``), ``S = Θ(H − v_threshold)``,
    then hard reset ``V = H (1 − S) + v_reset S`` or soft ``V = H − v_threshold S``; V starts
    at ``v0``.
    """

    charge: ChargeMode
    leak: float | None
    """``a`` of the charge: tau (dividing modes), 1/tau or k (multiplying modes), 0 for IF;
    None for PLIF, whose k = sigmoid(w) is read from ``w`` at run time."""
    rest: float
    """The resting potential in the leak (v_reset under hard reset, else 0)."""
    v_threshold: float
    hard: bool
    v_reset: float
    v0: float
    detach_reset: bool
    surrogate: SurrogateForm
    derivative: Callable[[Tensor], Tensor] | None
    """The surrogate's g' in PyTorch (called for ``SurrogateKind.GENERIC``)."""
    w: Tensor | None
    """PLIF's parameter w (k = sigmoid(w)); None otherwise."""


def surrogate_form(surrogate: Any) -> SurrogateForm | None:
    """``surrogate.kernel_form()``; None when it has no such method (it cannot be fused)."""
    declare = getattr(surrogate, "kernel_form", None)
    return declare() if callable(declare) else None


def _is_power_of_two(value: float) -> bool:
    return math.frexp(value)[0] == 0.5  # then x / value == x · (1/value) exactly


def neuron_form(
    charge: ChargeMode,
    *,
    v_threshold: Any,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Any,
    tau: float | None = None,
    w: Tensor | None = None,
    decay_input: bool = True,
) -> NeuronForm | None:
    """The fused form of an IF (``charge=IF``), LIF (``LIF``, with ``tau``) or PLIF (``PLIF``,
    with ``w``) neuron given its step keyword arguments; None if no kernel reproduces it.

    LIF with a power-of-two tau runs the multiplying mode with a = 1/tau (exact, and faster).
    A tensor threshold, a PLIF ``w`` that is not one element, or a surrogate without a fused
    form leave the neuron to the reference loop.
    """
    charge = ChargeMode(charge)
    sur = surrogate_form(surrogate)
    if sur is None or isinstance(v_threshold, Tensor):
        return None
    if charge is ChargeMode.IF:
        mode, leak = ChargeMode.IF, 0.0
    elif charge is ChargeMode.LIF:
        assert tau is not None
        mode, leak = ChargeMode.LIF, float(tau)
        if _is_power_of_two(leak):
            mode, leak = mode.by_multiplication(), 1.0 / leak
    elif charge is ChargeMode.PLIF:
        if not isinstance(w, torch.Tensor) or w.numel() != 1:
            return None
        mode, leak = ChargeMode.PLIF, None
    else:
        raise ValueError(f"a neuron declares its charge as IF, LIF or PLIF, got {charge!r}")
    if not decay_input:
        mode = mode.without_input_decay()
    hard = v_reset is not None
    rest = 0.0 if v_reset is None else float(v_reset)
    return NeuronForm(
        mode,
        leak,
        rest,
        float(v_threshold),
        hard,
        rest,
        rest if hard else 0.0,
        bool(detach_reset),
        sur,
        getattr(surrogate, "derivative", None),
        w if charge is ChargeMode.PLIF else None,
    )


def form_of(neuron: Any) -> NeuronForm | None:
    """``neuron.kernel_form()``; None when it has no such method (only the reference loop)."""
    declare = getattr(neuron, "kernel_form", None)
    return declare() if callable(declare) else None
