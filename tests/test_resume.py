"""Exact resume: a run stopped (between or inside epochs) and resumed equals an uninterrupted one.

Bitwise: model and optimizer state (torch.equal), scheduler state, and the train/test numbers
of metrics.jsonl. The recipe uses Poisson input, dropout and a step scheduler, so the torch
RNG, the data order and the scheduler must all be restored.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

import snnkit
from snnkit.cli.app import app
from snnkit.engine.checkpoint import load_checkpoint
from snnkit.engine.progress import SilentReporter
from snnkit.engine.run import run as run_engine
from snnkit.engine.trainer import Interrupted

runner = CliRunner()
NUMBERS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "firing_rates")


def recipe(tmp_path: Path, epochs: int) -> dict[str, Any]:
    """A tiny synthetic recipe with randomness everywhere: 4 batches of 16 per epoch."""
    return {
        "seed": 3,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 64, "shape": [1, 4, 4], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 8},
                {"name": "lif", "tau": 2.0},
                {"name": "dropout", "p": 0.2},
                {"name": "linear", "in_features": 8, "out_features": 4},
                "lif",
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.02},
        "scheduler": {"name": "step", "step_size": 1, "gamma": 0.7},
        "train": {"epochs": epochs, "batch_size": 16, "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }


pytestmark = pytest.mark.usefixtures("only_builtins")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted 3-epoch run."""
    tmp = tmp_path_factory.mktemp("reference")
    return snnkit.run(recipe(tmp, 3), out=tmp / "ref").run_dir


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in NUMBERS} for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert sa["model"].keys() == sb["model"].keys()
    for key in sa["model"]:
        assert torch.equal(sa["model"][key], sb["model"][key]), key
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert sa["optimizer"]["param_groups"] == sb["optimizer"]["param_groups"]
    assert sa["scheduler"] == sb["scheduler"] and sa["position"]["epoch"] == sb["position"]["epoch"]
    assert torch.equal(sa["rng"]["torch"], sb["rng"]["torch"])
    assert metrics(a) == metrics(b)


def test_stop_after_epoch_1_then_extend_to_3(tmp_path: Path, reference: Path) -> None:
    out = tmp_path / "run"
    snnkit.run(recipe(tmp_path, 1), out=out)
    assert len(metrics(out)) == 1
    result = runner.invoke(app, ["run", "--resume", str(out), "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    assert "epoch 2:" in result.stdout and "epoch 1:" not in result.stdout
    assert_same_run(out, reference)
    assert yaml.safe_load((out / "recipe.yaml").read_text())["train"]["epochs"] == 3


class _StopAt(SilentReporter):
    """Sends this process SIGINT after training batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at, self.epoch = (epoch, batch), 0

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        self.epoch = epoch

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None:
        if (self.epoch, done) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_sigint_inside_an_epoch_then_resume(tmp_path: Path, reference: Path) -> None:
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as info:
        run_engine(recipe(tmp_path, 3), out=out, reporter=_StopAt(2, 2))
    assert info.value.exit_code == 130 and info.value.command == f"snnkit run --resume {out}"
    assert signal.getsignal(signal.SIGINT) is before  # handlers are put back
    position = load_checkpoint(out / "last.pt")["position"]
    assert (position["epoch"], position["batch"]) == (2, 2) and len(metrics(out)) == 1
    result = runner.invoke(app, ["run", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert_same_run(out, reference)


def test_sigint_on_the_last_batch_of_an_epoch(tmp_path: Path, reference: Path) -> None:
    # The epoch is finished and evaluated first, then the run stops before epoch 2 starts.
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        run_engine(recipe(tmp_path, 3), out=out, reporter=_StopAt(1, 4))
    assert load_checkpoint(out / "last.pt")["position"]["epoch"] == 2 and len(metrics(out)) == 1
    assert runner.invoke(app, ["run", "--resume", str(out)]).exit_code == 0
    assert_same_run(out, reference)


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    snnkit.run(recipe(tmp_path, 1), out=out)
    before = (out / "last.pt").read_bytes(), metrics(out)
    result = runner.invoke(app, ["run", "--resume", str(out)])
    assert result.exit_code == 0
    assert "already finished epoch 1 of 1 — extend it with --set train.epochs=N" in result.stdout
    assert (out / "last.pt").read_bytes() == before[0] and metrics(out) == before[1]


def test_a_new_learning_rate_on_resume_is_applied(tmp_path: Path) -> None:
    out = tmp_path / "run"
    snnkit.run(recipe(tmp_path, 1), out=out)
    result = runner.invoke(
        app, ["run", "--resume", str(out), "--set", "train.epochs=2", "--set", "optimizer.lr=0.001"]
    )
    assert result.exit_code == 0, result.output
    # epoch 2 trains at the new lr; the step scheduler then multiplies it by 0.7
    assert metrics(out)[1]["lr"] == 0.001
    group = load_checkpoint(out / "last.pt")["optimizer"]["param_groups"][0]
    assert group["lr"] == pytest.approx(0.0007) and group["initial_lr"] == 0.001


@pytest.mark.parametrize(
    "override,expected",
    [
        (
            "time_steps=8",
            "--resume: cannot change 'time_steps' of a run that has started (--set time_steps=8)",
        ),
        ("model.layers.1.out_features=9", "--resume: cannot change 'model'"),
        ("optimizer.name=sgd", "--resume: cannot change optimizer.name"),
    ],
)
def test_resume_refuses_changes_to_the_experiment(
    override: str, expected: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    snnkit.run(recipe(tmp_path, 1), out=out)
    result = runner.invoke(app, ["run", "--resume", str(out), "--set", override])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {expected}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_edited_recipe_yaml_is_checked_against_the_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    snnkit.run(recipe(tmp_path, 1), out=out)
    edited = yaml.safe_load((out / "recipe.yaml").read_text())
    edited["model"]["layers"][1]["out_features"] = 6  # edited by hand, behind snnkit's back
    edited["model"]["layers"][4]["in_features"] = 6
    (out / "recipe.yaml").write_text(yaml.safe_dump(edited))
    result = runner.invoke(app, ["run", "--resume", str(out), "--set", "train.epochs=2"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(
        "error: --resume: cannot change 'model' of a run that has "
        "started (the run folder's recipe.yaml differs from the "
        "recipe saved in last.pt) — undo the edit of recipe.yaml"
    )
    assert len(result.stderr.strip().splitlines()) == 1
