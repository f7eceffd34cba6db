"""What a fused kernel needs to know about a neuron: its charge mode, constants and surrogate.

:func:`neuron_spec` reads a neuron through its public contract (``step_fn`` identity,
``step_kwargs()``), so a subclass that only changes parameters is still fused, while one that
swaps the step function or the initial state is not (it keeps the reference loop).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from snnkit.components import functional as F
from snnkit.components import surrogates as S

# Charge modes (the C++ and Triton kernels switch on these numbers).
CHARGE_IF, CHARGE_LIF, CHARGE_LIF_NODECAY, CHARGE_PLIF, CHARGE_PLIF_NODECAY = range(5)
# H = V + (X − (V − rest)) a and H = V − (V − rest) a + X without dL/da: frozen PLIF, and LIF
# whose tau is a power of two (then X / tau == X · (1/tau) exactly, and multiplying is faster).
CHARGE_MUL, CHARGE_MUL_NODECAY = 5, 6

SURROGATE_GENERIC = 0
"""g' is evaluated by ``surrogate.derivative`` in PyTorch and passed to the kernel."""


class SurrogateSpec(NamedTuple):
    """A surrogate as the kernels see it: an id and up to three constants."""

    sid: int
    c1: float = 0.0
    c2: float = 0.0
    c3: float = 0.0


class NeuronSpec(NamedTuple):
    """A fusable neuron: charge mode, its constant ``a`` (tau, or None for PLIF's sigmoid(w)),
    resting potential in the charge, threshold, reset, initial V and surrogate."""

    charge: int
    a: float | None
    rest: float
    v_threshold: float
    hard: bool
    v_reset: float
    v0: float
    detach_reset: bool
    surrogate: SurrogateSpec
    module: nn.Module  # the surrogate module (for generic g')
    w: torch.Tensor | None  # PLIF's parameter


def surrogate_spec(surrogate: Any) -> SurrogateSpec | None:
    """Kernel form of ``surrogate``; None if a fused kernel cannot reproduce it.

    Built-in classes (exact type) get their closed form compiled in. Any other ``Surrogate``
    that spikes through the base ``forward`` (Θ forward, ``derivative`` backward) is GENERIC.
    """
    t = type(surrogate)
    if not isinstance(surrogate, S.Surrogate) or not surrogate.spiking:
        return None
    if t.forward is not S.Surrogate.forward:
        return None
    a = getattr(surrogate, "alpha", 0.0)
    table = {
        S.Sigmoid: lambda: SurrogateSpec(1, a),
        S.ATan: lambda: SurrogateSpec(2, a / 2, math.pi / 2 * a),
        S.PiecewiseQuadratic: lambda: SurrogateSpec(3, a, a**2),
        S.PiecewiseExp: lambda: SurrogateSpec(4, a / 2, -a),
        S.SoftSign: lambda: SurrogateSpec(5, a / 2, a),
        S.Erf: lambda: SurrogateSpec(6, a / math.sqrt(math.pi), a),
        S.SuperSpike: lambda: SurrogateSpec(7, a),
        S.FastSigmoid: lambda: SurrogateSpec(8, surrogate.slope),
        S.PiecewiseLeakyReLU: lambda: SurrogateSpec(9, surrogate.w, 1 / (2 * surrogate.w),
                                                    surrogate.c),
        S.Rect: lambda: SurrogateSpec(10, a, 0.5 / a),
        S.QPseudoSpike: lambda: SurrogateSpec(11, 2 / (a - 1), -a),
        S.StraightThrough: lambda: SurrogateSpec(12),
    }
    make = table.get(t)
    return make() if make is not None else SurrogateSpec(SURROGATE_GENERIC)


def fusable_class(cls: type) -> bool:
    """Whether neurons of ``cls`` can run in a fused kernel (IF, LIF, PLIF and subclasses
    that keep their step function and initial state)."""
    from snnkit.components.neurons import SpikingNeuron

    step = getattr(cls, "step_fn", None)
    return (step in (F.if_step, F.lif_step, F.plif_step)
            and getattr(cls, "initial_state", None) is SpikingNeuron.initial_state
            and getattr(cls, "_v0", None) is SpikingNeuron._v0)


def neuron_spec(neuron: nn.Module) -> NeuronSpec | None:
    """The fused form of ``neuron``, or None if only the reference loop can run it."""
    cls = type(neuron)
    if not fusable_class(cls):
        return None
    kw = neuron.step_kwargs()
    sur = surrogate_spec(kw["surrogate"])
    if sur is None:
        return None
    v_reset = kw["v_reset"]
    hard = v_reset is not None
    rest = 0.0 if v_reset is None else float(v_reset)
    step = cls.step_fn
    w = None
    if step is F.if_step:
        charge, a = CHARGE_IF, 0.0
    elif step is F.lif_step:
        a = float(kw["tau"])
        if math.frexp(a)[0] == 0.5:  # a power of two: divide by multiplying, exactly
            charge, a = (CHARGE_MUL if kw["decay_input"] else CHARGE_MUL_NODECAY), 1.0 / a
        else:
            charge = CHARGE_LIF if kw["decay_input"] else CHARGE_LIF_NODECAY
    else:
        charge = CHARGE_PLIF if kw["decay_input"] else CHARGE_PLIF_NODECAY
        a, w = None, kw["w"]
        if not isinstance(w, torch.Tensor) or w.numel() != 1:
            return None
    if isinstance(kw["v_threshold"], torch.Tensor):
        return None
    return NeuronSpec(charge, a, rest, float(kw["v_threshold"]), hard,
                      0.0 if v_reset is None else float(v_reset), rest if hard else 0.0,
                      bool(kw["detach_reset"]), sur, kw["surrogate"], w)
