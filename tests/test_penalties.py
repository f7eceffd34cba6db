"""Composed losses and the firing-rate penalty: hand-computed values and gradients, the recipe
form ``loss: [{name: tet}, {name: rate_penalty, ...}]``, its errors and its logging."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import snnkit
from snnkit.assembly.assemble import assemble
from snnkit.cli.app import app
from snnkit.components import neurons as N
from snnkit.components.losses import TETLoss
from snnkit.components.penalties import ComposedLoss, RatePenalty
from snnkit.components.surrogates import Sigmoid
from snnkit.engine.rundir import read_metrics
from snnkit.errors import SnnkitError
from snnkit.plugins.loader import get_registry
from snnkit.recipes.loader import load_recipe

pytestmark = pytest.mark.usefixtures("only_builtins")

# One LIF step (tau 2, V(0) = 0, decay_input): H = X / 2, S = Θ(H − 1).
X = [[3.0, 1.0], [2.5, 0.5]]  # B = 2 samples x 2 neurons -> H = [[1.5, .5], [1.25, .25]]
ALPHA, TAU, TARGET, WEIGHT = 4.0, 2.0, 0.05, 0.1


def sigmoid_grad(u: float) -> float:
    s = 1 / (1 + math.exp(-ALPHA * u))
    return ALPHA * s * (1 - s)


def penalty_and_grad(mode: str, step_mode: str = "m") -> tuple[torch.Tensor, torch.Tensor]:
    lif = N.LIF(Sigmoid(alpha=ALPHA), tau=TAU, step_mode=step_mode)
    penalty = RatePenalty(target=TARGET, weight=WEIGHT, mode=mode)
    penalty.watch([lif])
    x = torch.tensor(X, requires_grad=True)
    out = lif(x.unsqueeze(0)) if step_mode == "m" else lif(x).unsqueeze(0)
    value = penalty(out, torch.zeros(2, dtype=torch.int64))
    value.backward()
    assert x.grad is not None
    return value.detach(), x.grad


@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_l2_penalty_value_and_gradient_by_hand(step_mode: str) -> None:
    # spikes S = [[1, 0], [1, 0]] -> rates r = [1, 0] (mean over T = 1 and B = 2)
    # P = 0.1 · mean_i (r_i − 0.05)² = 0.1 · (0.95² + 0.05²) / 2 = 0.04525
    value, grad = penalty_and_grad("l2", step_mode)
    assert float(value) == pytest.approx(0.1 * (0.95**2 + 0.05**2) / 2)
    # dP/dS_bi = weight · 2 (r_i − target) / N / (T·B);  dS/dX = σ'(H − 1) / τ
    h = [[x / TAU for x in row] for row in X]
    rates = [1.0, 0.0]
    want = [
        [WEIGHT * 2 * (rates[i] - TARGET) / 2 / 2 * sigmoid_grad(h[b][i] - 1) / TAU for i in (0, 1)]
        for b in (0, 1)
    ]
    torch.testing.assert_close(grad, torch.tensor(want))


def test_upper_bound_penalty_only_pushes_rates_above_the_target() -> None:
    value, grad = penalty_and_grad("upper")
    assert float(value) == pytest.approx(0.1 * 0.95**2 / 2)  # neuron 1 (rate 0) is under
    assert torch.all(grad[:, 1] == 0) and torch.all(grad[:, 0] > 0)


def test_nothing_recorded_without_gradients() -> None:
    lif = N.LIF(Sigmoid(alpha=ALPHA))
    penalty = RatePenalty()
    penalty.watch([lif])
    with torch.no_grad():
        out = lif(torch.ones(1, 2, 2) * 3)
    assert float(penalty(out, torch.zeros(2, dtype=torch.int64))) == 0.0


def test_composed_loss_sums_parts_and_predicts_with_the_task_loss() -> None:
    out = torch.tensor([[[0.2, 0.9], [0.8, 0.1]]])
    y = torch.tensor([1, 0])
    tet, tet2 = TETLoss(), TETLoss(lamb=1.0)
    loss = ComposedLoss([("tet", tet), ("tet", tet2), ("rate_penalty", RatePenalty())])
    total = loss(out, y)
    assert loss.names == ["tet", "tet_2", "rate_penalty"]
    assert float(total) == pytest.approx(float(tet(out, y) + tet2(out, y)))
    assert float(loss.last_parts["rate_penalty"]) == 0.0
    assert float(loss.task(out, y)) == pytest.approx(float(total))
    assert loss.predict(out).tolist() == [1, 0]


def recipe(tmp_path: Path, loss: Any, **train: Any) -> dict[str, Any]:
    return {
        "seed": 1,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 4, 4], "num_classes": 3},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 8},
                "lif",
                {"name": "linear", "in_features": 8, "out_features": 3},
                "lif",
            ],
        },
        "loss": loss,
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu", **train},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }


LOSS = [{"name": "tet"}, {"name": "rate_penalty", "target": 0.5, "weight": 2.0}]


def test_recipe_list_trains_and_logs_each_part(tmp_path: Path) -> None:
    spec = [LOSS[0], {**LOSS[1], "layers": ["model.layers.2"]}]  # = model.layers[2]
    run = snnkit.run(recipe(tmp_path, spec), out=tmp_path / "run").run_dir
    (row,) = read_metrics(run)
    parts = row["train_loss_parts"]
    assert set(parts) == {"tet", "rate_penalty"} and parts["rate_penalty"] > 0
    assert row["train_loss"] == pytest.approx(parts["tet"] + parts["rate_penalty"], rel=1e-5)
    saved = (run / "recipe.yaml").read_text()
    assert "rate_penalty" in saved and "model.layers.2" in saved


@pytest.mark.filterwarnings("ignore:.*fused cpp kernel takes no initial state")
@pytest.mark.parametrize(
    ("loss", "train", "text"),
    [
        (
            [LOSS[0], {**LOSS[1], "layers": ["model.layers[3]"]}],
            {},
            r"loss\[1\]\.layers\[0\]: 'model.layers\[3\]' is not a spiking layer — did you mean",
        ),
        ("rate_penalty", {}, "is a penalty on the network's activity, not a task loss"),
        ([LOSS[1]], {}, "has no task loss"),
        ([], {}, "loss: an empty list"),
        ([LOSS[0], {**LOSS[1], "mode": "lower"}], {}, r"loss\[1\].*mode must be l2 or upper"),
        (LOSS, {"memory": "checkpoint"}, r"loss\[1\] \(rate_penalty\): .* train.memory: full"),
        (LOSS, {"memory": "online"}, r"loss\[1\] \(rate_penalty\): .* train.memory: full"),
    ],
)
def test_bad_composed_losses_are_one_line(tmp_path: Path, loss: Any, train: dict, text: str):
    with pytest.raises(SnnkitError, match=text) as info:
        assemble(load_recipe(recipe(tmp_path, loss, **train)), get_registry())
    assert "\n" not in str(info.value)


def test_rate_penalty_is_listed_with_the_losses() -> None:
    result = CliRunner().invoke(app, ["list", "loss"])
    assert result.exit_code == 0 and "rate_penalty" in result.output


def test_loss_parts_become_tensorboard_tags() -> None:
    from snnkit.engine.tb_logger import loss_scalars

    row = {"train_loss": 1.5, "train_loss_parts": {"tet": 1.25, "rate_penalty": 0.25}}
    assert loss_scalars(row) == [("loss/tet", 1.25), ("loss/rate_penalty", 0.25)]
    assert loss_scalars({"train_loss": 1.0}) == []


def test_loss_parts_survive_a_checkpoint() -> None:
    from snnkit.engine.state import Totals

    totals = Totals(3.0, 2.0, 4.0, 0.5, {"tet": 2.5, "rate_penalty": 0.5})
    assert Totals.from_dict(totals.to_dict()) == totals
    assert "parts" not in Totals().to_dict()  # a single loss keeps the old on-disk sums
    assert Totals.from_dict(Totals().to_dict()) == Totals()


def test_records_of_another_batch_size_are_dropped() -> None:
    lif = N.LIF(Sigmoid(alpha=ALPHA))
    penalty = RatePenalty(target=0.0, weight=1.0)
    penalty.watch([lif])
    lif(torch.full((1, 2, 2), 3.0))  # a stale pass (B = 2, every neuron fires)
    out = lif(torch.zeros(1, 3, 2))  # this batch: B = 3, silent -> rates 0, penalty 0
    assert float(penalty(out, torch.zeros(3, dtype=torch.int64))) == 0.0
