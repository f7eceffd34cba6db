"""Neuron modules: thin ``nn.Module`` shells around the step functions of :mod:`snnkit.components.functional`.

Each neuron names its pure step function (``step_fn``) and the keyword arguments it takes
(``step_kwargs()``); ``step(state, x)`` is that pure call. :class:`BaseNeuron` owns everything
else, once: the two step modes, state handling and voltage recording.

- Multi-step (``step_mode='m'``, default): ``forward(x[T, B, *]) -> [T, B, *]``. The state is
  a local variable of the call (fresh every call); the T-loop lives only in
  :meth:`BaseNeuron._multi_step`, so a fused kernel can replace it for every neuron at once.
- Single-step (``step_mode='s'``): ``forward(x[B, *]) -> [B, *]``; the state is kept in the
  module (plain attributes, not buffers) until ``reset()`` (see ``functional.reset_net``).

Both modes call the same step function, so spikes, voltages and gradients are identical.
Initial state: V = v_reset under hard reset, else 0; every other state variable starts at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from snnkit.components import functional as F
from snnkit import kernels
from snnkit.components.surrogates import Sigmoid, Surrogate


def _time_constant(name: str, value: float, why: str) -> float:
    value = float(value)
    if not value > 1:  # also rejects NaN
        raise ValueError(f"{name} must be > 1 ({why}; {name} <= 1 overshoots), got {value!r}")
    return value


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


class BaseNeuron(nn.Module):
    """Base of all neurons: step modes, state and recording around a pure ``step_fn``.

    Subclasses set ``step_fn`` (a function of :mod:`snnkit.components.functional`), implement
    ``step_kwargs()`` and ``initial_state(x)``, and list their parameters in ``_repr_fields``.
    ``kernel`` names the multi-step kernel (:mod:`snnkit.kernels`: ``auto``, ``reference``,
    and ``cpp`` / ``triton`` for fusable neurons); single-step always calls ``step_fn``.
    """

    step_fn: Callable[..., tuple[Tensor, Any]]
    _repr_fields: tuple[str, ...] = ()
    _common_fields: tuple[str, ...] = ()

    def __init__(self, step_mode: str = "m", record_v: bool = False, kernel: str = "auto") -> None:
        super().__init__()
        self.kernel = kernels.check_kernel(type(self), kernel)
        self.record_v = bool(record_v)
        self.state: Any = None
        self._v_list: list[Tensor] = []
        self._v_seq: Tensor | None = None
        self._step_mode = "m"
        self.step_mode = step_mode

    # -- the pure step ------------------------------------------------------------------------
    def step_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``step_fn`` besides ``state`` and ``x`` (parameters, surrogate)."""
        raise NotImplementedError

    def initial_state(self, x: Tensor) -> NamedTuple:
        """The state before the first step, shaped, typed and placed like one step's input."""
        raise NotImplementedError

    def step(self, state: Any, x: Tensor) -> tuple[Tensor, Any]:
        """One time step as a pure call: ``step_fn(state, x, **step_kwargs())``."""
        return type(self).step_fn(state, x, **self.step_kwargs())

    # -- step modes ---------------------------------------------------------------------------
    @property
    def step_mode(self) -> str:
        """'m' (multi-step, ``[T, B, *]``) or 's' (single-step, ``[B, *]``); setting it resets."""
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        self._step_mode = F.check_step_mode(mode)
        self.reset()

    def forward(self, x: Tensor) -> Tensor:
        if self._step_mode == "m":
            return self._multi_step(x)
        return self._single_step(x)

    def _multi_step(self, x_seq: Tensor) -> Tensor:
        """Run ``step`` over the first axis of ``x_seq`` ``[T, B, *]`` from a fresh state."""
        if x_seq.dim() < 1 or x_seq.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} in multi-step mode expects input [T, B, ...] with T >= 1, "
                f"got shape {tuple(x_seq.shape)}"
            )
        out, self._v_seq = kernels.multi_step(self, x_seq)
        return out

    def _single_step(self, x: Tensor) -> Tensor:
        """One step from the kept state (initialised lazily like ``x``); the state is kept."""
        if self.state is None:
            self.state = self.initial_state(x)
        elif self.state[0].shape != x.shape:
            raise ValueError(
                f"{type(self).__name__} in single-step mode holds state of shape "
                f"{tuple(self.state[0].shape)} but got input {tuple(x.shape)} — call "
                "snnkit.components.functional.reset_net(model) between sequences"
            )
        out, self.state = self.step(self.state, x)
        if self.record_v:
            self._v_list.append(self.state[0].detach())
        return out

    def reset(self) -> None:
        """Forget the single-step state and any recorded voltages."""
        self.state = None
        self._v_list = []
        self._v_seq = None

    @property
    def v_seq(self) -> Tensor | None:
        """Recorded membrane trace V(t) (after reset), detached, ``[T, B, *]``; None if none.

        Multi-step: the trace of the last call. Single-step: the steps since ``reset()``.
        Only filled when ``record_v`` is true.
        """
        if self._step_mode == "s":
            return torch.stack(self._v_list) if self._v_list else None
        return self._v_seq

    def extra_repr(self) -> str:
        names = self._repr_fields + self._common_fields
        fields = [f"{name}={getattr(self, name)!r}" for name in names]
        if self.kernel != "auto":
            fields.append(f"kernel={self.kernel!r}")
        fields.append(f"step_mode={self._step_mode!r}")
        if self.record_v:
            fields.append("record_v=True")
        return ", ".join(fields)


class SpikingNeuron(BaseNeuron):
    """Base of the spiking neurons: surrogate, threshold, reset (hard or soft), detach_reset."""

    _common_fields = ("v_threshold", "v_reset", "detach_reset")

    def __init__(self, surrogate: Surrogate | None = None, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 step_mode: str = "m", record_v: bool = False, kernel: str = "auto") -> None:
        v_threshold = _finite("v_threshold", v_threshold)
        if v_reset is not None:
            v_reset = _finite("v_reset", v_reset)
            if not v_threshold > v_reset:
                raise ValueError(
                    "v_threshold must be > v_reset under hard reset, got "
                    f"v_threshold={v_threshold!r}, v_reset={v_reset!r} (set v_reset: null for soft reset)"
                )
        if surrogate is not None and not callable(surrogate):
            raise TypeError(f"surrogate must be a Surrogate module, got {type(surrogate).__name__}")
        super().__init__(step_mode, record_v, kernel)
        self.surrogate = Sigmoid() if surrogate is None else surrogate
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.detach_reset = bool(detach_reset)

    def _common_kwargs(self) -> dict[str, Any]:
        return {"v_threshold": self.v_threshold, "v_reset": self.v_reset,
                "detach_reset": self.detach_reset, "surrogate": self.surrogate}

    def _v0(self, x: Tensor) -> Tensor:
        return torch.full_like(x, 0.0 if self.v_reset is None else self.v_reset)

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.MembraneState(self._v0(x))


class IF(SpikingNeuron):
    """Integrate-and-fire neuron: H = V + X.

    Then S = Θ(H − V_th); hard reset V = H(1 − S) + V_reset S, soft (v_reset=None) V = H − V_th S.
    Defaults: v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.if_step)

    def __init__(self, surrogate: Surrogate | None = None, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)

    def step_kwargs(self) -> dict[str, Any]:
        return self._common_kwargs()


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neuron: H = V + (X − (V − V_reset)) / tau.

    decay_input=False: H = V − (V − V_reset)/tau + X. Under soft reset V_reset is 0 in the charge.
    Then S = Θ(H − V_th); hard reset V = H(1 − S) + V_reset S, soft V = H − V_th S.
    Defaults: tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.lif_step)
    _repr_fields = ("tau", "decay_input")

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0,
                 decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        tau = _time_constant("tau", tau, "the charge equation divides by tau")
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.tau = tau
        self.decay_input = bool(decay_input)

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": self.decay_input, **self._common_kwargs()}


class PLIF(SpikingNeuron):
    """Parametric LIF neuron: LIF with a learned time constant, 1/tau = sigmoid(w).

    H = V + (X − (V − V_reset)) sigmoid(w); decay_input=False: H = V − (V − V_reset) sigmoid(w) + X.
    w is a scalar nn.Parameter initialised to −log(init_tau − 1), so that tau = init_tau.
    Defaults: init_tau=2.0 (w=0), decay_input=True, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.plif_step)
    _repr_fields = ("init_tau", "decay_input")

    def __init__(self, surrogate: Surrogate | None = None, init_tau: float = 2.0,
                 decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        init_tau = _time_constant("init_tau", init_tau, "the charge equation divides by tau")
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.init_tau = init_tau
        self.decay_input = bool(decay_input)
        self.w = nn.Parameter(torch.tensor(F.plif_init_w(init_tau)))

    @property
    def tau(self) -> float:
        """The current time constant 1 / sigmoid(w)."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def step_kwargs(self) -> dict[str, Any]:
        return {"w": self.w, "decay_input": self.decay_input, **self._common_kwargs()}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau:.4g}"


class QIF(SpikingNeuron):
    """Quadratic integrate-and-fire neuron: H = V + (X + a0 (V − V_rest)(V − V_c)) / tau.

    Then fire and reset as for LIF. Requires a0 > 0 and v_c > v_rest.
    Defaults: tau=2.0, v_c=0.8, a0=1.0, v_rest=0.0, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.qif_step)
    _repr_fields = ("tau", "v_c", "a0", "v_rest")

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0, v_c: float = 0.8,
                 a0: float = 1.0, v_rest: float = 0.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        tau = _time_constant("tau", tau, "the charge equation divides by tau")
        a0, v_c, v_rest = _finite("a0", a0), _finite("v_c", v_c), _finite("v_rest", v_rest)
        if not a0 > 0:
            raise ValueError(f"a0 must be > 0 (the quadratic term drives the upswing), got {a0!r}")
        if not v_c > v_rest:
            raise ValueError(
                f"v_c must be > v_rest (the critical voltage lies above rest), got v_c={v_c!r}, "
                f"v_rest={v_rest!r}"
            )
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.tau, self.v_c, self.a0, self.v_rest = tau, v_c, a0, v_rest

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau": self.tau, "v_c": self.v_c, "a0": self.a0, "v_rest": self.v_rest,
                **self._common_kwargs()}


class EIF(SpikingNeuron):
    """Exponential integrate-and-fire neuron: H = V + (X − (V − V_rest) + Δ_T exp((V − θ_rh)/Δ_T)) / tau.

    Then fire and reset as for LIF. Requires delta_t > 0.
    Defaults: tau=2.0, delta_t=1.0, theta_rh=0.8, v_rest=0.0, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.eif_step)
    _repr_fields = ("tau", "delta_t", "theta_rh", "v_rest")

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0,
                 delta_t: float = 1.0, theta_rh: float = 0.8, v_rest: float = 0.0,
                 v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 detach_reset: bool = False, kernel: str = "auto", step_mode: str = "m",
                 record_v: bool = False) -> None:
        tau = _time_constant("tau", tau, "the charge equation divides by tau")
        delta_t = _finite("delta_t", delta_t)
        if not delta_t > 0:
            raise ValueError(f"delta_t must be > 0 (the exponential term divides by it), got {delta_t!r}")
        theta_rh, v_rest = _finite("theta_rh", theta_rh), _finite("v_rest", v_rest)
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.tau, self.delta_t, self.theta_rh, self.v_rest = tau, delta_t, theta_rh, v_rest

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau": self.tau, "delta_t": self.delta_t, "theta_rh": self.theta_rh,
                "v_rest": self.v_rest, **self._common_kwargs()}


class Izhikevich(SpikingNeuron):
    """Izhikevich-type neuron (discrete time): QIF membrane with an adaptation current W.

    H(t) = V(t−1) + (X(t) + a0 (V(t−1) − V_rest)(V(t−1) − V_c) − W(t−1)) / tau;
    S = Θ(H − V_th), V(t) = reset(H, S) (hard or soft);
    W(t) = W(t−1) + (a (V(t−1) − V_rest) − W(t−1)) / tau_w + b S(t);  W(0) = 0.
    Defaults: tau=2.0, tau_w=10.0, a=1.0, b=0.1, a0=1.0, v_c=0.8, v_rest=0.0,
    v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.izhikevich_step)
    _repr_fields = ("tau", "tau_w", "a", "b", "a0", "v_c", "v_rest")

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0,
                 tau_w: float = 10.0, a: float = 1.0, b: float = 0.1, a0: float = 1.0,
                 v_c: float = 0.8, v_rest: float = 0.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        tau = _time_constant("tau", tau, "the charge equation divides by tau")
        tau_w = _time_constant("tau_w", tau_w, "the adaptation equation divides by tau_w")
        a, b, a0 = _finite("a", a), _finite("b", b), _finite("a0", a0)
        v_c, v_rest = _finite("v_c", v_c), _finite("v_rest", v_rest)
        if not a0 > 0:
            raise ValueError(f"a0 must be > 0 (the quadratic term drives the upswing), got {a0!r}")
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.tau, self.tau_w, self.a, self.b = tau, tau_w, a, b
        self.a0, self.v_c, self.v_rest = a0, v_c, v_rest

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.IzhikevichState(self._v0(x), torch.zeros_like(x))

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau": self.tau, "tau_w": self.tau_w, "a": self.a, "b": self.b, "a0": self.a0,
                "v_c": self.v_c, "v_rest": self.v_rest, **self._common_kwargs()}


class ALIF(SpikingNeuron):
    """Adaptive-threshold LIF neuron: LIF membrane, threshold raised by each spike.

    H(t) = LIF charge of V(t−1), X(t) (see LIF);  V_th,eff(t) = v_threshold + beta a(t−1);
    S(t) = Θ(H − V_th,eff); V(t) = H(1 − S) + V_reset S (hard) or H − V_th,eff S (soft);
    a(t) = decay a(t−1) + S(t) with decay = 1 − 1/tau_adapt;  a(0) = 0.
    Defaults: tau=2.0, tau_adapt=20.0, beta=0.2, decay_input=True, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.alif_step)
    _repr_fields = ("tau", "tau_adapt", "beta", "decay_input")

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0,
                 tau_adapt: float = 20.0, beta: float = 0.2, decay_input: bool = True,
                 v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 detach_reset: bool = False, kernel: str = "auto", step_mode: str = "m",
                 record_v: bool = False) -> None:
        tau = _time_constant("tau", tau, "the charge equation divides by tau")
        tau_adapt = _time_constant("tau_adapt", tau_adapt,
                                   "the trace decays by 1 - 1/tau_adapt per step")
        beta = _finite("beta", beta)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0 (spikes raise the threshold), got {beta!r}")
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.tau, self.tau_adapt, self.beta = tau, tau_adapt, beta
        self.decay_input = bool(decay_input)

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.ALIFState(self._v0(x), torch.zeros_like(x))

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": self.decay_input,
                "decay": 1.0 - 1.0 / self.tau_adapt, "beta": self.beta, **self._common_kwargs()}


class CubaLIF(SpikingNeuron):
    """Current-based LIF neuron: the input charges a synaptic current that charges the membrane.

    I(t) = I(t−1)(1 − 1/tau_syn) + X(t);  H = V + (I(t) − (V − V_reset)) / tau_mem
    (V_reset = 0 in the charge under soft reset); then fire and reset as for LIF; I(0) = 0.
    Defaults: tau_syn=5.0, tau_mem=2.0, v_threshold=1.0, v_reset=0.0.
    """

    step_fn = staticmethod(F.cuba_lif_step)
    _repr_fields = ("tau_syn", "tau_mem")

    def __init__(self, surrogate: Surrogate | None = None, tau_syn: float = 5.0,
                 tau_mem: float = 2.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        tau_syn = _time_constant("tau_syn", tau_syn, "the current decays by 1 - 1/tau_syn per step")
        tau_mem = _time_constant("tau_mem", tau_mem, "the charge equation divides by tau_mem")
        super().__init__(surrogate, v_threshold, v_reset, detach_reset, step_mode, record_v,
                         kernel)
        self.tau_syn, self.tau_mem = tau_syn, tau_mem

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.CubaLIFState(self._v0(x), torch.zeros_like(x))

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau_syn": self.tau_syn, "tau_mem": self.tau_mem, **self._common_kwargs()}


class LI(BaseNeuron):
    """Leaky integrator (non-spiking readout): V = V + (X − V) / tau; outputs V, not spikes.

    No threshold, no reset; V(0) = 0. ``surrogate`` is accepted (snnkit supplies one to every
    neuron) and ignored. Defaults: tau=2.0.
    """

    step_fn = staticmethod(F.li_step)
    _repr_fields = ("tau",)

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0,
                 kernel: str = "auto", step_mode: str = "m", record_v: bool = False) -> None:
        del surrogate  # a readout never fires
        tau = _time_constant("tau", tau, "the charge equation divides by tau")
        super().__init__(step_mode, record_v, kernel)
        self.tau = tau

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.MembraneState(torch.zeros_like(x))

    def step_kwargs(self) -> dict[str, Any]:
        return {"tau": self.tau}
