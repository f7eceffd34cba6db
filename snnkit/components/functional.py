"""Pure neuron equations: charge, fire, reset, and one ``<neuron>_step`` per neuron.

Conventions (the same everywhere in snnkit):

- Tensors are time-first ``[T, B, ...]``; time is counted in steps (dt = 1).
- Every neuron follows the three discrete equations of the reference tutorial::

      H(t) = f(V(t-1), X(t))               charge (one function per neuron)
      S(t) = Θ(H(t) - V_th)                fire:  a spike iff H - V_th >= 0, so Θ(0) = 1
      V(t) = H(t) (1 - S(t)) + V_reset S(t)   hard reset (v_reset is a float)
      V(t) = H(t) - V_th S(t)                 soft reset (v_reset is None)

- Θ is applied by a surrogate module: Θ in the forward pass, the surrogate's derivative in
  the backward pass.
- ``detach_reset=True`` detaches S(t) in the reset equation only; the spike output (and any
  other use of S, e.g. threshold adaptation) keeps its gradient.
- A step function ``<neuron>_step(state, x, *, params..., surrogate) -> (out, new_state)``
  composes charge, fire and reset for one time step. It is the single source of truth used by
  both step modes of :mod:`snnkit.components.neurons`. States are NamedTuples whose first field
  is the membrane potential ``v`` (the value after reset, V(t)).

Everything here is a pure function of its arguments except :func:`reset_net`,
:func:`set_step_mode` and :func:`start_epoch`, which walk a model and act on its neuron modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

Spike = Callable[[Tensor], Tensor]
"""A surrogate: Θ(x) forward, surrogate derivative backward (usually a ``Surrogate`` module)."""

STEP_MODES = ("m", "s")


def check_step_mode(mode: str) -> str:
    """``mode`` if it names a step mode — ``'m'`` (multi-step, ``[T, B, *]``) or ``'s'``
    (single-step, ``[B, *]``) — else ``ValueError``. The one check behind every ``step_mode``."""
    if mode not in STEP_MODES:
        raise ValueError(f"step_mode must be 'm' (multi-step) or 's' (single-step), got {mode!r}")
    return mode


# -- states ----------------------------------------------------------------------------------
class MembraneState(NamedTuple):
    """State of a one-variable neuron (IF, LIF, PLIF, QIF, EIF, LI): the membrane potential."""

    v: Tensor


class IzhikevichState(NamedTuple):
    """Membrane potential ``v`` and adaptation current ``w``."""

    v: Tensor
    w: Tensor


class ALIFState(NamedTuple):
    """Membrane potential ``v`` and threshold adaptation trace ``a``."""

    v: Tensor
    a: Tensor


class CubaLIFState(NamedTuple):
    """Membrane potential ``v`` and synaptic current ``i``."""

    v: Tensor
    i: Tensor


# -- fire and reset --------------------------------------------------------------------------
def fire(h: Tensor, v_threshold: float | Tensor, surrogate: Spike) -> Tensor:
    """S = Θ(H − V_th), through ``surrogate`` (Θ(0) = 1: reaching the threshold fires)."""
    return surrogate(h - v_threshold)


def reset(
    h: Tensor, s: Tensor, v_threshold: float | Tensor, v_reset: float | None, detach_reset: bool
) -> Tensor:
    """Hard: V = H (1 − S) + V_reset S; soft (``v_reset is None``): V = H − V_th S.

    ``detach_reset`` uses S.detach() here, so no gradient flows through the reset path.
    """
    if detach_reset:
        s = s.detach()
    if v_reset is None:
        return h - v_threshold * s
    return h * (1.0 - s) + v_reset * s


def _rest(v_reset: float | None) -> float:
    """The resting potential in a LIF-type charge: V_reset, or 0 under soft reset."""
    return 0.0 if v_reset is None else v_reset


# -- charge equations ------------------------------------------------------------------------
def if_charge(v: Tensor, x: Tensor) -> Tensor:
    """IF: H = V + X."""
    return v + x


def lif_charge(
    v: Tensor, x: Tensor, tau: float, v_reset: float | None, decay_input: bool
) -> Tensor:
    """LIF: H = V + (X − (V − V_reset)) / tau (decay_input) or H = V − (V − V_reset)/tau + X.

    Under soft reset (``v_reset is None``) V_reset is taken as 0 here.
    """
    rest = _rest(v_reset)
    if decay_input:
        return v + (x - (v - rest)) / tau
    return v - (v - rest) / tau + x


def plif_charge(
    v: Tensor, x: Tensor, w: Tensor, v_reset: float | None, decay_input: bool
) -> Tensor:
    """PLIF: LIF with 1/tau = sigmoid(w), w learned.

    H = V + (X − (V − V_reset)) k (decay_input) or H = V − (V − V_reset) k + X, k = sigmoid(w).
    """
    k = torch.sigmoid(w)
    rest = _rest(v_reset)
    if decay_input:
        return v + (x - (v - rest)) * k
    return v - (v - rest) * k + x


def qif_charge(v: Tensor, x: Tensor, tau: float, v_c: float, a0: float, v_rest: float) -> Tensor:
    """QIF: H = V + (X + a0 (V − V_rest)(V − V_c)) / tau."""
    return v + (x + a0 * (v - v_rest) * (v - v_c)) / tau


def eif_charge(
    v: Tensor, x: Tensor, tau: float, delta_t: float, theta_rh: float, v_rest: float
) -> Tensor:
    """EIF: H = V + (X − (V − V_rest) + Δ_T exp((V − θ_rh) / Δ_T)) / tau."""
    return v + (x - (v - v_rest) + delta_t * torch.exp((v - theta_rh) / delta_t)) / tau


def izhikevich_charge(
    v: Tensor, w: Tensor, x: Tensor, tau: float, a0: float, v_c: float, v_rest: float
) -> Tensor:
    """Izhikevich membrane: H = V + (X + a0 (V − V_rest)(V − V_c) − W) / tau."""
    return v + (x + a0 * (v - v_rest) * (v - v_c) - w) / tau


def izhikevich_adapt(
    v: Tensor, w: Tensor, s: Tensor, tau_w: float, a: float, b: float, v_rest: float
) -> Tensor:
    """Adaptation current: W(t) = W(t−1) + (a (V(t−1) − V_rest) − W(t−1)) / tau_w + b S(t)."""
    return w + (a * (v - v_rest) - w) / tau_w + b * s


def alif_threshold(a: Tensor, v_threshold: float, beta: float) -> Tensor:
    """Effective threshold: V_th,eff(t) = v_threshold + beta · a(t−1)."""
    return v_threshold + beta * a


def alif_adapt(a: Tensor, s: Tensor, decay: float) -> Tensor:
    """Adaptation trace: a(t) = decay · a(t−1) + S(t)."""
    return decay * a + s


def cuba_current(i: Tensor, x: Tensor, tau_syn: float) -> Tensor:
    """Synaptic current: I(t) = I(t−1) (1 − 1/tau_syn) + X(t)."""
    return i * (1.0 - 1.0 / tau_syn) + x


def cuba_lif_charge(v: Tensor, i: Tensor, tau_mem: float, v_reset: float | None) -> Tensor:
    """CUBA-LIF membrane: H = V + (I(t) − (V − V_reset)) / tau_mem (V_reset = 0 if soft)."""
    return v + (i - (v - _rest(v_reset))) / tau_mem


def li_charge(v: Tensor, x: Tensor, tau: float) -> Tensor:
    """LI: V(t) = V(t−1) + (X(t) − V(t−1)) / tau (resting potential 0)."""
    return v + (x - v) / tau


# -- step functions --------------------------------------------------------------------------
def _fire_reset(
    h: Tensor,
    v_threshold: float | Tensor,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, Tensor]:
    s = fire(h, v_threshold, surrogate)
    return s, reset(h, s, v_threshold, v_reset, detach_reset)


def if_step(
    state: MembraneState,
    x: Tensor,
    *,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, MembraneState]:
    """One IF step: H = V + X, then fire and reset."""
    h = if_charge(state.v, x)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    return s, MembraneState(v)


def lif_step(
    state: MembraneState,
    x: Tensor,
    *,
    tau: float,
    decay_input: bool,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, MembraneState]:
    """One LIF step: :func:`lif_charge`, then fire and reset."""
    h = lif_charge(state.v, x, tau, v_reset, decay_input)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    return s, MembraneState(v)


def plif_step(
    state: MembraneState,
    x: Tensor,
    *,
    w: Tensor,
    decay_input: bool,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, MembraneState]:
    """One PLIF step: :func:`plif_charge` (1/tau = sigmoid(w)), then fire and reset."""
    h = plif_charge(state.v, x, w, v_reset, decay_input)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    return s, MembraneState(v)


def qif_step(
    state: MembraneState,
    x: Tensor,
    *,
    tau: float,
    v_c: float,
    a0: float,
    v_rest: float,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, MembraneState]:
    """One QIF step: :func:`qif_charge`, then fire and reset."""
    h = qif_charge(state.v, x, tau, v_c, a0, v_rest)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    return s, MembraneState(v)


def eif_step(
    state: MembraneState,
    x: Tensor,
    *,
    tau: float,
    delta_t: float,
    theta_rh: float,
    v_rest: float,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, MembraneState]:
    """One EIF step: :func:`eif_charge`, then fire and reset."""
    h = eif_charge(state.v, x, tau, delta_t, theta_rh, v_rest)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    return s, MembraneState(v)


def izhikevich_step(
    state: IzhikevichState,
    x: Tensor,
    *,
    tau: float,
    tau_w: float,
    a: float,
    b: float,
    a0: float,
    v_c: float,
    v_rest: float,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, IzhikevichState]:
    """One Izhikevich step (both variables updated from the pre-step state V(t−1), W(t−1))::

    H(t) = V(t−1) + (X(t) + a0 (V(t−1) − V_rest)(V(t−1) − V_c) − W(t−1)) / tau
    S(t) = Θ(H(t) − V_th);  V(t) = reset(H(t), S(t))
    W(t) = W(t−1) + (a (V(t−1) − V_rest) − W(t−1)) / tau_w + b S(t)
    """
    h = izhikevich_charge(state.v, state.w, x, tau, a0, v_c, v_rest)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    w = izhikevich_adapt(state.v, state.w, s, tau_w, a, b, v_rest)
    return s, IzhikevichState(v, w)


def alif_step(
    state: ALIFState,
    x: Tensor,
    *,
    tau: float,
    decay_input: bool,
    decay: float,
    beta: float,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, ALIFState]:
    """One adaptive-threshold LIF step::

    H(t) = lif_charge(V(t−1), X(t))
    V_th,eff(t) = v_threshold + beta a(t−1)
    S(t) = Θ(H(t) − V_th,eff(t))
    V(t) = H(1 − S) + V_reset S (hard) or H − V_th,eff(t) S (soft)
    a(t) = decay a(t−1) + S(t)
    """
    h = lif_charge(state.v, x, tau, v_reset, decay_input)
    threshold = alif_threshold(state.a, v_threshold, beta)
    s, v = _fire_reset(h, threshold, v_reset, detach_reset, surrogate)
    return s, ALIFState(v, alif_adapt(state.a, s, decay))


def cuba_lif_step(
    state: CubaLIFState,
    x: Tensor,
    *,
    tau_syn: float,
    tau_mem: float,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: Spike,
) -> tuple[Tensor, CubaLIFState]:
    """One current-based LIF step: I(t) = I(t−1)(1 − 1/tau_syn) + X(t), then
    H = V + (I(t) − (V − V_reset)) / tau_mem, fire and reset."""
    i = cuba_current(state.i, x, tau_syn)
    h = cuba_lif_charge(state.v, i, tau_mem, v_reset)
    s, v = _fire_reset(h, v_threshold, v_reset, detach_reset, surrogate)
    return s, CubaLIFState(v, i)


def li_step(state: MembraneState, x: Tensor, *, tau: float) -> tuple[Tensor, MembraneState]:
    """One leaky-integrator step: V(t) = V(t−1) + (X(t) − V(t−1)) / tau; output V(t)."""
    v = li_charge(state.v, x, tau)
    return v, MembraneState(v)


# -- helpers on models -----------------------------------------------------------------------
def recurrent_input(x: Tensor, s_prev: Tensor, w_rec: Tensor, b_rec: Tensor | None) -> Tensor:
    """The input a recurrent layer's neuron charges with: I(t) = X(t) + W_rec S(t−1) + b_rec.

    ``w_rec`` ``[N, N]`` (all-to-all: ``S W_rec^T``, row i of W_rec feeds neuron i) or ``[N]``
    (one-to-one: ``S ⊙ w_rec``); ``b_rec`` ``[N]`` or None; evaluated left to right,
    ``(X + W_rec S) + b_rec``. With S(0) = 0 the first step charges with X(1) + b_rec.
    """
    fed = s_prev @ w_rec.t() if w_rec.dim() == 2 else s_prev * w_rec
    i = x + fed
    return i if b_rec is None else i + b_rec


def plif_init_w(init_tau: float) -> float:
    """The PLIF weight w with sigmoid(w) = 1/init_tau: w = −log(init_tau − 1)."""
    return -math.log(init_tau - 1.0)


def reset_net(model: nn.Module) -> None:
    """Call ``reset()`` on every submodule of ``model`` (itself included) that has one."""
    for module in model.modules():
        method = getattr(module, "reset", None)
        if callable(method):
            method()


def set_step_mode(model: nn.Module, mode: str) -> None:
    """Set ``step_mode`` to ``'m'`` (multi-step) or ``'s'`` (single-step) on every submodule of
    ``model`` that has a ``step_mode`` attribute."""
    check_step_mode(mode)
    for module in model.modules():
        if hasattr(module, "step_mode"):
            setattr(module, "step_mode", mode)  # noqa: B010 - any module with the attribute


def start_epoch(model: nn.Module, epoch: int, epochs: int) -> None:
    """Tell every submodule of ``model`` with an ``on_epoch_start(epoch, epochs)`` method that
    training epoch ``epoch`` (1-based) of ``epochs`` begins (e.g. DCLS sharpens its delays)."""
    for module in model.modules():
        method = getattr(module, "on_epoch_start", None)
        if callable(method):
            method(epoch, epochs)
