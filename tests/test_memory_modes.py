"""train.memory modes (issue 16): exact checkpoint gradients, truncated / online gradients
against their equations, 1-bit storage, the saved-tensor meter, the estimate against what is
measured, recipe validation and ``snnkit plan``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from snnkit.assembly.forward import EncodedForward
from snnkit.assembly.memory.estimate import profile
from snnkit.assembly.memory.meter import SavedTensorMeter
from snnkit.assembly.memory.runner import binary_input_layers, fallback_warnings
from snnkit.assembly.memory.segmented import SegmentedForward, SegmentPlan, segment_plan
from snnkit.cli.app import app
from snnkit.components import layers as L
from snnkit.components import neurons as N
from snnkit.errors import RecipeError
from snnkit.kernels.bitpack import (
    binary_conv,
    binary_linear,
    binary_maxpool,
    pack_bits,
    unpack_bits,
)
from snnkit.kernels.cpu.build import cpu_extension
from snnkit.recipes.loader import load_recipe
from snnkit.recipes.sizes import parse_size

BUILT_IN = [N.IF, N.LIF, N.PLIF, N.QIF, N.EIF, N.Izhikevich, N.ALIF, N.CubaLIF, N.LI]
BASE = {
    "seed": 0,
    "time_steps": 4,
    "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 4, 4], "num_classes": 4},
    "encoder": "poisson",
    "model": {
        "name": "sequential",
        "layers": [
            "flatten",
            {"name": "linear", "in_features": 16, "out_features": 32},
            {"name": "lif", "kernel": "reference"},
            {"name": "linear", "in_features": 32, "out_features": 4},
            {"name": "lif", "kernel": "reference"},
        ],
    },
    "loss": "mse_rate",
    "optimizer": {"name": "adam", "lr": 1.0e-2},
    "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
}


class Ramp(nn.Module):
    """Direct input scaled by a ramp over T steps: ``[B, N] -> [T, B, N]``."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(0.5, 1.5, self.steps).view(self.steps, 1, 1)
        return x.unsqueeze(0) * ramp


class Spikes(nn.Module):
    """Fixed {0, 1} input spikes: ``[B, N] -> [T, B, N]`` (Bernoulli with a fixed seed)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        p = torch.sigmoid(x).expand(self.steps, *x.shape)
        return torch.bernoulli(p, generator=g)


def _grads(forward: nn.Module, model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    (forward(x) ** 2).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


def _close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-5) -> bool:
    return all(float((u - v).abs().max()) <= tol * (1 + float(u.abs().max())) for u, v in zip(a, b))


# -- sizes and recipe validation ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8 * 10**9), ("512 MiB", 512 * 2**20), ("1.5KiB", 1536), (4096, 4096), ("7B", 7)],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["8 parsecs", "GB", "-1GB", "0", True])
def test_parse_size_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="size such as 8GB"):
        parse_size(bad)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.memory=chekpoint", "did you mean 'checkpoint'?"),
        ("train.tbptt=5", "train.tbptt must be <= time_steps (4), got 5"),
        ("train.tbptt=0", "train.tbptt must be > 0"),
        ("train.segment_steps=9", "train.segment_steps must be <= time_steps (4)"),
        ("train.memory_budget=8 parsecs", "got '8 parsecs'"),
        ("train.recompute_macs=-1", "train.recompute_macs must be >= 0"),
    ],
)
def test_recipe_refuses(override: str, message: str) -> None:
    with pytest.raises(RecipeError, match=".*") as info:
        load_recipe(BASE, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_online_with_tbptt_is_refused() -> None:
    with pytest.raises(RecipeError, match="cannot be combined with train.memory: online"):
        load_recipe(BASE, ["train.memory=online", "train.tbptt=2"])


def test_segment_plan() -> None:
    assert segment_plan("full", 16, None, None) is None
    assert segment_plan("checkpoint", 16, None, None) == SegmentPlan("checkpoint", 4)
    assert segment_plan("checkpoint", 10, None, 3).bounds(10) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert segment_plan("full", 16, 5, None) == SegmentPlan("tbptt", 5)
    assert segment_plan("full", 16, 16, None) is None  # K = T truncates nothing
    assert segment_plan("online", 16, None, None) == SegmentPlan("online", 1)


# -- 1-bit storage ------------------------------------------------------------------------------
def test_pack_bits_round_trip_and_size() -> None:
    x = (torch.rand(3, 5, 7) > 0.5).float()
    packed = pack_bits(x)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(x.numel() / 8)
    assert torch.equal(unpack_bits(packed, x.shape, x.dtype), x)
    assert pack_bits(torch.tensor([1.0, 0, 1, 1, 0, 0, 0, 1])).item() == 1 + 4 + 8 + 128


def test_binary_layers_have_the_dense_gradients() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(13, 6)
    conv = nn.Conv2d(5, 4, 3, padding=1, stride=2)
    for layer, x, f in (
        (
            lin,
            (torch.rand(4, 3, 13) > 0.5).float(),
            lambda x: binary_linear(x, lin.weight, lin.bias),
        ),
        (conv, (torch.rand(3, 5, 7, 7) > 0.5).float(), lambda x: binary_conv(x, conv)),
    ):
        x.requires_grad_()
        g = torch.randn_like(layer(x))
        want = torch.autograd.grad(layer(x), [x, *layer.parameters()], g)
        got = torch.autograd.grad(f(x), [x, *layer.parameters()], g)
        assert _close(list(want), list(got), 1e-6)
        with SavedTensorMeter(layer.parameters()) as meter:
            f(x)
        assert meter.saved == math.ceil(x.numel() / 8)  # the input as bits, nothing else


def test_binary_maxpool_has_the_dense_gradient_and_saves_bits() -> None:
    torch.manual_seed(0)
    x = (torch.rand(3, 4, 7, 8) > 0.6).float().requires_grad_()  # ties in most windows
    for pool in (nn.MaxPool2d(2), nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)):
        g = torch.randn_like(pool(x))
        (want,) = torch.autograd.grad(pool(x), x, g)
        y = binary_maxpool(x, pool)
        assert torch.equal(y, pool(x))
        (got,) = torch.autograd.grad(y, x, g)
        assert torch.equal(got, want)  # each window's gradient goes to the same element
        with SavedTensorMeter() as meter:
            binary_maxpool(x, pool)
        if pool.kernel_size == 2 and cpu_extension() is not None:
            assert meter.saved == y.numel()  # the C++ 2x2 pool: a one-byte argmax per output
        else:
            assert meter.saved == math.ceil(x.numel() / 8)  # bits, the pool recomputed


def test_binary_input_layers_follow_spiking_neurons() -> None:
    model = nn.Sequential(
        L.Conv2d(1, 4, 3), N.LIF(), L.MaxPool2d(2), L.Conv2d(4, 4, 3), L.BatchNorm2d(4),
        N.LIF(), L.Flatten(), L.Dropout(0.5), L.Linear(4, 4), N.LI(),
    )  # fmt: skip
    # the pool after a neuron and the conv after it, not the first conv, not after dropout
    assert binary_input_layers(model) == ["2", "3"]


# -- gradients ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
@pytest.mark.parametrize("length", [1, 3, 7])
def test_checkpoint_gradients_equal_full(cls: type, length: int) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(L.Linear(6, 16), cls(), L.Linear(16, 4), N.LI())
    x = torch.randn(5, 6) * 2
    full = _grads(EncodedForward.dense(Ramp(7), model), model, x)
    seg = _grads(SegmentedForward(Ramp(7), model, SegmentPlan("checkpoint", length)), model, x)
    assert _close(full, seg)


def test_checkpoint_keeps_dropout_and_shift_draws() -> None:
    """Per-sequence random draws are made once, as the multi-step layers make them, so the same
    RNG state gives the same masks and the same gradients as full."""
    torch.manual_seed(0)
    model = nn.Sequential(
        L.RandomShift(1), L.Conv2d(1, 4, 3, padding=1), N.LIF(), L.Flatten(), L.Dropout(0.3),
        L.Linear(64, 3), N.LIF(),
    )  # fmt: skip
    x = torch.rand(6, 1, 4, 4) * 3

    class Direct(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(0).expand(6, *x.shape)

    full = _grads(EncodedForward.dense(Direct(), model), model, x)
    seg = _grads(SegmentedForward(Direct(), model, SegmentPlan("checkpoint", 2)), model, x)
    assert _close(full, seg)


def _truncated_reference(model: nn.Sequential, seq: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Gradients of ``(out ** 2).sum()`` with every neuron's state detached every k steps: the
    reference loop of the truncated-BPTT equation."""
    neurons = [m for m in model if isinstance(m, N.BaseNeuron)]
    states: dict[int, object] = {}
    outs = []
    for t in range(seq.shape[0]):
        h = seq[t]
        for m in model:
            if isinstance(m, N.BaseNeuron):
                st = states.get(id(m))
                if st is None:
                    st = m.initial_state(h)
                elif t % k == 0:
                    st = type(st)(*(v.detach() for v in st))
                h, states[id(m)] = m.step(st, h)
            else:
                h = m(h.unsqueeze(0)).squeeze(0)
        outs.append(h)
    model.zero_grad(set_to_none=True)
    (torch.stack(outs) ** 2).sum().backward()
    assert neurons
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize(("mode", "k"), [("tbptt", 3), ("online", 1)])
def test_truncated_gradients_match_their_equation(mode: str, k: int) -> None:
    torch.manual_seed(2)
    model = nn.Sequential(
        L.Linear(6, 16), N.ALIF(), L.Linear(16, 8), N.PLIF(), L.Linear(8, 4), N.LI()
    )
    x = torch.randn(5, 6) * 2
    want = _truncated_reference(model, Ramp(8)(x), k)
    got = _grads(SegmentedForward(Ramp(8), model, SegmentPlan(mode, k)), model, x)
    assert _close(want, got)
    full = _grads(EncodedForward.dense(Ramp(8), model), model, x)
    assert not _close(full, got)  # a different gradient, as documented


def test_eval_and_no_grad_use_the_dense_path() -> None:
    model = nn.Sequential(L.Linear(6, 4), N.LIF())
    seg = SegmentedForward(Ramp(4), model, SegmentPlan("checkpoint", 2))
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert torch.equal(seg(x), EncodedForward.dense(Ramp(4), model)(x))


# -- memory -------------------------------------------------------------------------------------
def _peak(forward: nn.Module, model: nn.Module, x: torch.Tensor) -> int:
    with SavedTensorMeter(model.parameters()) as meter:
        (forward(x) ** 2).sum().backward()
    model.zero_grad(set_to_none=True)
    assert meter.current == 0  # every saved tensor released after backward
    return meter.peak


def test_online_memory_is_flat_in_t() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(L.Linear(16, 256), N.LIF(), L.Linear(256, 256), N.LIF(), L.Linear(256, 4))
    x = torch.randn(8, 16)
    peaks = {
        t: _peak(SegmentedForward(Spikes(t), model, SegmentPlan("online", 1)), model, x)
        for t in (4, 64)
    }
    full = {t: _peak(EncodedForward.dense(Spikes(t), model), model, x) for t in (4, 64)}
    assert full[64] > 10 * full[4]
    stored_input = 64 * 8 * 16 / 8  # the input sequence, as bits
    assert peaks[64] - stored_input < 1.1 * peaks[4]


@pytest.mark.parametrize("steps", [8, 16])
def test_estimate_matches_measured(steps: int) -> None:
    """The estimate from two steps of two samples is within ±25 % of the saved bytes counted
    on a real batch, in every mode."""
    torch.manual_seed(0)
    model = nn.Sequential(
        L.Conv2d(1, 8, 3, padding=1), L.BatchNorm2d(8), N.LIF(kernel="reference"), L.MaxPool2d(2),
        L.Flatten(), L.Linear(8 * 16, 32), N.LIF(), L.Linear(32, 4), N.LI(),
    )  # fmt: skip

    class Direct(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(0).expand(steps, *x.shape).contiguous()

    batch = 16
    x = torch.rand(batch, 1, 8, 8)
    est = profile(model, Direct()(x[:2])[:2], time_steps=steps, batch=batch, tbptt=3)
    for mode, plan in (
        ("full", None),
        ("checkpoint", SegmentPlan("checkpoint", est.segment)),
        ("tbptt", SegmentPlan("tbptt", 3)),
        ("online", SegmentPlan("online", 1)),
    ):
        fwd = (
            EncodedForward.dense(Direct(), model)
            if plan is None
            else SegmentedForward(Direct(), model, plan)
        )
        measured = _peak(fwd, model, x)
        assert abs(est.activations(mode) - measured) <= 0.25 * measured, mode


def test_estimate_of_full_follows_the_fast_path() -> None:
    """With the forward module ``full`` trains with (here a per-sample prefix run once and a
    fused neuron on the repeated step), the estimate of ``full`` is within ±25 % of what that
    module keeps, which is less than the plain pass keeps."""
    from snnkit.assembly.fast_input import build_forward
    from snnkit.components.encoders import DirectEncoder

    if cpu_extension() is None:
        pytest.skip("the C++ kernels are not available")
    torch.manual_seed(0)
    model = nn.Sequential(
        L.Conv2d(1, 8, 3, padding=1), L.BatchNorm2d(8), N.LIF(), L.MaxPool2d(2),
        L.Conv2d(8, 8, 3, padding=1), L.BatchNorm2d(8), N.LIF(), L.MaxPool2d(2),
        L.Flatten(), L.Linear(8 * 4, 4), N.LI(),
    ).train()  # fmt: skip
    steps, batch = 6, 16
    x = torch.rand(batch, 1, 8, 8)
    encoder = DirectEncoder(steps)
    fast = build_forward(encoder, model, fast_input=True)
    assert type(fast).__name__ == "DirectInput"
    plain = profile(model, encoder(x[:2])[:2], time_steps=steps, batch=batch)
    est = profile(model, encoder(x[:2])[:2], time_steps=steps, batch=batch, full=(fast, x[:2]))
    measured = _peak(fast, model, x)
    assert abs(est.activations("full") - measured) <= 0.25 * measured
    assert plain.activations("full") > 1.25 * measured  # the plain pass would overestimate
    assert est.layers == plain.layers  # the rows: the layers one by one


def test_fallback_warning_names_the_layer() -> None:
    model = nn.Sequential(L.Linear(4, 4), N.LIF(kernel="reference"), L.BatchNorm1d(4), N.LI())
    lines = fallback_warnings(model, "checkpoint")  # kernel: reference is no fallback
    assert len(lines) == 2 and lines[0].startswith("layer 3 (LI): it has no fused kernel")
    assert lines[1].startswith("layer 2 (BatchNorm1d)")


# -- recipes, engine and the plan command -----------------------------------------------------
def test_plan_command_and_auto(tmp_path: object) -> None:
    import yaml

    path = tmp_path / "r.yaml"  # type: ignore[operator]
    path.write_text(yaml.safe_dump(BASE))
    runner = CliRunner()
    res = runner.invoke(app, ["plan", str(path), "--no-time"])
    assert res.exit_code == 0, res.output
    for word in ("full", "checkpoint", "online", "parameters + gradients + optimizer state"):
        assert word in res.output
    res = runner.invoke(app, ["plan", str(path), "--set", "train.memory_budget=1kB", "--no-time"])
    assert res.exit_code == 2
    assert "more than train.memory_budget" in res.output and res.output.count("\n") == 1


def test_auto_picks_the_fastest_mode_that_fits() -> None:
    from snnkit.assembly.assemble import assemble
    from snnkit.plugins.loader import get_registry

    exp = assemble(
        load_recipe(BASE, ["train.memory=auto", "train.memory_budget=1GB"]), get_registry()
    )
    assert exp.memory == "full"
    est = exp.estimate
    assert est is not None
    budget = int(est.total("checkpoint") + 1)
    assert est.total("full") > budget  # the model is big enough in T for checkpoint to matter
    exp = assemble(
        load_recipe(BASE, ["train.memory=auto", f"train.memory_budget={budget}"]), get_registry()
    )
    assert exp.memory == "checkpoint" and isinstance(exp.forward_module, SegmentedForward)


def test_training_in_checkpoint_mode(tmp_path: object) -> None:
    from snnkit.engine.run import run

    result = run(
        BASE,
        ["train.memory=checkpoint", f"output.dir={tmp_path}", "output.tensorboard=false"],
    )
    assert math.isfinite(result.metrics[0]["train_loss"])
