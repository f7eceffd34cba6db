"""Memory modes with the fused CPU kernels run from a given state (issue 16): checkpoint
gradients equal full on every fused neuron and the recurrent layer with the fused path taken,
the initial-state gradient by hand, the stateless kernel unchanged, and the visible fallback."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from snnkit.assembly.forward import EncodedForward
from snnkit.assembly.memory.runner import fallback_warnings
from snnkit.assembly.memory.segmented import SegmentedForward, SegmentPlan, segment_plan
from snnkit.components import layers as L
from snnkit.components import neurons as N
from snnkit.components import surrogates as S
from snnkit.components.recurrent import Recurrent
from snnkit.kernels.cpu.build import cpu_extension

pytestmark = pytest.mark.skipif(cpu_extension() is None, reason="no C++ build on this machine")


class Ramp(nn.Module):
    """Direct input scaled by a ramp over T steps: ``[B, N] -> [T, B, N]``."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        ramp = torch.linspace(0.5, 1.5, self.steps).view(self.steps, 1, 1)
        return x.unsqueeze(0) * ramp


def _grads(forward: nn.Module, model: nn.Module, x: Tensor) -> list[Tensor]:
    model.zero_grad(set_to_none=True)
    (forward(x) ** 2).sum().backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _assert_close(full: list[Tensor], seg: list[Tensor]) -> None:
    assert len(full) == len(seg) and full
    for u, v in zip(full, seg, strict=True):
        assert float(u.abs().max()) > 0  # a gradient that can differ
        assert float((u - v).abs().max()) <= 1e-5 * (1 + float(u.abs().max()))


def _checkpoint_vs_full(model: nn.Module, steps: int, length: int) -> dict[str, str]:
    """Assert equal gradients; return which kernel ran each stateful layer's segments."""
    torch.manual_seed(0)
    x = torch.randn(5, 6) * 4
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(2)  # every layer fires: no parameter has a zero gradient
                layer.bias.add_(1.2)
    full = _grads(EncodedForward.dense(Ramp(steps), model), model, x)
    fwd = SegmentedForward(Ramp(steps), model, SegmentPlan("checkpoint", length))
    _assert_close(full, _grads(fwd, model, x))
    return fwd.runner.kernels


NEURONS = [
    lambda: N.IF(),
    lambda: N.IF(v_reset=None, surrogate=S.ATan()),
    lambda: N.LIF(tau=3.0, detach_reset=True),
    lambda: N.LIF(tau=4.0, decay_input=False, surrogate=S.PiecewiseQuadratic()),
    lambda: N.LIF(v_reset=None, surrogate=S.Erf()),
    lambda: N.PLIF(init_tau=3.0),
    lambda: N.PLIF(decay_input=False, v_reset=None, surrogate=S.SuperSpike()),
]


@pytest.mark.parametrize("make", NEURONS, ids=lambda f: repr(f()))
@pytest.mark.parametrize("length", [1, 3, 7])
def test_fused_checkpoint_equals_full(make: object, length: int) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(L.Linear(6, 16), make(), L.Linear(16, 8), make(), L.Linear(8, 4), N.LI())  # type: ignore[operator]
    kernels = _checkpoint_vs_full(model, 7, length)
    assert kernels["1"] == kernels["3"] == "cpp"  # the fused path ran
    assert kernels["5"] == "reference"  # LI has no fused form


class GenericSigmoid(S.Sigmoid):
    """A sigmoid whose g' the kernel cannot compile in (GENERIC: evaluated in PyTorch)."""

    def derivative(self, x: Tensor) -> Tensor:
        return super().derivative(x) * 1.0


def test_fused_checkpoint_generic_surrogate() -> None:
    model = nn.Sequential(
        L.Linear(6, 16), N.PLIF(surrogate=GenericSigmoid()), L.Linear(16, 4), N.LI()
    )
    assert _checkpoint_vs_full(model, 9, 4)["1"] == "cpp"


class LearnableSigmoid(S.Surrogate):
    """Θ forward, sigmoid surrogate with a learned sharpness: the gradient reaches ``alpha``
    (its own forward: no fused form, so the reference path runs it)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(3.0))

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def forward(self, x: Tensor) -> Tensor:
        g = self.primitive(x)
        return S.heaviside(x).detach() + (g - g.detach())  # exactly {0, 1}


def test_learnable_surrogate_falls_back_visibly_with_equal_gradients() -> None:
    model = nn.Sequential(
        L.Linear(6, 16), N.LIF(surrogate=LearnableSigmoid()), L.Linear(16, 4), N.LI()
    )
    kernels = _checkpoint_vs_full(model, 8, 3)
    assert kernels["1"] == "reference"
    assert model[1].surrogate.alpha.grad is not None and float(model[1].surrogate.alpha.grad) != 0
    lines = fallback_warnings(model, "checkpoint")
    assert lines[0].startswith("layer 1 (LIF): it has no fused kernel")
    assert len(lines) == 2 and lines[1].startswith("layer 3 (LI)")


@pytest.mark.parametrize("mode", ["all_to_all", "one_to_one"])
@pytest.mark.parametrize("neuron", [N.LIF, N.PLIF, N.IF])
def test_fused_recurrent_checkpoint_equals_full(mode: str, neuron: type) -> None:
    torch.manual_seed(2)
    model = nn.Sequential(
        L.Linear(6, 16), Recurrent(16, neuron(), mode=mode), L.Linear(16, 4), N.LI()
    )
    with torch.no_grad():
        model[1].weight.mul_(3)  # strong recurrence: the S(t−1) path matters
    for length in (1, 4):
        assert _checkpoint_vs_full(model, 9, length)["1"] == "cpp"
    assert fallback_warnings(model[:2], "checkpoint") == []


def test_recurrent_without_fused_form_runs_its_step_loop() -> None:
    model = nn.Sequential(L.Linear(6, 16), Recurrent(16, N.ALIF()), L.Linear(16, 4), N.LI())
    assert _checkpoint_vs_full(model, 9, 4)["1"] == "reference"
    lines = fallback_warnings(model, "checkpoint")
    assert lines[0].startswith("layer 1 (Recurrent): it has no fused kernel")


def test_stateless_kernel_unchanged_and_state_v0_is_the_same() -> None:
    """No state: the kernel is the stateless one; a state filled with v0 gives the same bits."""
    from snnkit.kernels.cpu.neuron import cpp_multi_step, cpp_segment

    ext = cpu_extension()
    torch.manual_seed(3)
    x = torch.randn(6, 4, 33) * 2
    for neuron in (N.LIF(), N.IF(v_reset=None), N.PLIF(v_reset=-0.5)):
        form = neuron.kernel_form()
        plain, _ = cpp_multi_step(form, ext, x, False)
        v0 = neuron.initial_state(x[0])[0]
        out, v_end = cpp_segment(form, ext, x, v0)
        assert torch.equal(out, plain)
        state = neuron.initial_state(x[0])
        for step in x:
            _, state = neuron.step(state, step)
        assert torch.equal(v_end, state[0])


def _sig_grad(d: float, alpha: float = 4.0) -> float:
    s = 1.0 / (1.0 + math.exp(-alpha * d))
    return alpha * s * (1.0 - s)


def test_initial_state_gradient_by_hand() -> None:
    """One LIF neuron (tau 2, hard reset to 0, V_th 1, sigmoid α = 4), 3 steps from V(−1) = 0.6,
    x = (0.2, 0.4, 0.0): H = (V + x) / 2 stays below threshold (0.4, 0.4, 0.2), so V = H.
    L = Σ_t c_t S(t) + V(2) with c = (1, 2, 3). Backward (hard reset, S = 0):
    gS(t) = c_t − gV(t) H(t);  gH(t) = gS(t) g'(H(t) − 1) + gV(t);  gV(t−1) = gH(t) / 2,
    from gV(2) = 1; dL/dV(−1) = gV(−1) and dL/dx(t) = gH(t) / 2."""
    from snnkit.kernels.cpu.neuron import cpp_segment

    neuron = N.LIF(tau=2.0, surrogate=S.Sigmoid(alpha=4.0))
    x = torch.tensor([[0.2], [0.4], [0.0]], requires_grad=True)
    v0 = torch.tensor([0.6], requires_grad=True)
    out, v_end = cpp_segment(neuron.kernel_form(), cpu_extension(), x, v0)
    c = torch.tensor([[1.0], [2.0], [3.0]])
    ((out * c).sum() + v_end.sum()).backward()
    h = [0.4, 0.4, 0.2]
    g_v, g_x = 1.0, [0.0, 0.0, 0.0]
    for t in (2, 1, 0):
        g_h = ((t + 1) - g_v * h[t]) * _sig_grad(h[t] - 1.0) + g_v
        g_x[t] = g_h / 2
        g_v = g_h / 2
    assert torch.equal(out.detach(), torch.zeros(3, 1))
    assert math.isclose(float(v_end), 0.2, rel_tol=1e-6)
    assert math.isclose(float(v0.grad), g_v, rel_tol=1e-6)
    assert torch.allclose(x.grad.flatten(), torch.tensor(g_x), rtol=1e-6)


def test_recurrent_checkpoint_keeps_only_the_boundary_state() -> None:
    """The handed-over S(T−1) is its own tensor, not a view keeping a segment's spikes alive:
    checkpoint saves far less than full (here the estimate's terms: the input, 7 boundary
    states and one segment)."""
    from snnkit.assembly.memory.meter import SavedTensorMeter

    torch.manual_seed(4)
    model = nn.Sequential(L.Linear(6, 64), Recurrent(64, N.LIF()), L.Linear(64, 4), N.LI())
    x = torch.randn(8, 6)
    peaks = {}
    for name, fwd in (
        ("full", EncodedForward.dense(Ramp(64), model)),
        ("checkpoint", SegmentedForward(Ramp(64), model, SegmentPlan("checkpoint", 8))),
    ):
        with SavedTensorMeter(model.parameters()) as meter:
            (fwd(x) ** 2).sum().backward()
        peaks[name] = meter.peak
    assert peaks["checkpoint"] < peaks["full"] / 3


# -- batch norm + neuron: only the batch norm's input is kept ----------------------------------
class ImageRamp(nn.Module):
    """Direct input scaled by a ramp over T steps: ``[B, C, H, W] -> [T, B, C, H, W]``."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0) * torch.linspace(0.5, 1.5, self.steps).view(-1, 1, 1, 1, 1)


def _bn_mlp() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        L.Linear(6, 8),
        L.BatchNorm1d(8),
        N.LIF(S.ATan(alpha=2.0), tau=2.0, detach_reset=True),
        L.Linear(8, 4),
        L.BatchNorm1d(4),
        N.IF(S.Sigmoid(alpha=4.0), v_reset=None),
    )


def _bn_convnet() -> nn.Sequential:
    """conv (2 -> 6 channels, not spikes: joins the pair) - BN - LIF - conv on spikes - BN -
    LIF (a pair without its conv) - flatten - linear."""
    torch.manual_seed(4)
    return nn.Sequential(
        L.Conv2d(2, 6, 3, padding=1),
        L.BatchNorm2d(6),
        N.LIF(S.ATan(alpha=2.0), tau=2.0, detach_reset=True),
        L.Conv2d(6, 4, 3, padding=1, bias=False),
        L.BatchNorm2d(4),
        N.LIF(S.Sigmoid(alpha=4.0), tau=3.0),
        L.Flatten(),
        L.Linear(4 * 5 * 5, 3),
    )


def _bn_convnet_same() -> nn.Sequential:
    """:func:`_bn_convnet` with a reflect-padded first convolution (it stays apart from its
    pair: the pair's convolution backward pads with zeros only) and a batch norm without
    affine parameters."""
    torch.manual_seed(4)
    first = L.Conv2d(2, 6, 3, padding=1)
    first.padding_mode = "reflect"
    return nn.Sequential(
        first,
        L.BatchNorm2d(6),
        N.LIF(S.ATan(alpha=2.0), tau=2.0, detach_reset=True),
        L.Conv2d(6, 4, 3, padding=1, bias=False),
        L.BatchNorm2d(4, affine=False),
        N.LIF(S.Sigmoid(alpha=4.0), tau=3.0),
        L.Flatten(),
        L.Linear(4 * 5 * 5, 3),
    )


@pytest.mark.parametrize("net", ["mlp", "conv", "conv_same"])
@pytest.mark.parametrize("length", [12, 4, 1])
def test_batchnorm_neuron_pair_has_the_two_layers_gradients(
    net: str, length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pair (only the BN input kept, or the first conv's input; BN and that conv recomputed
    in backward) gives the gradients, spikes and running statistics of the layers run apart in
    the same segments (L = T: those of full), and keeps less."""
    from snnkit.assembly.memory import runner
    from snnkit.assembly.memory.meter import SavedTensorMeter

    steps = 12
    make, encoder = {
        "mlp": (_bn_mlp, Ramp),
        "conv": (_bn_convnet, ImageRamp),
        "conv_same": (_bn_convnet_same, ImageRamp),
    }[net]
    x = torch.randn(5, 6) * 4 if net == "mlp" else torch.randn(5, 2, 5, 5) * 2

    def run(pairs: bool) -> tuple[list[Tensor], Tensor, list[Tensor], int, dict[str, str]]:
        model = make().train()
        if not pairs:
            monkeypatch.setattr(runner, "norm_neuron_pairs", lambda *args: {})
        fwd = SegmentedForward(encoder(steps), model, SegmentPlan("checkpoint", length))
        with SavedTensorMeter() as meter:
            out = fwd(x)
            (out**2).sum().backward()
        monkeypatch.undo()
        grads = [p.grad.clone() for p in model.parameters()]
        stats = [b.clone() for b in model.buffers()]
        return grads, out.detach(), stats, meter.peak, dict(fwd.runner.kernels)

    paired, apart = run(True), run(False)
    assert torch.equal(paired[1], apart[1])  # same spikes
    _assert_close(apart[0], paired[0])
    for u, v in zip(apart[2], paired[2], strict=True):
        assert torch.equal(u, v)  # running statistics updated once, as apart
    assert paired[3] < apart[3]
    assert set(paired[4].values()) == {"cpp"}
    if length == steps:  # one segment: full's batch statistics, so full's gradients
        model = make().train()
        _assert_close(_grads(EncodedForward.dense(encoder(steps), model), model, x), paired[0])


def test_batchnorm_pairs_take_the_convolutions_cheap_to_recompute() -> None:
    from snnkit.assembly.memory.norm_neuron import RECOMPUTE_MACS, norm_neuron_pairs
    from snnkit.assembly.memory.runner import binary_input_layers

    model = _bn_convnet()
    pairs = norm_neuron_pairs(model, binary_input_layers(model))
    assert {name: conv is not None for name, (_, _, _, conv) in pairs.items()} == {
        "2": True,  # conv 0: 2 channels of direct input in, 6 out
        "5": True,  # conv 3 takes spikes: 6 · 3 · 3 = 54 multiply-adds per value it would keep
    }
    wide = RECOMPUTE_MACS // 9 + 1  # one channel more than the limit allows at 3×3
    model = nn.Sequential(
        L.Conv2d(2, wide, 3, padding=1),
        L.BatchNorm2d(wide),
        N.LIF(),
        L.Conv2d(wide, wide, 3, padding=1),  # spikes in, but too costly to recompute
        L.BatchNorm2d(wide),
        N.LIF(),
        L.Conv2d(wide, 4, 1),  # spikes in, 1×1: cheap
        L.BatchNorm2d(4),
        N.LIF(),
        L.Conv2d(4, 2, 3, padding=1),  # not spikes (after a ReLU) and fewer outputs: apart
        L.BatchNorm2d(2),
        N.LIF(),
    )
    model.insert(9, nn.ReLU())
    pairs = norm_neuron_pairs(model, binary_input_layers(model))
    assert {name: conv is not None for name, (_, _, _, conv) in pairs.items()} == {
        "2": True,
        "5": False,
        "8": True,
        "12": False,
    }


def test_recompute_macs_sets_which_convolutions_join() -> None:
    """``train.recompute_macs`` reaches the runner of the built forward module: 0 joins no
    convolution on spikes, 54 (= 6 · 3 · 3) joins the one of :func:`_bn_convnet`; the first
    convolution (direct input) joins by its own rule either way. Its default is the module's."""
    from snnkit.assembly.memory.norm_neuron import RECOMPUTE_MACS
    from snnkit.recipes.loader import TrainSettings

    assert TrainSettings().recompute_macs == RECOMPUTE_MACS
    joined = {}
    for limit in (0, 53, 54):
        plan = segment_plan("checkpoint", 12, None, 4, limit)
        assert plan is not None
        fwd = SegmentedForward(ImageRamp(12), _bn_convnet().train(), plan)
        joined[limit] = {n: c is not None for n, (_, _, _, c) in fwd.runner.norm_pairs.items()}
    assert joined == {
        0: {"2": True, "5": False},
        53: {"2": True, "5": False},
        54: {"2": True, "5": True},
    }


def test_spike_convolution_in_its_pair_keeps_bits() -> None:
    """A convolution on spikes joined to its pair keeps its input as bits and no float32
    output: the pair conv - BN - LIF saves n/8 bytes of input and the start V (none here), with
    the gradients of the layers run apart."""
    from snnkit.assembly.memory.meter import SavedTensorMeter
    from snnkit.assembly.memory.runner import SegmentRunner
    from snnkit.components.functional import reset_net

    torch.manual_seed(0)
    model = nn.Sequential(
        N.IF(),  # spikes from the input
        L.Conv2d(4, 8, 3, padding=1, bias=False),
        L.BatchNorm2d(8),
        N.LIF(),
    ).train()
    runner = SegmentRunner(model)
    seq = (torch.rand(6, 3, 4, 5, 5) * 2).requires_grad_()
    params = list(model.parameters())
    with SavedTensorMeter([*params, seq]) as meter:
        out, _ = runner.run(seq, {})
    assert runner.kernels == {"0": "cpp", "3": "cpp"}
    # The IF keeps its input, the sequence itself (not counted); the conv - BN - LIF only bits.
    assert meter.saved == seq.numel() // 8
    g = torch.randn_like(out)
    out.backward(g)
    paired = [seq.grad.clone(), *(p.grad.clone() for p in params)]
    seq.grad = None
    model.zero_grad()
    reset_net(model)
    model(seq).backward(g)  # the layers as full runs them
    _assert_close([seq.grad, *(p.grad for p in params)], paired)
