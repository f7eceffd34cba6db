"""``snnkit profile``: a per-layer table and the documented JSON shape of a trained run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import snnkit
from snnkit.cli.app import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("only_builtins")


def recipe(tmp_path: Path, encoder: str = "poisson") -> dict[str, Any]:
    """A tiny synthetic run: 1 epoch of 2 batches, 32 test samples."""
    return {
        "seed": 1,
        "time_steps": 3,
        "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 4, 4], "num_classes": 3},
        "encoder": encoder,
        "model": {
            "name": "sequential",
            "layers": [
                {
                    "name": "conv2d",
                    "in_channels": 1,
                    "out_channels": 2,
                    "kernel_size": 3,
                    "padding": 1,
                    "stride": 2,
                    "bias": False,
                },
                {"name": "batchnorm2d", "num_features": 2},
                "lif",
                "flatten",
                {"name": "linear", "in_features": 8, "out_features": 3},
                "lif",
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("profile")
    return snnkit.run(recipe(tmp), out=tmp / "run").run_dir


def test_json_shape(run_dir: Path) -> None:
    result = runner.invoke(app, ["profile", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    *layers, total = rows
    assert [r["layer"] for r in layers] == [
        "model.layers[0] conv2d",
        "model.layers[1] batchnorm2d",
        "model.layers[2] lif",
        "model.layers[4] linear",
        "model.layers[5] lif",
    ]
    for row in layers:
        assert {"layer", "shape", "rate", "silent", "sops", "macs", "params", "energy_pj"} <= set(
            row
        )
    conv, bn, lif, linear, _out = layers
    assert conv["sops"] > 0 and conv["macs"] == 0  # Poisson input is binary
    assert bn["macs"] == 32 * 3 * 2 * 2 * 2 and bn["sops"] == 0
    assert linear["macs"] == 0 and 0 <= lif["rate"] <= 1 and conv["shape"] == [2, 2, 2]
    assert total["layer"] == "total" and total["samples"] == 32
    assert total["sops"] == sum(r["sops"] for r in layers)
    assert total["energy_pj"] == pytest.approx(0.9 * total["sops"] + 4.6 * total["macs"])
    assert total["params"] == 18 + 4 + 8 * 3 + 3


def test_table_and_batches(run_dir: Path) -> None:
    result = runner.invoke(app, ["profile", str(run_dir), "--batches", "1"])
    assert result.exit_code == 0, result.output
    assert "model.layers[4] linear" in result.output and "16 test samples" in result.output
    assert "per sample" in result.output


def test_direct_input_first_layer_counts_macs(tmp_path: Path) -> None:
    run = snnkit.run(recipe(tmp_path, encoder="direct"), out=tmp_path / "run").run_dir
    rows = json.loads(runner.invoke(app, ["profile", str(run), "--json"]).output)
    assert rows[0]["sops"] == 0 and rows[0]["macs"] > 0


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profile", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output and "best.pt" in result.output
    assert "Traceback" not in result.output
