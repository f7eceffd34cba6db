"""Counting on every test pass: the ``costs`` entry of metrics.jsonl, its TensorBoard tags, the
recipe's ``costs`` section and ``snnkit profile`` taking the run's constants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli_profile import recipe as profile_recipe
from typer.testing import CliRunner

import snnkit
from snnkit.cli.app import app
from snnkit.engine.run import run as engine_run
from snnkit.engine.rundir import read_metrics
from snnkit.engine.tb_logger import cost_scalars
from snnkit.errors import RecipeError
from snnkit.recipes.loader import load_recipe

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("only_builtins")


def recipe(tmp_path: Path, **costs: Any) -> dict[str, Any]:
    """``test_cli_profile``'s tiny run with direct (deterministic) input, plus a ``costs``
    section when given."""
    spec = profile_recipe(tmp_path, encoder="direct")
    return {**spec, **({"costs": costs} if costs else {})}


def test_metrics_row_holds_costs_per_test_sample(tmp_path: Path) -> None:
    run = snnkit.run(recipe(tmp_path), out=tmp_path / "run").run_dir
    (row,) = read_metrics(run)
    costs = row["costs"]
    assert (costs["per"], costs["samples"], costs["bn_folded"]) == ("sample", 32, False)
    assert (costs["ac_pj"], costs["mac_pj"]) == (0.9, 4.6)
    labels = [r["layer"] for r in costs["layers"]]
    assert labels == [
        "model.layers[0] conv2d",
        "model.layers[1] batchnorm2d",
        "model.layers[2] lif",
        "model.layers[4] linear",
        "model.layers[5] lif",
    ]
    conv, bn, lif, linear, out = costs["layers"]
    # direct input is analogue: the conv's 25 real taps x C_in 1 x C_out 2 x T 3 MACs per sample
    assert (conv["macs"], conv["sops"]) == (25 * 2 * 3, 0)
    assert bn["macs"] == 2 * 2 * 2 * 3  # one MAC per element: C 2 x 2x2 x T 3
    assert linear["macs"] == 0 and linear["params"] == 8 * 3 + 3
    # the rates are the firing_rates of the row (counted, not averaged per batch)
    assert row["firing_rates"] == {"2": lif["rate"], "5": out["rate"]}
    total = costs["totals"]
    assert total["sops"] == pytest.approx(sum(r["sops"] for r in costs["layers"]))
    assert total["energy_pj"] == pytest.approx(0.9 * total["sops"] + 4.6 * total["macs"])
    # snnkit profile on the same weights and the same (deterministic) input: the pass's sums
    rows = json.loads(runner.invoke(app, ["profile", str(run), "--json"]).output)
    for mine, theirs in zip(costs["layers"], rows):
        assert mine["sops"] == pytest.approx(theirs["sops"] / 32)
        assert mine["macs"] == pytest.approx(theirs["macs"] / 32)
        assert mine["rate"] == theirs["rate"]


def test_recipe_energy_constants_reach_metrics_and_profile(tmp_path: Path) -> None:
    spec = recipe(tmp_path, fold_bn=True, energy={"ac_pj": 2.0, "mac_pj": 10.0})
    run = snnkit.run(spec, out=tmp_path / "run").run_dir
    costs = read_metrics(run)[0]["costs"]
    assert costs["bn_folded"] and costs["layers"][1]["macs"] == 0
    for r in costs["layers"]:
        assert r["energy_pj"] == pytest.approx(2.0 * r["sops"] + 10.0 * r["macs"])
    total = json.loads(runner.invoke(app, ["profile", str(run), "--json"]).output)[-1]
    assert (total["ac_pj"], total["mac_pj"], total["bn_folded"]) == (2.0, 10.0, True)
    flags = ["--ac-pj", "1", "--no-fold-bn"]
    total = json.loads(runner.invoke(app, ["profile", str(run), "--json", *flags]).output)[-1]
    assert (total["ac_pj"], total["mac_pj"], total["bn_folded"]) == (1.0, 10.0, False)


def test_costs_can_be_switched_off(tmp_path: Path) -> None:
    run = snnkit.run(recipe(tmp_path, enabled=False), out=tmp_path / "run").run_dir
    (row,) = read_metrics(run)
    assert "costs" not in row and set(row["firing_rates"]) == {"2", "5"}


def test_tensorboard_tags() -> None:
    costs = {
        "layers": [
            {
                "layer": "model.layers[1] linear",
                "rate": None,
                "silent": None,
                "sops": 4.0,
                "macs": 0.0,
                "energy_pj": 3.6,
                "params": 7,
            }
        ],
        "totals": {
            "rate": 0.5,
            "silent": 0.0,
            "sops": 4.0,
            "macs": 0.0,
            "energy_pj": 3.6,
            "params": 7,
        },
    }
    tags = dict(cost_scalars(costs))
    assert tags["costs/model.layers[1]_linear/sops"] == 4.0
    assert "costs/model.layers[1]_linear/rate" not in tags
    assert tags["costs/total/rate"] == 0.5 and tags["costs/total/energy_pj"] == 3.6


@pytest.mark.parametrize(
    ("override", "text"),
    [
        ("costs.energy.ac_pj=-1", "costs.energy.ac_pj must be >= 0"),
        ("costs.energy.acpj=1", "costs.energy: unknown key 'acpj' — did you mean 'ac_pj'"),
        ("costs.enable=false", "costs: unknown key 'enable' — did you mean 'enabled'"),
        ("costs=3", "costs: expected a mapping"),
    ],
)
def test_bad_costs_section_is_one_line(override: str, text: str) -> None:
    with pytest.raises(RecipeError, match=text.replace("[", r"\[")) as info:
        load_recipe("recipes/lif_mnist.yaml", [override])
    assert "\n" not in str(info.value)


def test_resume_may_change_costs(tmp_path: Path) -> None:
    spec = recipe(tmp_path)
    run = snnkit.run(spec, out=tmp_path / "run").run_dir
    result = engine_run(resume=run, overrides=["train.epochs=2", "costs.energy.ac_pj=1.5"])
    rows = read_metrics(result.run_dir)
    assert rows[1]["costs"]["ac_pj"] == 1.5 and rows[0]["costs"]["ac_pj"] == 0.9


def test_tensorboard_holds_costs_and_loss_parts(tmp_path: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    spec = recipe(tmp_path)
    spec["output"]["tensorboard"] = True
    spec["loss"] = [{"name": "mse_rate"}, {"name": "rate_penalty", "layers": ["model.layers.2"]}]
    run = snnkit.run(spec, out=tmp_path / "run").run_dir
    (row,) = read_metrics(run)
    events = accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"costs/total/sops", "costs/model.layers[0]_conv2d/macs", "loss/rate_penalty"} <= tags
    (macs,) = events.Scalars("costs/model.layers[0]_conv2d/macs")
    assert macs.value == pytest.approx(row["costs"]["layers"][0]["macs"])
    (tet,) = events.Scalars("loss/mse_rate")
    assert tet.value == pytest.approx(row["train_loss_parts"]["mse_rate"])
