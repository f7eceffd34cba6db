"""Tests of snnkit.components.neurons: golden sequences, step-mode parity, state, gradients, validation.

Golden sequences are worked out by hand from each class docstring's equations over 3-4 steps
of a scalar input (shape [T, 1]); each test shows the arithmetic. Θ(0) = 1: an H that lands
exactly on the threshold fires.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from snnkit.components import functional as F
from snnkit.components import neurons as N
from snnkit.components.surrogates import ATan, Sigmoid
from snnkit.plugins.loader import build_registry

# the catalogue registered by snnkit/builtins.py, sorted by name
BUILTIN_NEURONS = [(c.name, c.factory) for c in build_registry(entry_points=False).list("neuron")]

SPIKING = [cls for _, cls in BUILTIN_NEURONS if cls is not N.LI]


def seq(*values: float, grad: bool = False) -> torch.Tensor:
    """A scalar input sequence shaped [T, B=1]."""
    return torch.tensor(values, dtype=torch.float64).reshape(-1, 1).requires_grad_(grad)


def run(neuron: N.BaseNeuron, x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Spikes (or LI output) and recorded V(t) of a multi-step call, as flat lists."""
    neuron.record_v = True
    out = neuron(x)
    return out.flatten().tolist(), neuron.v_seq.flatten().tolist()


def approx(values: list[float]) -> Any:
    return pytest.approx(values, abs=1e-12)


# -- golden sequences -----------------------------------------------------------------------
def test_if_hard_reset_and_theta_of_zero() -> None:
    # H = V + X. X = 0.5, 0.5, 0.7, 0.2:
    # t1 H 0.5 S0 V0.5 | t2 H 1.0 = V_th -> S1 (Θ(0)=1), V0 | t3 H 0.7 | t4 H 0.9
    s, v = run(N.IF(), seq(0.5, 0.5, 0.7, 0.2))
    assert s == [0, 1, 0, 0]
    assert v == approx([0.5, 0.0, 0.7, 0.9])


@pytest.mark.parametrize(
    ("v_reset", "spikes", "volts"),
    [
        # X = 0.6, 0.9, 0.2, 1.5; hard: t2 H 1.5 -> V0; t3 H 0.2; t4 H 1.7 -> V0
        (0.0, [0, 1, 0, 1], [0.6, 0.0, 0.2, 0.0]),
        # soft: t2 H 1.5 -> V 1.5 − 1 = 0.5; t3 H 0.7; t4 H 2.2 -> V 1.2
        (None, [0, 1, 0, 1], [0.6, 0.5, 0.7, 1.2]),
    ],
)
def test_if_hard_and_soft_reset(
    v_reset: float | None, spikes: list[int], volts: list[float]
) -> None:
    s, v = run(N.IF(v_reset=v_reset), seq(0.6, 0.9, 0.2, 1.5))
    assert s == spikes
    assert v == approx(volts)


def test_lif_decay_input_hard_reset() -> None:
    # tau 2, H = V + (X − V)/2. X = 1, 1.5, 2, 0.5:
    # t1 H 0.5 | t2 0.5 + (1.5 − 0.5)/2 = 1.0 -> S1 V0 | t3 0 + 2/2 = 1.0 -> S1 V0 | t4 0.25
    s, v = run(N.LIF(), seq(1.0, 1.5, 2.0, 0.5))
    assert s == [0, 1, 1, 0]
    assert v == approx([0.5, 0.0, 0.0, 0.25])


def test_lif_without_decay_input() -> None:
    # tau 2, H = V − V/2 + X. X = 0.5, 0.5, 0.5, 0.9:
    # t1 0.5 | t2 0.25 + 0.5 = 0.75 | t3 0.375 + 0.5 = 0.875 | t4 0.4375 + 0.9 = 1.3375 -> S1 V0
    s, v = run(N.LIF(decay_input=False), seq(0.5, 0.5, 0.5, 0.9))
    assert s == [0, 0, 0, 1]
    assert v == approx([0.5, 0.75, 0.875, 0.0])


@pytest.mark.parametrize(
    ("v_reset", "spikes", "volts"),
    [
        # hard: t1 H 1.5 -> V0 | t2 (1 − 0)/2 = 0.5 | t3 0.5 − 0.25 = 0.25 | t4 0.25 + 0.375 = 0.625
        (0.0, [1, 0, 0, 0], [0.0, 0.5, 0.25, 0.625]),
        # soft: t1 H 1.5 -> V 0.5 | t2 0.5 + 0.25 = 0.75 | t3 0.375 | t4 0.375 + 0.3125 = 0.6875
        (None, [1, 0, 0, 0], [0.5, 0.75, 0.375, 0.6875]),
    ],
)
def test_lif_hard_and_soft_reset(
    v_reset: float | None, spikes: list[int], volts: list[float]
) -> None:
    s, v = run(N.LIF(v_reset=v_reset), seq(3.0, 1.0, 0.0, 1.0))
    assert s == spikes
    assert v == approx(volts)


def test_lif_nonzero_v_reset_is_start_and_rest() -> None:
    # V(0) = V_reset = −0.5; H = V + (X − (V + 0.5))/2. X = 1, 2, 2, 0:
    # t1 −0.5 + (1 − 0)/2 = 0 | t2 0 + (2 − 0.5)/2 = 0.75 | t3 0.75 + (2 − 1.25)/2 = 1.125 -> S1,
    # V −0.5 | t4 −0.5 + (0 − 0)/2 = −0.5
    s, v = run(N.LIF(v_reset=-0.5), seq(1.0, 2.0, 2.0, 0.0))
    assert s == [0, 0, 1, 0]
    assert v == approx([0.0, 0.75, -0.5, -0.5])


def test_plif_default_equals_lif_with_tau_two() -> None:
    # init_tau 2 -> w = −log(1) = 0, sigmoid(0) = 1/2: same sequence as test_lif_decay_input_hard_reset
    neuron = N.PLIF()
    assert neuron.w.item() == 0.0
    s, v = run(neuron, seq(1.0, 1.5, 2.0, 0.5))
    assert s == [0, 1, 1, 0]
    assert v == approx([0.5, 0.0, 0.0, 0.25])


def test_plif_init_tau_four() -> None:
    # w = −log 3, sigmoid(w) = 1/4. X = 2, 2, 2:
    # t1 0 + 2/4 = 0.5 | t2 0.5 + 1.5/4 = 0.875 | t3 0.875 + 1.125/4 = 1.15625 -> S1 V0
    neuron = N.PLIF(init_tau=4.0)
    assert torch.sigmoid(neuron.w).item() == pytest.approx(0.25)
    assert neuron.tau == pytest.approx(4.0)
    s, v = run(neuron.double(), seq(2.0, 2.0, 2.0))
    assert s == [0, 0, 1]
    assert v == pytest.approx([0.5, 0.875, 0.0], abs=1e-7)  # w was rounded to float32


def test_qif_sequence() -> None:
    # tau 2, v_c 0.8, a0 1: H = V + (X + V(V − 0.8))/2. X = 1, 1, 1, 0:
    # t1 (1 + 0)/2 = 0.5 | t2 0.5 + (1 + 0.5·(−0.3))/2 = 0.5 + 0.425 = 0.925
    # t3 0.925 + (1 + 0.925·0.125)/2 = 0.925 + 0.5578125 = 1.4828125 -> S1 V0 | t4 0
    s, v = run(N.QIF(), seq(1.0, 1.0, 1.0, 0.0))
    assert s == [0, 0, 1, 0]
    assert v == approx([0.5, 0.925, 0.0, 0.0])


def test_eif_sequence() -> None:
    # tau 2, Δ 1, θ_rh 0.8: H = V + (X − V + e^(V − 0.8))/2. X = 1, 1, 1:
    # t1 (1 + e^−0.8)/2 = 0.724664 | t2 0.724664 + (1 − 0.724664 + e^−0.075336)/2 = 1.326048 -> S1 V0
    # t3 = t1 again
    h1 = (1 + math.exp(-0.8)) / 2
    h2 = h1 + (1 - h1 + math.exp(h1 - 0.8)) / 2
    assert h1 == pytest.approx(0.724664, abs=1e-6) and h2 == pytest.approx(1.326048, abs=1e-6)
    s, v = run(N.EIF(), seq(1.0, 1.0, 1.0))
    assert s == [0, 1, 0]
    assert v == approx([h1, 0.0, h1])


def test_izhikevich_sequence_with_adaptation() -> None:
    # tau 2, tau_w 10, a 1, b 0.1, a0 1, v_c 0.8; X = 1.2 each step.
    # t1 H = (1.2 + 0 − 0)/2 = 0.6 S0;             W1 = 0 + (0 − 0)/10 + 0 = 0
    # t2 H = 0.6 + (1.2 − 0.12 − 0)/2 = 1.14 S1 V0; W2 = 0 + (0.6 − 0)/10 + 0.1 = 0.16
    # t3 H = 0 + (1.2 + 0 − 0.16)/2 = 0.52 S0;     W3 = 0.16 + (0 − 0.16)/10 = 0.144
    # t4 H = 0.52 + (1.2 + 0.52·(−0.28) − 0.144)/2 = 0.52 + 0.4552 = 0.9752 S0
    #                                               W4 = 0.144 + (0.52 − 0.144)/10 = 0.1816
    neuron = N.Izhikevich(step_mode="s", record_v=True)
    spikes = [neuron(torch.tensor([1.2], dtype=torch.float64)).item() for _ in range(4)]
    assert spikes == [0, 1, 0, 0]
    assert neuron.v_seq.flatten().tolist() == approx([0.6, 0.0, 0.52, 0.9752])
    assert neuron.state.w.item() == pytest.approx(0.1816)


@pytest.mark.parametrize(
    ("v_reset", "volts"),
    [
        # hard: V0 after each spike
        (0.0, [0.0, 1.0, 0.0, 1.0]),
        # soft subtracts the effective threshold: t3 V = 1.5 − 1.19 = 0.31,
        # t4 H = 0.31 + (2 − 0.31)/2 = 1.155 < 1.3805
        (None, [0.0, 1.0, 0.31, 1.155]),
    ],
)
def test_alif_threshold_adaptation(v_reset: float | None, volts: list[float]) -> None:
    # tau 2, decay = 1 − 1/20 = 0.95, beta 0.2; X = 2 each step.
    # t1 H = 1.0, th = 1 + 0.2·0 = 1.0 -> S1 (Θ(0)); a1 = 1
    # t2 H = 0 + 2/2 = 1.0, th = 1.2 -> S0 (a plain LIF would fire); a2 = 0.95
    # t3 H = 1 + (2 − 1)/2 = 1.5, th = 1 + 0.2·0.95 = 1.19 -> S1; a3 = 0.9025 + 1 = 1.9025
    # t4 hard: H = 1.0, th = 1 + 0.3805 = 1.3805 -> S0
    s, v = run(N.ALIF(v_reset=v_reset), seq(2.0, 2.0, 2.0, 2.0))
    assert s == [1, 0, 1, 0]
    assert v == approx(volts)


def test_cuba_lif_sequence() -> None:
    # tau_syn 5 (I decays by 0.8), tau_mem 2; X = 1, 0, 0, 1:
    # t1 I 1     H = 0 + (1 − 0)/2 = 0.5
    # t2 I 0.8   H = 0.5 + (0.8 − 0.5)/2 = 0.65
    # t3 I 0.64  H = 0.65 + (0.64 − 0.65)/2 = 0.645
    # t4 I 1.512 H = 0.645 + (1.512 − 0.645)/2 = 1.0785 -> S1 V0
    s, v = run(N.CubaLIF(), seq(1.0, 0.0, 0.0, 1.0))
    assert s == [0, 0, 0, 1]
    assert v == approx([0.5, 0.65, 0.645, 0.0])


def test_li_outputs_membrane() -> None:
    # V = V + (X − V)/2; X = 1, 1, 0, 2: 0.5 | 0.75 | 0.375 | 0.375 + 1.625/2 = 1.1875
    out, v = run(N.LI(), seq(1.0, 1.0, 0.0, 2.0))
    assert out == approx([0.5, 0.75, 0.375, 1.1875])
    assert v == out


@pytest.mark.parametrize(
    ("v_reset", "undetached", "detached"), [(0.0, -1.0, 0.0), (None, 0.0, 1.0)]
)
def test_detach_reset_changes_gradient_through_time(
    v_reset: float | None, undetached: float, detached: float
) -> None:
    # IF, X = 1.0, 0.5. t1 H1 = 1 -> S1 = 1; t2 H2 = V1 + 0.5 = 0.5 -> S2 = 0.
    # dS2/dX1 = g'(H2 − 1) · dV1/dH1 = g'(−0.5) · dV1/dH1 with g'(0) = 1:
    #   hard dV1/dH1 = (1 − S1) − H1 g'(0) = −1 (detached: 1 − S1 = 0)
    #   soft dV1/dH1 = 1 − g'(0) = 0          (detached: 1)
    g = 4 / (1 + math.exp(2)) * (1 - 1 / (1 + math.exp(2)))  # g'(−0.5) = 0.419974
    grads = []
    for detach in (False, True):
        x = seq(1.0, 0.5, grad=True)
        N.IF(v_reset=v_reset, detach_reset=detach)(x)[1].sum().backward()
        grads.append(x.grad[0].item())
    assert grads == pytest.approx([g * undetached, g * detached])


# -- multi-step == single-step -------------------------------------------------------------
NEURON_KWARGS: list[tuple[type[N.BaseNeuron], dict[str, Any]]] = []
for _cls in SPIKING:
    NEURON_KWARGS += [(_cls, {}), (_cls, {"v_reset": None}), (_cls, {"detach_reset": True})]
NEURON_KWARGS += [
    (N.LIF, {"decay_input": False}),
    (N.PLIF, {"decay_input": False, "init_tau": 3.0}),
    (N.ALIF, {"beta": 1.0, "tau_adapt": 3.0}),
    (N.LI, {}),
]


def _ids(item: tuple[type, dict[str, Any]]) -> str:
    cls, kwargs = item
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in kwargs.items())


def _weights(neuron: nn.Module) -> list[torch.Tensor]:
    return [p for p in neuron.parameters() if p.requires_grad]


@pytest.mark.parametrize("case", NEURON_KWARGS, ids=_ids)
def test_multi_step_equals_single_step(case: tuple[type[N.BaseNeuron], dict[str, Any]]) -> None:
    cls, kwargs = case
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(6, 3, 4, generator=gen, dtype=torch.float64) * 1.6).requires_grad_(True)
    readout = torch.randn(6, 3, 4, generator=gen, dtype=torch.float64)

    multi = cls(record_v=True, **kwargs).double()
    out_m = multi(x)
    (gx_m, *gp_m) = torch.autograd.grad((out_m * readout).sum(), [x, *_weights(multi)])

    single = cls(step_mode="s", record_v=True, **kwargs).double()
    out_s = torch.stack([single(x_t) for x_t in x])
    (gx_s, *gp_s) = torch.autograd.grad((out_s * readout).sum(), [x, *_weights(single)])

    if cls is not N.LI:
        assert 0 < out_m.sum() < out_m.numel()  # the inputs exercise both fire and rest
    assert torch.equal(out_m, out_s)
    assert torch.allclose(multi.v_seq, single.v_seq, rtol=0, atol=1e-12)
    assert torch.allclose(gx_m, gx_s, rtol=0, atol=1e-12)
    assert gx_m.abs().sum() > 0
    for a, b in zip(gp_m, gp_s):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert len(gp_m) == (1 if cls is N.PLIF else 0)


# -- gradients against a hand-unrolled autograd computation ------------------------------------
def _spike(u: torch.Tensor) -> torch.Tensor:
    """Θ(u) forward with the Sigmoid(4) surrogate's gradient, written independently."""
    soft = torch.sigmoid(4.0 * u)
    return (u >= 0).to(u.dtype) + (soft - soft.detach())  # exactly Θ(u) in value


def _ref_lif(x: torch.Tensor, k: torch.Tensor | float, v_reset: float | None) -> torch.Tensor:
    """LIF with 1/tau = k, decay_input=True, unrolled; returns spikes [T, ...]."""
    rest = 0.0 if v_reset is None else v_reset
    v, out = torch.full_like(x[0], rest), []
    for x_t in x:
        h = v + (x_t - (v - rest)) * k
        s = _spike(h - 1.0)
        v = h - s if v_reset is None else h * (1 - s) + v_reset * s
        out.append(s)
    return torch.stack(out)


def _ref_alif(x: torch.Tensor) -> torch.Tensor:
    """ALIF (tau 2, decay 0.95, beta 0.2, hard reset 0), unrolled; returns spikes."""
    v, a, out = torch.zeros_like(x[0]), torch.zeros_like(x[0]), []
    for x_t in x:
        h = v + (x_t - v) / 2
        s = _spike(h - (1.0 + 0.2 * a))
        v, a = h * (1 - s), 0.95 * a + s
        out.append(s)
    return torch.stack(out)


def _ref_izhikevich(x: torch.Tensor) -> torch.Tensor:
    """Izhikevich with the default parameters, unrolled; returns spikes."""
    v, w, out = torch.zeros_like(x[0]), torch.zeros_like(x[0]), []
    for x_t in x:
        h = v + (x_t + v * (v - 0.8) - w) / 2
        s = _spike(h - 1.0)
        v, w = h * (1 - s), w + (v - w) / 10 + 0.1 * s
        out.append(s)
    return torch.stack(out)


def _ref_cuba(x: torch.Tensor) -> torch.Tensor:
    """CUBA-LIF (tau_syn 5, tau_mem 2, hard reset 0), unrolled; returns spikes."""
    v, i, out = torch.zeros_like(x[0]), torch.zeros_like(x[0]), []
    for x_t in x:
        i = 0.8 * i + x_t
        h = v + (i - v) / 2
        s = _spike(h - 1.0)
        v = h * (1 - s)
        out.append(s)
    return torch.stack(out)


REFERENCES: dict[str, tuple[Callable[[], N.BaseNeuron], Callable[[torch.Tensor], torch.Tensor]]] = {
    "lif_hard": (lambda: N.LIF(), lambda x: _ref_lif(x, 0.5, 0.0)),
    "lif_soft": (lambda: N.LIF(v_reset=None), lambda x: _ref_lif(x, 0.5, None)),
    "alif": (lambda: N.ALIF(), _ref_alif),
    "izhikevich": (lambda: N.Izhikevich(), _ref_izhikevich),
    "cuba_lif": (lambda: N.CubaLIF(), _ref_cuba),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradient_matches_hand_unrolled_reference(name: str) -> None:
    build, reference = REFERENCES[name]
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(5, 2, 3, generator=gen, dtype=torch.float64) * 1.6).requires_grad_(True)
    readout = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64)
    out = build().double()(x)
    (grad,) = torch.autograd.grad((out * readout).sum(), x)
    ref_out = reference(x)
    (ref_grad,) = torch.autograd.grad((ref_out * readout).sum(), x)
    assert torch.equal(out, ref_out.detach())
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_plif_gradient_reaches_w_and_matches_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(5, 2, 3, generator=gen, dtype=torch.float64) * 1.6).requires_grad_(True)
    readout = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64)
    neuron = N.PLIF(init_tau=3.0).double()
    gx, gw = torch.autograd.grad((neuron(x) * readout).sum(), [x, neuron.w])
    w = neuron.w.detach().clone().requires_grad_(True)
    ref_gx, ref_gw = torch.autograd.grad(
        (_ref_lif(x, torch.sigmoid(w), 0.0) * readout).sum(), [x, w]
    )
    assert gw.abs() > 0
    assert torch.allclose(gx, ref_gx, rtol=1e-10, atol=1e-12)
    assert torch.allclose(gw, ref_gw, rtol=1e-10, atol=1e-12)


def test_li_gradcheck() -> None:
    x = torch.rand(4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(N.LI(tau=3.0), (x,))


def test_supplied_surrogate_sets_the_gradient() -> None:
    # One step of IF at H = 1 (fires): dS/dX = g'(0); Sigmoid(4) gives 1, ATan(2) gives 2/2 = 1,
    # ATan(4) gives 4/2 = 2.
    x = seq(1.0, grad=True)
    N.IF(surrogate=ATan(alpha=4.0))(x).sum().backward()
    assert x.grad.item() == pytest.approx(2.0)


# -- state ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [cls for _, cls in BUILTIN_NEURONS])
def test_no_state_leaks_between_multi_step_calls(cls: type[N.BaseNeuron]) -> None:
    neuron = cls()
    x = torch.rand(5, 2, 3) * 2
    first = neuron(x)
    assert torch.equal(neuron(x), first)
    assert neuron.state is None


def test_reset_net_clears_single_step_state_and_records() -> None:
    neuron = N.LIF(step_mode="s", record_v=True)
    model = nn.Sequential(nn.Identity(), nn.Sequential(neuron))
    x = torch.full((2, 3), 0.6)
    first = [model(x) for _ in range(3)]
    # H = V + (0.6 − V)/2: 0.3 | 0.45 | 0.525 — never fires, state carries over
    assert neuron.state.v[0, 0].item() == pytest.approx(0.525)
    assert neuron.v_seq.shape == (3, 2, 3)
    F.reset_net(model)
    assert neuron.state is None and neuron.v_seq is None
    again = model(x)
    assert torch.equal(again, first[0])
    assert neuron.state.v[0, 0].item() == pytest.approx(0.3)


def test_single_step_state_is_lazily_shaped_like_the_input() -> None:
    neuron = N.CubaLIF(step_mode="s")
    neuron(torch.zeros(2, 5, dtype=torch.float64))
    assert neuron.state.v.shape == (2, 5) and neuron.state.i.dtype == torch.float64
    with pytest.raises(ValueError, match="reset_net"):
        neuron(torch.zeros(3, 5, dtype=torch.float64))


def test_set_step_mode_switches_neurons_and_resets_them() -> None:
    lif, li = N.LIF(), N.LI()
    model = nn.Sequential(nn.Linear(3, 3), lif, nn.Linear(3, 2), li)
    F.set_step_mode(model, "s")
    assert lif.step_mode == "s" and li.step_mode == "s"
    assert model(torch.ones(4, 3)).shape == (4, 2)
    assert lif.state is not None
    F.set_step_mode(model, "m")
    assert lif.state is None
    assert model(torch.ones(5, 4, 3)).shape == (5, 4, 2)
    with pytest.raises(ValueError, match="step_mode must be 'm'"):
        lif.step_mode = "multi"


def test_record_v_is_off_by_default() -> None:
    neuron = N.LIF()
    neuron(torch.rand(3, 2))
    assert neuron.v_seq is None


def test_step_exposes_the_pure_step() -> None:
    neuron = N.ALIF()
    x = torch.rand(4, 2, 3) * 2
    state = neuron.initial_state(x[0])
    outs = []
    for x_t in x:
        out, state = neuron.step(state, x_t)
        outs.append(out)
    assert torch.equal(torch.stack(outs), neuron(x))
    assert N.ALIF.step_fn is F.alif_step
    assert neuron.state is None  # step() is pure: the module keeps nothing


def test_multi_step_rejects_empty_sequence() -> None:
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        N.LIF()(torch.zeros(0, 2))


# -- construction ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", SPIKING)
def test_each_neuron_builds_its_own_default_surrogate(cls: type[N.BaseNeuron]) -> None:
    a, b = cls(), cls()
    assert isinstance(a.surrogate, Sigmoid) and a.surrogate.alpha == 4.0
    assert a.surrogate is not b.surrogate
    given = ATan()
    assert cls(surrogate=given).surrogate is given


def test_li_accepts_and_ignores_a_surrogate() -> None:
    neuron = N.LI(surrogate=Sigmoid())
    assert not any(isinstance(m, Sigmoid) for m in neuron.modules())


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (N.LIF, {"tau": 0.5}, r"tau must be > 1 .*overshoots.*got 0\.5"),
        (N.LIF, {"tau": 1.0}, r"tau must be > 1 .*got 1\.0"),
        (N.PLIF, {"init_tau": 1.0}, r"init_tau must be > 1 .*got 1\.0"),
        (N.QIF, {"tau": 0.9}, r"tau must be > 1"),
        (N.QIF, {"a0": 0.0}, r"a0 must be > 0 .*got 0\.0"),
        (N.QIF, {"v_c": -0.1}, r"v_c must be > v_rest .*v_c=-0\.1, v_rest=0\.0"),
        (N.EIF, {"delta_t": 0.0}, r"delta_t must be > 0 .*got 0\.0"),
        (N.EIF, {"tau": 1.0}, r"tau must be > 1"),
        (N.Izhikevich, {"tau_w": 0.5}, r"tau_w must be > 1 .*got 0\.5"),
        (N.ALIF, {"tau_adapt": 1.0}, r"tau_adapt must be > 1 .*got 1\.0"),
        (N.ALIF, {"beta": -0.1}, r"beta must be >= 0 .*got -0\.1"),
        (N.CubaLIF, {"tau_syn": 0.5}, r"tau_syn must be > 1 .*got 0\.5"),
        (N.CubaLIF, {"tau_mem": 1.0}, r"tau_mem must be > 1 .*got 1\.0"),
        (N.LI, {"tau": 0.5}, r"tau must be > 1 .*got 0\.5"),
        (
            N.IF,
            {"v_threshold": 0.0},
            r"v_threshold must be > v_reset under hard reset.*"
            r"v_threshold=0\.0, v_reset=0\.0",
        ),
        (N.LIF, {"v_threshold": 0.5, "v_reset": 1.0}, r"v_threshold=0\.5, v_reset=1\.0"),
        (N.IF, {"v_threshold": float("nan")}, r"v_threshold must be a finite number"),
        (N.IF, {"step_mode": "x"}, r"step_mode must be 'm' .*got 'x'"),
        (N.LI, {"step_mode": "multi"}, r"step_mode must be 'm' .*got 'multi'"),
    ],
)
def test_invalid_parameters_raise_value_error(
    cls: type[N.BaseNeuron], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_soft_reset_allows_any_threshold() -> None:
    assert N.IF(v_threshold=-1.0, v_reset=None).v_threshold == -1.0


def test_builtin_neurons_table() -> None:
    names = [name for name, _ in BUILTIN_NEURONS]
    assert names == sorted(
        ["if", "lif", "plif", "qif", "eif", "izhikevich", "alif", "cuba_lif", "li"]
    )
    for _, cls in BUILTIN_NEURONS:
        params = list(__import__("inspect").signature(cls).parameters)
        assert params[0] == "surrogate"
        assert params[-2:] == ["step_mode", "record_v"]
        assert cls.__doc__ and "=" in cls.__doc__  # equations and defaults are documented


def test_extra_repr_shows_parameters() -> None:
    text = repr(N.LIF(tau=3.0, v_reset=None))
    assert "tau=3.0" in text and "v_reset=None" in text and "step_mode='m'" in text


def test_arguments_after_surrogate_are_keyword_only() -> None:
    import inspect

    for _, cls in BUILTIN_NEURONS:
        params = list(inspect.signature(cls).parameters.values())
        assert params[0].name == "surrogate"
        assert all(p.kind is p.KEYWORD_ONLY for p in params[1:]), cls
    with pytest.raises(TypeError):
        N.LIF(None, 3.0)  # type: ignore[misc]


@pytest.mark.parametrize("cls", [cls for _, cls in BUILTIN_NEURONS])
def test_step_kwargs_and_repr_are_derived_from_the_signatures(cls: type[N.BaseNeuron]) -> None:
    import inspect

    neuron = cls()
    step_names = [
        p.name
        for p in inspect.signature(cls.step_fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    ]
    assert list(neuron.step_kwargs()) == step_names
    declared = [
        p
        for p in inspect.signature(cls).parameters
        if p not in ("surrogate", "kernel", "step_mode", "record_v")
    ]
    text = neuron.extra_repr()
    assert [field.split("=")[0] for field in text.split(", ")][: len(declared)] == declared
