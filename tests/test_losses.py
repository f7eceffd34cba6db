"""Losses: hand-computed values on a tiny spike train, gradients, predict and shape checks."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.components.losses import (
    CECount,
    CERate,
    MSECount,
    MSEMembrane,
    MSERate,
    TETLoss,
)
from snnkit.plugins.loader import build_registry

# the catalogue registered by snnkit/builtins.py, sorted by name
BUILTIN_LOSSES = [(c.name, c.factory) for c in build_registry(entry_points=False).list("loss")]

# the task losses (on the output); penalties (rate_penalty) read the network's activity and
# are tested in tests/test_penalties.py
LOSSES = {name: f for name, f in BUILTIN_LOSSES if not getattr(f, "penalty", False)}


def spikes() -> torch.Tensor:
    """O[T=2, B=2, C=3]; rates r: b0 = (1, .5, 0), b1 = (0, .5, 1); counts N = 2 r."""
    return torch.tensor(
        [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],  # t = 0
            [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],  # t = 1
        ],
        dtype=torch.float64,
    )


TARGET = torch.tensor([0, 2])


def test_catalogue_lists_every_loss_once() -> None:
    assert list(LOSSES) == sorted(
        ["mse_rate", "ce_rate", "mse_count", "ce_count", "mse_membrane", "tet"]
    )
    assert [name for name, _ in BUILTIN_LOSSES] == sorted([*LOSSES, "rate_penalty"])


def test_mse_rate_by_hand() -> None:
    # r - onehot: b0 (0, .5, 0), b1 (0, .5, 0) -> squares sum to 0.5 over 6 entries = 1/12
    assert MSERate()(spikes(), TARGET).item() == pytest.approx(1 / 12)


def test_ce_rate_by_hand() -> None:
    # b0 logits (1, .5, 0), class 0: ln(e + e^.5 + 1) - 1; b1 is its mirror image (class 2).
    expected = math.log(math.e + math.exp(0.5) + 1) - 1
    assert CERate()(spikes(), TARGET).item() == pytest.approx(expected)
    # scale 2 doubles the logits: ln(e^2 + e + 1) - 2
    expected2 = math.log(math.exp(2) + math.e + 1) - 2
    assert CERate(scale=2.0)(spikes(), TARGET).item() == pytest.approx(expected2)


def test_mse_count_by_hand() -> None:
    # T = 2: targets 0.8*2 = 1.6 (true), 0.2*2 = 0.4 (other).
    # b0 N = (2, 1, 0) vs (1.6, .4, .4): .16 + .36 + .16 = .68; b1 mirrors it: .68
    # mean over 6 entries = 1.36 / 6, divided by T = 2 -> 0.113333...
    assert MSECount()(spikes(), TARGET).item() == pytest.approx(1.36 / 6 / 2)


def test_ce_count_by_hand() -> None:
    # b0 logits N = (2, 1, 0), class 0: ln(e^2 + e + 1) - 2; b1 mirrors it.
    expected = math.log(math.exp(2) + math.e + 1) - 2
    assert CECount()(spikes(), TARGET).item() == pytest.approx(expected)


def test_mse_membrane_by_hand() -> None:
    # on 1 / off 0: the targets are one-hot; wrong entries: t0 b1 class 1, t1 b0 class 1
    # -> 2 unit errors over 12 entries = 1/6.
    assert MSEMembrane()(spikes(), TARGET).item() == pytest.approx(1 / 6)
    # O = 0, T = 2, C = 2, class 1, on 2 / off -1: per step (1 + 4) / 2 = 2.5
    zeros = torch.zeros(2, 1, 2)
    assert MSEMembrane(on_target=2.0, off_target=-1.0)(zeros, torch.tensor([1])).item() == 2.5


def test_tet_by_hand() -> None:
    # CE per (t, b): t0 b0 (1,0,0)->0: ln(e + 2) - 1;   t0 b1 (0,1,1)->2: ln(2e + 1) - 1
    #                t1 b0 (1,1,0)->0: ln(2e + 1) - 1;  t1 b1 (0,0,1)->2: ln(e + 2) - 1
    ce = (math.log(math.e + 2) + math.log(2 * math.e + 1)) / 2 - 1
    assert TETLoss()(spikes(), TARGET).item() == pytest.approx(ce)
    # phi = 1: six of the twelve entries are 0, so mean (O - 1)^2 = 0.5; lamb 0.5 adds 0.25
    assert TETLoss(lamb=0.5, phi=1.0)(spikes(), TARGET).item() == pytest.approx(ce + 0.25)


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_is_a_differentiable_scalar(name: str) -> None:
    torch.manual_seed(0)
    output = torch.rand(3, 4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 4, 2, 2])
    loss_fn = LOSSES[name]() if name != "tet" else TETLoss(lamb=0.3)
    loss = loss_fn(output, target)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.autograd.gradcheck(lambda o: loss_fn(o, target), (output,))


@pytest.mark.parametrize("name", list(LOSSES))
def test_predict_is_argmax_of_mean_with_ties_to_lowest_index(name: str) -> None:
    # means over T: b0 (1, .5, 0) -> 0; b1 (0, .5, 1) -> 2; b2 ties (1, 1, 0) -> 0
    output = torch.cat(
        [spikes(), torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]], dtype=torch.float64) * 2],
        dim=1,
    )
    assert LOSSES[name]().predict(output).tolist() == [0, 2, 0]


@pytest.mark.parametrize(
    "output_shape, target",
    [
        ((2, 3), torch.tensor([0, 1])),  # output not 3-D
        ((2, 3, 4), torch.tensor([0, 1])),  # B mismatch
        ((2, 3, 4), torch.tensor([[0, 1, 2]])),  # target not 1-D
        ((2, 3, 4), torch.tensor([0, 1, 4])),  # class out of range
        ((2, 3, 4), torch.tensor([0, -1, 1])),  # negative class
        ((2, 3, 4), torch.tensor([0.0, 1.0, 2.0])),  # float target
    ],
)
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_rejects_bad_shapes_naming_both(
    name: str, output_shape: tuple, target: torch.Tensor
) -> None:
    output = torch.zeros(output_shape)
    with pytest.raises(ValueError) as info:
        LOSSES[name]()(output, target)
    message = str(info.value)
    assert str(tuple(output_shape)) in message and str(tuple(target.shape)) in message


def test_predict_rejects_non_3d_output() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        MSERate().predict(torch.zeros(2, 3))


@pytest.mark.parametrize(
    "factory, kwargs, word",
    [
        (CERate, {"scale": 0.0}, "scale"),
        (MSECount, {"correct_rate": 1.5}, "correct_rate"),
        (MSECount, {"incorrect_rate": -0.1}, "incorrect_rate"),
        (TETLoss, {"lamb": -1.0}, "lamb"),
    ],
)
def test_loss_rejects_bad_parameters(factory: type, kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        factory(**kwargs)
