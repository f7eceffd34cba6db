"""Per-layer cost counts against hand-counted values on tiny networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnkit.components.layers import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d
from snnkit.components.neurons import LI
from snnkit.costs.counting import CostCounter, layer_label
from snnkit.costs.energy import DEFAULT_ENERGY, EnergyModel


class Fire(nn.Module):
    """A 'neuron' that passes its (binary) input on: has a surrogate and a step mode."""

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.surrogate = nn.Identity()
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def spike_map() -> torch.Tensor:
    """One 4x4 map, spikes at (0, 0), (1, 1) and (3, 3): shape [T=1, B=1, C=1, 4, 4]."""
    x = torch.zeros(1, 1, 1, 4, 4)
    for r, c in ((0, 0), (1, 1), (3, 3)):
        x[0, 0, 0, r, c] = 1.0
    return x


def run(model: nn.Module, x: torch.Tensor, **kw):
    with CostCounter(model, **kw) as counter:
        model(x)
        counter.add_samples(x.shape[1])
    return counter.report()


def test_conv3x3_padding1_stride2_counted_per_output_position() -> None:
    # Output 2x2; receptive fields (rows x cols, padding outside 0..3):
    # (0,0): -1..1 x -1..1 -> spikes (0,0),(1,1) = 2;  (0,1): -1..1 x 1..3 -> (1,1) = 1
    # (1,0):  1..3 x -1..1 -> (1,1) = 1;               (1,1):  1..3 x 1..3 -> (1,1),(3,3) = 2
    # 6 spike-in-window events x 2 output channels = 12 SOPs.
    conv = Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    rep = run(nn.Sequential(conv), spike_map())
    row = rep.layers[0]
    assert (row.sops, row.macs, row.shape, row.params) == (12, 0, [2, 2, 2], 18)
    assert row.layer == "model.layers[0] conv2d"
    assert row.energy_pj == pytest.approx(12 * 0.9)


def test_conv_non_binary_input_counts_macs_without_padding() -> None:
    # Real inputs per window: 2x2 + 2x3 + 3x2 + 3x3 = 25, x C_in 1 x C_out 2 = 50 MACs.
    conv = Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    rep = run(nn.Sequential(conv), torch.full((1, 1, 1, 4, 4), 0.5))
    assert (rep.layers[0].sops, rep.layers[0].macs) == (0, 50)
    # all-ones spikes: every real input is a spike, so SOPs equal those MACs
    rep = run(nn.Sequential(conv), torch.ones(1, 1, 1, 4, 4))
    assert (rep.layers[0].sops, rep.layers[0].macs) == (50, 0)


def test_grouped_conv_fans_out_to_its_group_only() -> None:
    # groups=2, C_in 2, C_out 4: a spike reaches 2 output channels per window it lies in.
    # 1x1 kernel, stride 1: each spike is in exactly one window -> SOPs = spikes x 2.
    conv = Conv2d(2, 4, 1, groups=2, bias=False)
    x = torch.zeros(1, 1, 2, 3, 3)
    x[0, 0, 0, 0, 0] = x[0, 0, 1, 2, 2] = x[0, 0, 1, 1, 1] = 1.0
    assert run(nn.Sequential(conv), x).layers[0].sops == 6


def test_linear_on_known_spikes() -> None:
    # T=2, B=1: nnz = 3 input spikes, each reaching 5 outputs = 15 SOPs.
    x = torch.tensor([[[1.0, 0, 1, 0]], [[0, 0, 0, 1]]])
    rep = run(nn.Sequential(Linear(4, 5)), x)
    assert (rep.layers[0].sops, rep.layers[0].macs, rep.layers[0].params) == (15, 0, 25)


def test_non_binary_first_layer_counts_macs() -> None:
    # direct input: 2 steps x 1 sample x 4 inputs x 5 outputs = 40 MACs, no SOPs.
    x = torch.full((2, 1, 4), 0.3)
    rep = run(nn.Sequential(Linear(4, 5), LI(), Linear(5, 3)), x)
    first, readout, second = rep.layers
    assert (first.sops, first.macs) == (0, 40)
    assert readout.rate is None and readout.layer == "model.layers[1] li"  # not spikes
    assert second.macs == 2 * 5 * 3
    assert rep.totals["energy_pj"] == pytest.approx((40 + 30) * 4.6)


def test_neuron_rate_and_silent_fraction() -> None:
    # 2 steps x 2 samples x 3 neurons; neuron 2 never fires; 3 spikes in 12 slots.
    y = torch.zeros(2, 2, 3)
    y[0, 0, 0] = y[1, 1, 0] = y[1, 0, 1] = 1.0
    rep = run(nn.Sequential(Fire()), y)
    row = rep.layers[0]
    assert row.rate == pytest.approx(3 / 12) and row.silent == pytest.approx(1 / 3)
    assert row.layer == "model.layers[0] fire"
    assert rep.totals["rate"] == pytest.approx(0.25) and rep.totals["samples"] == 2


def test_single_step_mode_sums_every_step() -> None:
    lin = Linear(4, 5, step_mode="s")
    model = nn.Sequential(lin)
    with CostCounter(model) as counter:
        model(torch.tensor([[1.0, 0, 1, 0]]))
        model(torch.tensor([[0.0, 0, 0, 1]]))
    assert counter.report().layers[0].sops == 15


def test_batchnorm_macs_unless_folded_and_pooling_free() -> None:
    x = torch.rand(2, 3, 4, 6, 6)  # T=2, B=3, C=4
    model = nn.Sequential(BatchNorm2d(4), MaxPool2d(2), Flatten()).eval()
    rep = run(model, x)
    bn, pool = rep.layers
    assert bn.macs == x.numel() and bn.params == 8 and pool.macs == pool.sops == 0
    assert pool.shape == [4, 3, 3]
    assert run(model, x, fold_bn=True).layers[0].macs == 0


def test_energy_constants_are_overridable() -> None:
    rep = run(
        nn.Sequential(Linear(4, 5)), torch.ones(1, 1, 4), energy=EnergyModel(ac_pj=2.0, mac_pj=10.0)
    )
    assert rep.layers[0].energy_pj == 40.0 and rep.totals["ac_pj"] == 2.0
    assert DEFAULT_ENERGY.ac_pj == 0.9 and DEFAULT_ENERGY.mac_pj == 4.6
    with pytest.raises(ValueError, match="ac_pj"):
        EnergyModel(ac_pj=-1.0)


def test_layer_labels() -> None:
    assert layer_label("3", "linear") == "model.layers[3] linear"
    assert layer_label("block.0.conv", "conv2d", sequential=False) == "model.block[0].conv conv2d"
