"""Counting the topology layers: recurrent feedback, spiking self-attention, dcls_delay, the event
input layer, merging counts of several processes — against hand-counted values."""

from __future__ import annotations

import pytest
import torch
from test_counting import Fire
from torch import nn

from snnkit.components import neurons as N
from snnkit.components.delays import DCLSDelay
from snnkit.components.recurrent import Recurrent
from snnkit.components.zoo.spikformer import SSA
from snnkit.costs.counting import CostCounter
from snnkit.kernels.bitpack import popcount


class Const(nn.Module):
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


# IF neurons (V += X, fire at V >= 1, reset to 0) with zero feedback weights: input 1 fires at
# once, so the spikes are the input: S = [[1, 0], [1, 1], [0, 1]] over T = 3 (B = 1, N = 2).
X = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 1.0]]])


def silent_feedback(mode: str, step_mode: str = "m") -> Recurrent:
    layer = Recurrent(2, N.IF(), mode=mode, step_mode=step_mode)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    return layer


@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize(("mode", "sops"), [("all_to_all", 6), ("one_to_one", 3)])
def test_recurrent_feedback_sops_by_hand(mode: str, sops: int, step_mode: str) -> None:
    # S(t-1) reaches W_rec at steps 1 and 2: spikes of steps 0 and 1 = 1 + 2 = 3; the 2 spikes
    # of the last step reach nothing. all_to_all: each reaches N = 2 synapses -> 6; one_to_one: 3.
    model = nn.Sequential(silent_feedback(mode, step_mode))
    with CostCounter(model) as counter:
        if step_mode == "m":
            out = model(X)
        else:
            out = torch.stack([model(x) for x in X])
        counter.add_samples(1)
    assert torch.equal(out, X)
    (row,) = counter.report().layers
    assert (row.layer, row.sops, row.macs) == ("model.layers[0] recurrent", sops, 0)
    assert row.rate == pytest.approx(4 / 6) and row.silent == 0.0
    assert row.params == (4 if mode == "all_to_all" else 2) + 2


def test_recurrent_single_step_feedback_restarts_with_each_sequence() -> None:
    layer = silent_feedback("all_to_all", "s")
    model = nn.Sequential(layer)
    with CostCounter(model) as counter:
        for _ in range(2):  # two sequences; reset between them: S(0) = 0 again
            for x in X:
                model(x)
            layer.reset()
    assert counter.report().layers[0].sops == 12


def test_spiking_self_attention_counts_qk_pairs_and_v_spikes() -> None:
    # Q = [[1,0],[1,1]], K = [[0,1],[1,1]], V = [[1,0],[0,0]] (tokens x channels), T = B = 1.
    # Q K^T: pairs of spikes sharing a channel: channel 0: 2 · 1, channel 1: 1 · 2 -> 4
    # (S = [[0, 1], [1, 2]], sum 4). (Q K^T) V: 1 spike of V reaches N = 2 outputs -> 2.
    q = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(1, 1, 2, 2)
    k = torch.tensor([[0.0, 1.0], [1.0, 1.0]]).view(1, 1, 2, 2)
    v = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    for heads in (1, 2):
        ssa = SSA(lambda spec, at: Fire(), "attn", dim=2, heads=heads, neuron="lif")
        ssa.q, ssa.k, ssa.v = Const(q), Const(k), Const(v)
        model = nn.Sequential(ssa).eval()
        with CostCounter(model) as counter:
            model(torch.zeros(1, 1, 2, 2))
        rows = {r.layer: r for r in counter.report().layers}
        assert rows["model.layers[0] ssa"].sops == 6


def test_dcls_delay_counts_one_accumulate_per_synapse() -> None:
    layer = DCLSDelay(3, 4, max_delay=2)
    x = torch.zeros(5, 2, 3)
    x[0, 0, 1] = x[3, 1, 2] = x[4, 0, 0] = 1.0  # 3 spikes x 4 outputs
    with CostCounter(nn.Sequential(layer)) as counter:
        layer(x)
    assert counter.report().layers[0].sops == 12


def test_popcount_counts_set_bits() -> None:
    words = torch.tensor([[0, 1, 3], [-1, 2**40 + 7, 5]], dtype=torch.int64)
    assert int(popcount(words)) == 0 + 1 + 2 + 64 + 4 + 2


def test_event_input_layer_is_counted_without_dense_spikes() -> None:
    from snnkit.kernels.cpu.build import cpu_extension
    from snnkit.kernels.event_linear import event_linear_counted
    from snnkit.kernels.random_stream import poisson_spikes

    ext = cpu_extension()
    if ext is None:
        pytest.skip("the C++ extension cannot be built here")
    x = torch.randint(0, 256, (5, 30), dtype=torch.uint8)
    w = torch.randn(4, 30)
    for steps in (3, 64, 100):  # T < 64, a full word, a partial second word
        out, spikes = event_linear_counted(x, w, None, steps, ext, seed=11)
        dense = poisson_spikes(x, steps, 11)
        assert int(spikes) == int(dense.sum())
        torch.testing.assert_close(out, dense @ w.T)


def test_fast_input_model_keeps_its_event_path_and_counts() -> None:
    from snnkit.assembly import fast_input as fi
    from snnkit.components.encoders import PoissonEncoder
    from snnkit.components.layers import Flatten, Linear
    from snnkit.kernels.random_stream import draw_seed, poisson_spikes

    model = nn.Sequential(Flatten(), Linear(12, 3, bias=False), Fire())
    forward = fi.fast_input_module(PoissonEncoder(time_steps=4), model)
    if forward is None:
        pytest.skip("the C++ extension cannot be built here")
    x = torch.randint(0, 256, (2, 1, 3, 4), dtype=torch.uint8)
    torch.manual_seed(5)
    with torch.no_grad(), CostCounter(model) as counter:
        out = forward(x)
    torch.manual_seed(5)  # the event layer's draws: the seed it took, then the random stream
    spikes = poisson_spikes(x.reshape(2, -1), 4, draw_seed("cpu"))
    torch.testing.assert_close(out, spikes @ model[1].weight.detach().T)  # the event path ran
    rows = {r.layer: r for r in counter.report().layers}
    assert rows["model.layers[1] linear"].sops == int(spikes.sum()) * 3
    assert rows["model.layers[1] linear"].shape == [3]


def test_merge_sums_the_counts_of_processes() -> None:
    model = nn.Sequential(nn.Linear(4, 5, bias=False), Fire())
    x = torch.tensor([[[1.0, 0, 1, 0]], [[0, 0, 0, 1]]])  # 3 spikes -> 15 SOPs
    with CostCounter(model) as counter:
        model(x)
        counter.add_samples(1)
    counter.merge(lambda flat: flat.mul_(2))  # two processes with the same counts
    report = counter.report()
    assert (report.samples, report.layers[0].sops) == (2, 30)
    assert report.totals["sops_per_sample"] == 15


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sew_resnet", {"depth": 18, "width": 2, "connect": "add"}),
        ("spiking_vgg", {"depth": 11, "width": 2}),
        ("spikformer", {"depth": 1, "dim": 16, "heads": 2}),
    ],
)
def test_zoo_models_count_every_synapse_and_neuron_that_runs(name: str, params: dict) -> None:
    from snnkit.assembly.assemble import make_builder
    from snnkit.plugins.loader import get_registry
    from snnkit.plugins.registry import Kind

    registry = get_registry()
    spec = {"name": name, "num_classes": 5, **params}
    model = registry.build(Kind.MODEL, spec, at="model", build=make_builder(registry)).eval()
    torch.manual_seed(0)
    with torch.no_grad(), CostCounter(model) as counter:
        model(torch.rand(2, 1, 3, 32, 32) * 4)
        counter.add_samples(1)
    report = counter.report()
    rows = {r.name: r for r in report.layers}
    synapses = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    neurons = [n for n, m in model.named_modules() if hasattr(m, "surrogate")]
    assert set(synapses) | set(neurons) <= set(rows)  # every one ran and has a row
    assert all(rows[n].rate is not None for n in neurons)
    assert rows[synapses[0]].macs > 0  # the stem reads the analogue image
    if name == "spikformer":
        assert any(r.layer.endswith(" ssa") for r in report.layers)
    assert report.totals["sops"] == sum(r.sops for r in report.layers)
