"""Tests of snnkit.components.functional: fire, reset, charge equations, step functions, model helpers.

Golden values are worked out by hand from the equations in the module docstring; each test
shows the arithmetic. The surrogate is snnkit's Sigmoid(alpha=4): g'(u) = 4σ(4u)(1 − σ(4u)),
so g'(0) = 1 and g'(−0.5) = 4σ(−2)(1 − σ(−2)) = 0.419974...
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnkit.components import functional as F
from snnkit.components.surrogates import Sigmoid

G_AT_MINUS_HALF = 4 * (1 / (1 + math.exp(2))) * (1 - 1 / (1 + math.exp(2)))  # 0.419974...


def t(*values: float, grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


# -- fire ------------------------------------------------------------------------------------
def test_fire_theta_of_zero_is_one_and_below_is_zero() -> None:
    h = t(0.999, 1.0, 1.001, -3.0)
    assert F.fire(h, 1.0, Sigmoid()).tolist() == [0.0, 1.0, 1.0, 0.0]


def test_fire_backward_is_surrogate_derivative_of_h_minus_threshold() -> None:
    h = t(1.0, 0.5, grad=True)
    F.fire(h, 1.0, Sigmoid()).sum().backward()
    # d/dh Θ(h − 1) -> g'(h − 1): g'(0) = 1, g'(−0.5) = 0.419974
    assert torch.allclose(h.grad, t(1.0, G_AT_MINUS_HALF))


def test_fire_accepts_a_tensor_threshold() -> None:
    assert F.fire(t(1.0, 1.0), t(1.0, 1.5), Sigmoid()).tolist() == [1.0, 0.0]


# -- reset -----------------------------------------------------------------------------------
def test_hard_reset_sets_fired_to_v_reset_and_keeps_the_rest() -> None:
    # V = H (1 − S) + V_reset S with V_reset = −0.2: [1.3, 0.4] with S = [1, 0] -> [−0.2, 0.4]
    v = F.reset(t(1.3, 0.4), t(1.0, 0.0), 1.0, -0.2, False)
    assert torch.allclose(v, t(-0.2, 0.4))


def test_soft_reset_subtracts_threshold() -> None:
    # V = H − V_th S with V_th = 1: [1.3, 0.4] with S = [1, 0] -> [0.3, 0.4]
    v = F.reset(t(1.3, 0.4), t(1.0, 0.0), 1.0, None, False)
    assert torch.allclose(v, t(0.3, 0.4))


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_detach_reset_removes_gradient_of_the_reset_path_only(v_reset: float | None) -> None:
    # One neuron, H = 1 (fires, Θ(0) = 1); dS/dH = g'(0) = 1.
    # hard: V = H(1 − S) + 0·S -> dV/dH = (1 − S) − H dS/dH = 0 − 1 = −1; detached: 1 − S = 0
    # soft: V = H − 1·S         -> dV/dH = 1 − dS/dH = 0;               detached: 1
    grads = []
    for detach in (False, True):
        h = t(1.0, grad=True)
        s = F.fire(h, 1.0, Sigmoid())
        F.reset(h, s, 1.0, v_reset, detach).sum().backward()
        grads.append(h.grad.item())
    expected = [-1.0, 0.0] if v_reset is not None else [0.0, 1.0]
    assert grads == pytest.approx(expected)


def test_detach_reset_keeps_the_spike_gradient() -> None:
    h = t(1.0, grad=True)
    s = F.fire(h, 1.0, Sigmoid())
    F.reset(h, s, 1.0, 0.0, True)
    s.sum().backward()
    assert h.grad.item() == pytest.approx(1.0)  # g'(0)


# -- charge equations (one step, scalar values worked by hand) ---------------------------------
def test_if_charge() -> None:
    assert F.if_charge(t(0.25), t(0.5)).item() == 0.75


@pytest.mark.parametrize(
    ("decay_input", "v_reset", "expected"),
    [
        (True, 0.0, 0.6),  # 0.5 + (0.7 − (0.5 − 0))/2 = 0.5 + 0.1
        (False, 0.0, 0.95),  # 0.5 − (0.5 − 0)/2 + 0.7 = 0.25 + 0.7
        (True, -0.5, 0.35),  # 0.5 + (0.7 − (0.5 + 0.5))/2 = 0.5 − 0.15
        (False, -0.5, 0.7),  # 0.5 − (0.5 + 0.5)/2 + 0.7 = 0.5 − 0.5 + 0.7
        (True, None, 0.6),  # soft reset: V_reset taken as 0 in the charge
    ],
)
def test_lif_charge(decay_input: bool, v_reset: float | None, expected: float) -> None:
    # LIF, tau = 2, V = 0.5, X = 0.7
    h = F.lif_charge(t(0.5), t(0.7), 2.0, v_reset, decay_input)
    assert h.item() == pytest.approx(expected)


def test_plif_charge_uses_sigmoid_of_w_as_one_over_tau() -> None:
    # w = −log 3 -> sigmoid(w) = 1/(1 + 3) = 1/4 (tau = 4): 0.5 + (0.7 − 0.5)/4 = 0.55
    w = torch.tensor(-math.log(3.0), dtype=torch.float64)
    assert F.plif_charge(t(0.5), t(0.7), w, 0.0, True).item() == pytest.approx(0.55)
    # decay_input=False: 0.5 − 0.5/4 + 0.7 = 1.075
    assert F.plif_charge(t(0.5), t(0.7), w, 0.0, False).item() == pytest.approx(1.075)
    assert F.plif_init_w(4.0) == pytest.approx(-math.log(3.0))


def test_qif_charge() -> None:
    # tau 2, v_c 0.8, a0 1, v_rest 0, V 0.5, X 1: 0.5 + (1 + 0.5·(0.5 − 0.8))/2 = 0.5 + 0.85/2
    assert F.qif_charge(t(0.5), t(1.0), 2.0, 0.8, 1.0, 0.0).item() == pytest.approx(0.925)


def test_eif_charge() -> None:
    # tau 2, Δ 1, θ 0.8, v_rest 0, V 0.8, X 1: 0.8 + (1 − 0.8 + 1·e^0)/2 = 0.8 + 0.6 = 1.4
    assert F.eif_charge(t(0.8), t(1.0), 2.0, 1.0, 0.8, 0.0).item() == pytest.approx(1.4)


def test_izhikevich_charge_and_adaptation() -> None:
    # H = V + (X + a0 (V − 0)(V − 0.8) − W)/tau with V 0.6, W 0.1, X 1.2, tau 2:
    #   0.6 + (1.2 + 0.6·(−0.2) − 0.1)/2 = 0.6 + 0.98/2 = 1.09
    h = F.izhikevich_charge(t(0.6), t(0.1), t(1.2), 2.0, 1.0, 0.8, 0.0)
    assert h.item() == pytest.approx(1.09)
    # W' = W + (a (V − 0) − W)/tau_w + b S with a 1, tau_w 10, b 0.1, S 1:
    #   0.1 + (0.6 − 0.1)/10 + 0.1 = 0.25
    w = F.izhikevich_adapt(t(0.6), t(0.1), t(1.0), 10.0, 1.0, 0.1, 0.0)
    assert w.item() == pytest.approx(0.25)


def test_alif_threshold_and_adaptation() -> None:
    # V_th,eff = 1 + 0.2·0.5 = 1.1;  a' = 0.95·0.5 + 1 = 1.475
    assert F.alif_threshold(t(0.5), 1.0, 0.2).item() == pytest.approx(1.1)
    assert F.alif_adapt(t(0.5), t(1.0), 0.95).item() == pytest.approx(1.475)


def test_cuba_current_and_charge() -> None:
    # I' = 1·(1 − 1/5) + 0.5 = 1.3;  H = 0.4 + (1.3 − (0.4 − 0))/2 = 0.85
    i = F.cuba_current(t(1.0), t(0.5), 5.0)
    assert i.item() == pytest.approx(1.3)
    assert F.cuba_lif_charge(t(0.4), i, 2.0, 0.0).item() == pytest.approx(0.85)
    # soft reset: V_reset taken as 0 in the charge (same value)
    assert F.cuba_lif_charge(t(0.4), i, 2.0, None).item() == pytest.approx(0.85)


def test_li_charge() -> None:
    # 0.5 + (1.5 − 0.5)/2 = 1.0
    assert F.li_charge(t(0.5), t(1.5), 2.0).item() == pytest.approx(1.0)


# -- gradients of the smooth parts ----------------------------------------------------------
SMOOTH_CHARGES = {
    "lif": lambda v, x: F.lif_charge(v, x, 2.0, 0.0, True),
    "lif_no_decay_input": lambda v, x: F.lif_charge(v, x, 3.0, -0.2, False),
    "qif": lambda v, x: F.qif_charge(v, x, 2.0, 0.8, 1.0, 0.0),
    "eif": lambda v, x: F.eif_charge(v, x, 2.0, 1.0, 0.8, 0.0),
    "izhikevich": lambda v, x: F.izhikevich_charge(v, 0.3 * v, x, 2.0, 1.0, 0.8, 0.0),
    "cuba": lambda v, x: F.cuba_lif_charge(v, F.cuba_current(0.5 * v, x, 5.0), 2.0, 0.0),
    "li": lambda v, x: F.li_charge(v, x, 2.0),
}


@pytest.mark.parametrize("name", sorted(SMOOTH_CHARGES))
def test_charge_gradcheck(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    v = torch.rand(5, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.rand(5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SMOOTH_CHARGES[name], (v, x))


def test_plif_charge_gradcheck_in_w() -> None:
    w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    v = torch.rand(4, dtype=torch.float64, requires_grad=True)
    x = torch.rand(4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda w_, v_: F.plif_charge(v_, x, w_, 0.0, True), (w, v))


# -- step functions ------------------------------------------------------------------------
def test_lif_step_composes_charge_fire_reset() -> None:
    # V = 0.5, X = [1.5, 0.7], tau 2: H = [1.0, 0.6] -> S = [1, 0] (Θ(0) = 1) -> V = [0, 0.6]
    state = F.MembraneState(t(0.5, 0.5))
    s, new = F.lif_step(
        state,
        t(1.5, 0.7),
        tau=2.0,
        decay_input=True,
        v_threshold=1.0,
        v_reset=0.0,
        detach_reset=False,
        surrogate=Sigmoid(),
    )
    assert s.tolist() == [1.0, 0.0]
    assert torch.allclose(new.v, t(0.0, 0.6))


def test_alif_step_soft_reset_subtracts_effective_threshold() -> None:
    # V 0.5, a 0.5, X 1.5: H = 0.5 + (1.5 − 0.5)/2 = 1.0; th = 1 + 0.2·0.5 = 1.1 -> S = 0
    # with X 2.0: H = 1.25 -> S = 1, V = 1.25 − 1.1 = 0.15; a' = 0.95·0.5 + 1 = 1.475
    kw = dict(
        tau=2.0,
        decay_input=True,
        decay=0.95,
        beta=0.2,
        v_threshold=1.0,
        v_reset=None,
        detach_reset=False,
        surrogate=Sigmoid(),
    )
    s, new = F.alif_step(F.ALIFState(t(0.5, 0.5), t(0.5, 0.5)), t(1.5, 2.0), **kw)
    assert s.tolist() == [0.0, 1.0]
    assert torch.allclose(new.v, t(1.0, 0.15))
    assert torch.allclose(new.a, t(0.475, 1.475))


def test_izhikevich_step_updates_w_from_pre_step_voltage() -> None:
    # V 0.6, W 0, X 1.2: H = 0.6 + (1.2 − 0.12)/2 = 1.14 -> S 1, V 0
    # W' = 0 + (0.6 − 0)/10 + 0.1·1 = 0.16 (uses V(t−1) = 0.6, not the reset V)
    kw = dict(
        tau=2.0,
        tau_w=10.0,
        a=1.0,
        b=0.1,
        a0=1.0,
        v_c=0.8,
        v_rest=0.0,
        v_threshold=1.0,
        v_reset=0.0,
        detach_reset=False,
        surrogate=Sigmoid(),
    )
    s, new = F.izhikevich_step(F.IzhikevichState(t(0.6), t(0.0)), t(1.2), **kw)
    assert s.item() == 1.0
    assert new.v.item() == pytest.approx(0.0)
    assert new.w.item() == pytest.approx(0.16)


def test_li_step_outputs_the_membrane() -> None:
    out, new = F.li_step(F.MembraneState(t(0.5)), t(1.5), tau=2.0)
    assert out.item() == pytest.approx(1.0) and new.v is out


# -- model helpers ----------------------------------------------------------------------------
class _Stateful(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.count = 3
        self.step_mode = "m"

    def reset(self) -> None:
        self.count = 0


def test_reset_net_calls_reset_on_every_submodule_that_has_one() -> None:
    inner, outer = _Stateful(), _Stateful()
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(inner), outer)
    F.reset_net(model)
    assert inner.count == 0 and outer.count == 0


def test_set_step_mode_sets_every_module_with_the_attribute() -> None:
    a, b = _Stateful(), _Stateful()
    linear = nn.Linear(2, 2)
    model = nn.Sequential(a, linear, nn.Sequential(b))
    F.set_step_mode(model, "s")
    assert a.step_mode == "s" and b.step_mode == "s"
    assert not hasattr(linear, "step_mode")


def test_set_step_mode_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match=r"step_mode must be 'm' .* or 's' .*got 'x'"):
        F.set_step_mode(nn.Sequential(_Stateful()), "x")
