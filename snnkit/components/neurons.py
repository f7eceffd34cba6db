"""Neuron modules: thin ``nn.Module`` shells around the step functions of
:mod:`snnkit.components.functional`.

Each neuron names its pure step function (``step_fn``) and declares its parameters once, in
its ``__init__`` signature: every argument after ``surrogate`` is keyword-only, and value ranges
are annotations (``tau: Tau = 2.0`` with ``Tau = Annotated[float, Gt(1), Why(...)]``, see
:mod:`snnkit.constraints`) that the registry checks for recipes, ``snnkit show`` prints and the
constructor checks for direct calls. The rest is derived: the parameters become attributes,
``step_kwargs()`` reads the keyword arguments of ``step_fn`` from them, and the repr lists them.
``step(state, x)`` is the pure call. :class:`BaseNeuron` owns everything else, once: the two
step modes, state handling and voltage recording.

- Multi-step (``step_mode='m'``, default): ``forward(x[T, B, *]) -> [T, B, *]``. The state is
  a local variable of the call (fresh every call); the T-loop lives only in
  :meth:`BaseNeuron._multi_step`, so a fused kernel can replace it for every neuron at once.
- Single-step (``step_mode='s'``): ``forward(x[B, *]) -> [B, *]``; the state is kept in the
  module (plain attributes, not buffers) until ``reset()`` (see ``functional.reset_net``).

Both modes call the same step function, so spikes, voltages and gradients are identical.
Initial state: V = v_reset under hard reset, else 0; every other state variable starts at 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from snnkit.components import functional as F
from snnkit.components.neuron_base import (
    A0,
    BaseNeuron,
    Beta,
    DeltaT,
    InitTau,
    Real,
    RealOrNone,
    SpikingNeuron,
    Tau,
    TauAdapt,
    TauMem,
    TauSyn,
    TauW,
    init_arguments,
)
from snnkit.components.surrogates import Surrogate
from snnkit.kernels.forms import ChargeMode

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


class IF(SpikingNeuron):
    """Integrate-and-fire neuron: H = V + X.

    Then S = Θ(H − V_th); hard reset V = H(1 − S) + V_reset S, soft (v_reset=None) V = H − V_th S.
    Defaults: v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.if_step)
    kernel_charge = ChargeMode.IF

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neuron: H = V + (X − (V − V_reset)) / tau.

    decay_input=False: H = V − (V − V_reset)/tau + X. Under soft reset V_reset is 0 in the charge.
    Then S = Θ(H − V_th); hard reset V = H(1 − S) + V_reset S, soft V = H − V_th S.
    Defaults: tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.lif_step)
    tau: float
    decay_input: bool
    kernel_charge = ChargeMode.LIF

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau: Tau = 2.0,
        decay_input: bool = True,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))


class PLIF(SpikingNeuron):
    """Parametric LIF neuron: LIF with a learned time constant, 1/tau = sigmoid(w).

    H = V + (X − (V − V_reset)) sigmoid(w); decay_input=False: H = V − (V − V_reset) sigmoid(w) + X.
    w is a scalar nn.Parameter initialised to −log(init_tau − 1), so that tau = init_tau.
    Defaults: init_tau=2.0 (w=0), decay_input=True, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.plif_step)
    init_tau: float
    decay_input: bool
    kernel_charge = ChargeMode.PLIF

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        init_tau: InitTau = 2.0,
        decay_input: bool = True,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))
        self.w = nn.Parameter(torch.tensor(F.plif_init_w(self.init_tau)))

    @property
    def tau(self) -> float:
        """The current time constant 1 / sigmoid(w)."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau:.4g}"


class QIF(SpikingNeuron):
    """Quadratic integrate-and-fire neuron: H = V + (X + a0 (V − V_rest)(V − V_c)) / tau.

    Then fire and reset as for LIF. Requires a0 > 0 and v_c > v_rest.
    Defaults: tau=2.0, v_c=0.8, a0=1.0, v_rest=0.0, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.qif_step)
    tau: float
    v_c: float
    a0: float
    v_rest: float

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau: Tau = 2.0,
        v_c: Real = 0.8,
        a0: A0 = 1.0,
        v_rest: Real = 0.0,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))
        if not self.v_c > self.v_rest:
            raise ValueError(
                f"v_c must be > v_rest (the critical voltage lies above rest), got "
                f"v_c={self.v_c!r}, v_rest={self.v_rest!r}"
            )


class EIF(SpikingNeuron):
    """Exponential integrate-and-fire: H = V + (X − (V − V_rest) + Δ_T e^((V − θ_rh)/Δ_T)) / tau.

    Then fire and reset as for LIF. Requires delta_t > 0.
    Defaults: tau=2.0, delta_t=1.0, theta_rh=0.8, v_rest=0.0, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.eif_step)
    tau: float
    delta_t: float
    theta_rh: float
    v_rest: float

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau: Tau = 2.0,
        delta_t: DeltaT = 1.0,
        theta_rh: Real = 0.8,
        v_rest: Real = 0.0,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))


class Izhikevich(SpikingNeuron):
    """Izhikevich-type neuron (discrete time): QIF membrane with an adaptation current W.

    H(t) = V(t−1) + (X(t) + a0 (V(t−1) − V_rest)(V(t−1) − V_c) − W(t−1)) / tau;
    S = Θ(H − V_th), V(t) = reset(H, S) (hard or soft);
    W(t) = W(t−1) + (a (V(t−1) − V_rest) − W(t−1)) / tau_w + b S(t);  W(0) = 0.
    Defaults: tau=2.0, tau_w=10.0, a=1.0, b=0.1, a0=1.0, v_c=0.8, v_rest=0.0,
    v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.izhikevich_step)
    tau: float
    tau_w: float
    a: float
    b: float
    a0: float
    v_c: float
    v_rest: float

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau: Tau = 2.0,
        tau_w: TauW = 10.0,
        a: Real = 1.0,
        b: Real = 0.1,
        a0: A0 = 1.0,
        v_c: Real = 0.8,
        v_rest: Real = 0.0,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.IzhikevichState(self._v0(x), torch.zeros_like(x))


class ALIF(SpikingNeuron):
    """Adaptive-threshold LIF neuron: LIF membrane, threshold raised by each spike.

    H(t) = LIF charge of V(t−1), X(t) (see LIF);  V_th,eff(t) = v_threshold + beta a(t−1);
    S(t) = Θ(H − V_th,eff); V(t) = H(1 − S) + V_reset S (hard) or H − V_th,eff S (soft);
    a(t) = decay a(t−1) + S(t) with decay = 1 − 1/tau_adapt;  a(0) = 0.
    Defaults: tau=2.0, tau_adapt=20.0, beta=0.2, decay_input=True, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.alif_step)
    tau: float
    tau_adapt: float
    beta: float
    decay_input: bool

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau: Tau = 2.0,
        tau_adapt: TauAdapt = 20.0,
        beta: Beta = 0.2,
        decay_input: bool = True,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))

    @property
    def decay(self) -> float:
        """Per-step decay of the adaptation trace: 1 − 1/tau_adapt."""
        return 1.0 - 1.0 / self.tau_adapt

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.ALIFState(self._v0(x), torch.zeros_like(x))


class CubaLIF(SpikingNeuron):
    """Current-based LIF neuron: the input charges a synaptic current that charges the membrane.

    I(t) = I(t−1)(1 − 1/tau_syn) + X(t);  H = V + (I(t) − (V − V_reset)) / tau_mem
    (V_reset = 0 in the charge under soft reset); then fire and reset as for LIF; I(0) = 0.
    Defaults: tau_syn=5.0, tau_mem=2.0, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.cuba_lif_step)
    tau_syn: float
    tau_mem: float

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau_syn: TauSyn = 5.0,
        tau_mem: TauMem = 2.0,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.CubaLIFState(self._v0(x), torch.zeros_like(x))


class LI(BaseNeuron):
    """Leaky integrator (non-spiking readout): V = V + (X − V) / tau; outputs V, not spikes.

    No threshold, no reset; V(0) = 0. ``surrogate`` is accepted (snnkit supplies one to every
    neuron) and ignored. Defaults: tau=2.0.
    """

    step_fn = staticmethod(F.li_step)
    tau: float

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        tau: Tau = 2.0,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
    ) -> None:
        super().__init__(**init_arguments(locals()))

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.MembraneState(torch.zeros_like(x))
