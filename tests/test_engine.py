"""The engine on a tiny synthetic recipe: run folder, metrics, printed lines, eval, step modes,
NaN, restoring a checkpoint and the step strategy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

import snnkit
from snnkit.cli.app import app
from snnkit.components.losses import MSERate
from snnkit.engine.checkpoint import load_checkpoint
from snnkit.hookspecs import hookimpl
from snnkit.plugins.loader import build_registry

runner = CliRunner()
METRIC_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "train_seconds"}


def tiny(tmp_path: Path, **train: Any) -> dict[str, Any]:
    """4x4 synthetic images, 4 classes, T=4, Linear(16, 4) + LIF: 4 batches of 16 per epoch."""
    return {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 64, "shape": [1, 4, 4], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 4, "bias": False},
                {"name": "lif", "tau": 2.0},
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 2, "batch_size": 16, "device": "cpu", "log_every": 1, **train},
        "output": {"dir": str(tmp_path / "runs")},
    }


def write(tmp_path: Path, recipe: dict[str, Any], name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


pytestmark = pytest.mark.usefixtures("only_builtins")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Any]:
    """One 2-epoch run through the CLI, shared by the layout tests."""
    tmp = tmp_path_factory.mktemp("engine")
    out = tmp / "run"
    result = runner.invoke(app, ["run", str(write(tmp, tiny(tmp))), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


def test_run_folder_layout(finished) -> None:
    out, _ = finished
    names = {p.name for p in out.iterdir()}
    assert names == {
        "recipe.yaml",
        "plugins.json",
        "metrics.jsonl",
        "tensorboard",
        "last.pt",
        "best.pt",
    }
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    plugins = json.loads((out / "plugins.json").read_text())
    assert any(p["name"] == "snnkit" and p["version"] == snnkit.__version__ for p in plugins)
    saved = snnkit.load_recipe(yaml.safe_load((out / "recipe.yaml").read_text()))
    assert saved.train.epochs == 2 and saved.model["layers"][2] == {"name": "lif", "tau": 2.0}


def test_metrics_have_one_line_per_epoch_with_the_required_keys(finished) -> None:
    out, _ = finished
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert set(row) >= METRIC_KEYS
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1 and row["train_seconds"] > 0
        assert row["firing_rates"] and all(0 <= v <= 1 for v in row["firing_rates"].values())


def test_checkpoints_hold_the_final_and_the_best_state(finished) -> None:
    out, _ = finished
    last, best = load_checkpoint(out / "last.pt"), load_checkpoint(out / "best.pt")
    assert last["position"]["epoch"] == 3 and last["position"]["batch"] == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best_row = max(rows, key=lambda r: r["test_acc"])
    assert best["position"]["best_epoch"] == best_row["epoch"] == best["position"]["epoch"] - 1


def test_the_final_lines_name_the_run_folder_and_the_best_accuracy(finished) -> None:
    out, result = finished
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["test_acc"])
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == f"run folder: {out}"
    assert lines[-1] == f"best test accuracy: {best['test_acc']:.2%} (epoch {best['epoch']})"
    assert lines[0].startswith("epoch 1: train loss ")


def test_eval_json_reports_the_checkpoint(finished) -> None:
    out, _ = finished
    first = runner.invoke(app, ["eval", str(out), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["epoch"] == 2 and {"test_loss", "test_acc", "firing_rates"} <= set(report)
    again = json.loads(runner.invoke(app, ["eval", str(out / "best.pt"), "--json"]).stdout)
    best = load_checkpoint(out / "best.pt")["position"]["best_epoch"]
    assert again["epoch"] == best
    text = runner.invoke(app, ["eval", str(out)])
    assert text.exit_code == 0 and "test accuracy" in text.stdout


def test_restore_experiment_prefers_best_or_last(finished) -> None:
    from snnkit.engine.restore import restore_experiment

    out, _ = finished
    for prefer, name in (("best", "best.pt"), ("last", "last.pt")):
        exp, state = restore_experiment(out, prefer=prefer)
        saved = load_checkpoint(out / name)
        assert state["position"] == saved["position"]
        for key, value in exp.model.state_dict().items():
            assert torch.equal(value, saved["model"][key]), (prefer, key)
    exp, state = restore_experiment(out / "last.pt", prefer="best")  # a file is taken as is
    assert state["position"] == load_checkpoint(out / "last.pt")["position"]
    assert exp.recipe.train.epochs == 2


def test_train_state_round_trips_through_the_checkpoint_dict(finished) -> None:
    from snnkit.engine.restore import restore_experiment
    from snnkit.engine.state import Totals, TrainState

    out, _ = finished
    exp, saved = restore_experiment(out, prefer="last")
    state = TrainState.from_checkpoint(saved, exp, out / "last.pt")
    assert isinstance(state.totals, Totals) and state.totals.to_dict() == saved["position"]["sums"]
    again = state.to_checkpoint(exp)
    assert set(again) == set(saved) - {"format_version"}
    assert again["position"] == saved["position"]
    assert torch.equal(again["order_state"], saved["order_state"])
    assert torch.equal(again["order_epoch_start"], saved["order_epoch_start"])
    assert state.describe() == "the state after epoch 2"


def test_the_step_strategy_is_chosen_once_per_run(tmp_path: Path) -> None:
    from snnkit.assembly.assemble import assemble
    from snnkit.engine.distributed import World
    from snnkit.engine.steps import AutocastStep, EagerStep
    from snnkit.engine.trainer import choose_step

    exp = assemble(snnkit.load_recipe(tiny(tmp_path, amp=True)), build_registry(entry_points=False))
    step = choose_step(exp, exp.forward_module, World())
    assert type(step) is EagerStep  # AMP and CUDA graphs are for CUDA only
    assert not isinstance(step, AutocastStep)
    loss, correct = step(exp.train_data.inputs[:16], exp.train_data.targets[:16])
    assert loss.dim() == 0 and 0 <= int(correct) <= 16
    assert all(p.grad is not None for p in exp.model.parameters())


def test_quiet_prints_only_the_final_lines(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            str(write(tmp_path, tiny(tmp_path, epochs=1))),
            "--quiet",
            "--out",
            str(tmp_path / "q"),
        ],
    )
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0] == f"run folder: {tmp_path / 'q'}"


def test_python_api_with_a_mapping_and_the_default_folder(tmp_path: Path) -> None:
    recipe = tiny(tmp_path, epochs=1)
    recipe["output"]["name"] = "api"
    result = snnkit.run(recipe)
    assert result.run_dir.parent == tmp_path / "runs" / "api"  # <dir>/<name>/<timestamp>/
    assert len(result.metrics) == 1 and result.best_epoch == 1
    assert result.best_test_acc == result.metrics[0]["test_acc"]
    again = snnkit.run(recipe)  # same second: a new folder, never the same one
    assert again.run_dir != result.run_dir and again.metrics[0]["test_acc"] == result.best_test_acc


def test_same_seed_same_numbers_and_other_seed_other_numbers(tmp_path: Path) -> None:
    recipe = tiny(tmp_path, epochs=1)
    recipe["output"]["tensorboard"] = False
    a = snnkit.run(recipe, out=tmp_path / "a")
    b = snnkit.run(recipe, out=tmp_path / "b")
    c = snnkit.run(recipe, ["seed=1"], out=tmp_path / "c")
    wa, wb, wc = (load_checkpoint(r.run_dir / "last.pt")["model"]["1.weight"] for r in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.metrics[0]["train_loss"] == b.metrics[0]["train_loss"]


def test_single_step_and_multi_step_give_identical_losses(tmp_path: Path) -> None:
    rows = {}
    for mode in ("m", "s"):
        recipe = tiny(tmp_path)
        recipe["model"]["step_mode"] = mode
        recipe["output"]["tensorboard"] = False
        rows[mode] = snnkit.run(recipe, out=tmp_path / mode).metrics
    for m_row, s_row in zip(rows["m"], rows["s"]):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert m_row[key] == s_row[key], (key, m_row, s_row)


# -- a loss that becomes NaN ---------------------------------------------------------------
class NanAfter(MSERate):
    """MSERate whose training value turns NaN after ``after`` training steps."""

    def __init__(self, after: int = 0) -> None:
        super().__init__()
        self.after = after
        self.steps = 0

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(output, target)
        if torch.is_grad_enabled():  # training steps only, not evaluation or the shape check
            self.steps += 1
            if self.steps > self.after:
                return loss * float("nan")
        return loss


class _NanPlugin:
    __name__ = "snnkit_nan"

    @hookimpl
    def register_losses(self, register) -> None:
        register("nan_after", NanAfter)


@pytest.fixture
def nan_registry(monkeypatch):
    registry = build_registry(plugins=[_NanPlugin()], entry_points=False)
    monkeypatch.setattr("snnkit.plugins.loader.get_registry", lambda: registry)
    return registry


def test_nan_loss_stops_with_exit_1_and_keeps_the_last_good_state(
    tmp_path: Path, nan_registry
) -> None:
    recipe = tiny(tmp_path, epochs=3)
    # 4 batches per epoch: NaN at epoch 2, batch 1
    recipe["loss"] = {"name": "nan_after", "after": 4}
    out = tmp_path / "nan"
    result = runner.invoke(app, ["run", str(write(tmp_path, recipe)), "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(
        "error: epoch 2, batch 1: the training loss is nan — lower "
        "optimizer.lr (now 0.01) or set train.grad_clip"
    )
    assert (
        f"last.pt keeps the state after epoch 1: continue from there with snnkit run "
        f"--resume {out} --set optimizer.lr=0.001" in lines[0]
    )
    # last.pt equals the state of a clean 1-epoch run with the same seed (MSERate = nan_after
    # before the NaN), and it is loadable.
    reference = snnkit.run(tiny(tmp_path, epochs=1), out=tmp_path / "ref")
    kept, ref = load_checkpoint(out / "last.pt"), load_checkpoint(reference.run_dir / "last.pt")
    assert kept["position"]["epoch"] == 2 and kept["position"]["batch"] == 0
    assert kept["model"].keys() == ref["model"].keys()
    assert all(torch.equal(kept["model"][k], ref["model"][k]) for k in ref["model"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_nan_in_the_first_step_keeps_the_initial_state(tmp_path: Path, nan_registry) -> None:
    recipe = tiny(tmp_path)
    recipe["loss"] = {"name": "nan_after", "after": 0}
    out = tmp_path / "nan0"
    result = runner.invoke(app, ["run", str(write(tmp_path, recipe)), "--out", str(out)])
    assert result.exit_code == 1
    assert "epoch 1, batch 1: the training loss is nan" in result.stderr
    assert "last.pt keeps the initial state" in result.stderr
    assert load_checkpoint(out / "last.pt")["position"] == {
        "epoch": 1,
        "batch": 0,
        "best_acc": -1.0,
        "best_epoch": 0,
        "global_step": 0,
        "sums": {"loss": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0},
    }


@pytest.mark.e2e
def test_a_short_run_of_the_default_recipe_learns_mnist(tmp_path: Path, monkeypatch) -> None:
    root = os.environ.get("SNNKIT_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    if not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found (set SNNKIT_DATA)")
    monkeypatch.setenv("SNNKIT_DATA", root)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "lif_mnist.yaml"
    result = snnkit.run(
        recipe,
        [
            "train.epochs=1",
            "train.max_batches=30",
            "time_steps=8",
            "train.eval_batch_size=2000",
            "output.tensorboard=false",
            "train.device=cpu",
        ],
        out=tmp_path / "mnist",
    )
    assert result.metrics[0]["test_acc"] > 0.5  # chance is 0.1
