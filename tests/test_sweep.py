"""``snnkit sweep``: space parsing and its errors, SQLite sweeps, failures, pruning, resume,
multi-objective fronts and ``sweep show``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.errors import RecipeError
from snnkit.plugins.loader import get_registry
from snnkit.sweep.objectives import parse_objectives
from snnkit.sweep.space import check_paths, parse_space
from snnkit.sweep.study import TrialReporter, open_storage

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("only_builtins")

SPACE = {
    "model.layers.2.tau": {"float": [1.5, 8.0], "log": True},
    "optimizer.lr": {"float": [1.0e-3, 5.0e-2], "log": True},
    "model.layers.2.surrogate.name": {"choice": ["sigmoid", "atan"]},
}


def recipe(epochs: int = 1) -> dict[str, Any]:
    """A tiny synthetic recipe: 2 batches of 16 per epoch, 32 test samples."""
    return {
        "seed": 1,
        "time_steps": 3,
        "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 4, 4], "num_classes": 3},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 8},
                {"name": "lif", "tau": 2.0},
                {"name": "linear", "in_features": 8, "out_features": 3},
                "lif",
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 16, "device": "cpu"},
        "output": {"dir": "runs", "tensorboard": False},
    }


def write(tmp_path: Path, space: dict[str, Any] = SPACE, epochs: int = 1) -> tuple[Path, Path]:
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe(epochs)))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    return tmp_path / "r.yaml", tmp_path / "space.yaml"


def sweep(tmp_path: Path, *args: str, space: dict[str, Any] = SPACE, epochs: int = 1) -> Any:
    r, s = write(tmp_path, space, epochs)
    return runner.invoke(app, ["sweep", str(r), "--space", str(s), *args])


def load(tmp_path: Path, name: str = "r") -> Any:
    url = f"sqlite:///{tmp_path / 'runs' / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=url)


# -- the space --------------------------------------------------------------------------------
def test_space_parses_and_paths_exist() -> None:
    dims = parse_space(SPACE)
    assert [d.kind for d in dims] == ["float", "float", "choice"] and dims[0].log
    check_paths(dims, recipe(), get_registry())  # surrogate: a lif parameter, not written
    assert dims[1].override(1e-05) == "optimizer.lr=1.0e-05"  # YAML reads it as a number
    check_paths(
        parse_space(
            {"time_steps": {"int": [2, 8], "step": 2}, "train.batch_size": {"int": [8, 16]}}
        ),
        recipe(),
        get_registry(),
    )


@pytest.mark.parametrize(
    "space, message",
    [
        (
            {"model.layers.2.taux": {"float": [1, 2]}},
            "'taux' is not in 'model.layers.2' — did you mean 'tau'?",
        ),
        ({"model.layer.2.tau": {"float": [1, 2]}}, "did you mean 'layers'?"),
        ({"model.layers.7.tau": {"float": [1, 2]}}, "must be an index 0..4"),
        ({"optimizer.lr": {"float": [0.1, 0.01]}}, "empty range [0.1, 0.01]"),
        ({"optimizer.lr": {"float": [0.1, 0.1]}}, "empty range"),
        ({"optimizer.lr": {"uniform": [0.1, 0.2]}}, "unknown distribution 'uniform'"),
        ({"optimizer.lr": {"flaot": [0.1, 0.2]}}, "did you mean 'float'?"),
        ({"optimizer.lr": {"float": [0.0, 0.2], "log": True}}, "log range needs low > 0"),
        ({"optimizer.lr": {"choice": []}}, "non-empty list"),
        ({"time_steps": {"int": [2.5, 8]}}, "two integers"),
        ({"optimizer.lr": {"float": [0.1, 0.2], "base": 2}}, "'base' is not an option of float"),
    ],
)
def test_space_errors_are_one_line(space: dict[str, Any], message: str) -> None:
    with pytest.raises(RecipeError) as err:
        check_paths(parse_space(space), recipe(), get_registry())
    assert message in str(err.value) and "\n" not in str(err.value)


def test_objectives() -> None:
    goals = parse_objectives("test_acc:max, sops:min,test_loss")
    assert [(o.name, o.direction) for o in goals] == [
        ("test_acc", "maximize"),
        ("sops", "minimize"),
        ("test_loss", "minimize"),
    ]
    with pytest.raises(RecipeError, match="'tset_acc' is not a metric — did you mean 'test_acc'"):
        parse_objectives("tset_acc:max")
    with pytest.raises(RecipeError, match="max or min"):
        parse_objectives("test_acc:up")


# -- sweeps -----------------------------------------------------------------------------------
def test_three_trial_sqlite_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = sweep(tmp_path, "--trials", "3")
    assert result.exit_code == 0, result.output
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    for t in study.trials:
        run_dir = Path(t.user_attrs["run_dir"])
        assert run_dir == (tmp_path / "runs" / "r" / f"trial-{t.number}").resolve()
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert t.value == rows[0]["test_acc"]
        saved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
        assert saved["model"]["layers"][2]["tau"] == t.params["model.layers.2.tau"]
        assert saved["optimizer"]["lr"] == t.params["optimizer.lr"]
        assert (
            saved["model"]["layers"][2]["surrogate"]["name"]
            == t.params["model.layers.2.surrogate.name"]
        )
        assert f"trial {t.number}: test_acc" in result.output
    # the same command again: the study already holds 3 trials, nothing more runs
    again = sweep(tmp_path, "--trials", "3")
    assert again.exit_code == 0 and len(load(tmp_path).trials) == 3


def test_crashing_trial_is_recorded_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    space = {"optimizer.lr": {"choice": [0.01, float("inf")]}}
    storage = open_storage(f"sqlite:///{tmp_path / 'runs' / 'r' / 'study.db'}")
    study = optuna.create_study(study_name="r", storage=storage, direction="maximize")
    study.enqueue_trial({"optimizer.lr": float("inf")})  # NaN weights -> TrainingError
    study.enqueue_trial({"optimizer.lr": 0.01})
    result = sweep(tmp_path, "--trials", "2", space=space)
    assert result.exit_code == 0, result.output
    first, second = load(tmp_path).trials
    assert first.state == TrialState.FAIL and second.state == TrialState.COMPLETE
    reason = first.user_attrs["fail_reason"]
    assert "became non-finite" in reason and "\n" not in reason
    assert f"trial 0 failed: {reason}" in result.output and "Traceback" not in result.output


def test_reporter_reports_and_prunes() -> None:
    class FakeTrial:
        def __init__(self) -> None:
            self.reported: list[tuple[float, int]] = []
            self.user_attrs: dict[str, Any] = {}

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reported) >= 2

        def set_user_attr(self, key: str, value: Any) -> None:
            self.user_attrs[key] = value

    trial = FakeTrial()
    reporter = TrialReporter(trial, "test_acc")
    reporter.epoch_done({"epoch": 1, "test_acc": 0.5})
    with pytest.raises(optuna.TrialPruned):
        reporter.epoch_done({"epoch": 2, "test_acc": 0.4})
    assert trial.reported == [(0.5, 1), (0.4, 2)] and trial.user_attrs["pruned_after_epoch"] == 2
    TrialReporter(trial, None).epoch_done({"epoch": 3, "test_acc": 0.1})  # costs: no pruning
    assert len(trial.reported) == 2


def test_pruned_trials_stop_after_the_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        optuna.pruners, "MedianPruner", lambda: optuna.pruners.ThresholdPruner(lower=1.01)
    )  # prunes every trial
    result = sweep(tmp_path, "--trials", "2", epochs=3)
    assert result.exit_code == 0, result.output
    trials = load(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for t in trials:
        lines = (tmp_path / t.user_attrs["run_dir"] / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 1 and t.user_attrs["pruned_after_epoch"] == 1
    assert "pruned after epoch 1" in result.output


def test_interrupted_study_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    original = TrialReporter.epoch_done
    calls = []

    def interrupt_once(self: TrialReporter, metrics: dict[str, Any]) -> None:
        calls.append(metrics["epoch"])
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C during trial 0's first epoch
        original(self, metrics)

    monkeypatch.setattr(TrialReporter, "epoch_done", interrupt_once)
    stopped = sweep(tmp_path, "--trials", "2", "--pruner", "none", epochs=2)
    assert stopped.exit_code == 128 + signal.SIGINT, stopped.output
    assert "Run the same command again" in stopped.output
    (first,) = load(tmp_path).trials
    assert first.state == TrialState.FAIL and first.user_attrs["interrupted"]

    resumed = sweep(tmp_path, "--trials", "2", "--pruner", "none", epochs=2)
    assert resumed.exit_code == 0, resumed.output
    old, again, new = load(tmp_path).trials
    assert again.user_attrs["resumes"] == 0 and again.params == old.params
    assert again.state == new.state == TrialState.COMPLETE
    assert Path(again.user_attrs["run_dir"]).name == "trial-0"
    rows = (tmp_path / "runs" / "r" / "trial-0" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]  # resumed, not restarted
    assert not (tmp_path / "runs" / "r" / "trial-1").exists()


def test_multi_objective_front_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = sweep(
        tmp_path, "--trials", "3", "--objectives", "test_acc:max,sops:min", "--study", "front"
    )
    assert result.exit_code == 0, result.output
    study = load(tmp_path, "front")
    assert len(study.directions) == 2 and study.best_trials
    assert all(t.values[1] > 0 for t in study.trials)  # SOPs per test sample, counted
    shown = runner.invoke(app, ["sweep", "show", "front", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert {r["trial"] for r in rows} == {t.number for t in study.best_trials}
    assert {"test_acc", "sops", "params", "run_dir"} <= set(rows[0])
    assert (tmp_path / "runs" / "front" / "front.png").stat().st_size > 0
    table = runner.invoke(app, ["sweep", "show", "front", "--no-plots"])
    assert table.exit_code == 0 and "Pareto front" in table.output


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--objectives", "accuracy:max"], "'accuracy' is not a metric"),
        (["--storage", "postgresql://u:secret@127.0.0.1:1/db"], "cannot use the database"),
        (["--storage", "nonsense"], "not a database URL"),
        (["--trials", "0"], "--trials"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    full = args if "--trials" in args else ["--trials", "1", *args]
    result = sweep(tmp_path, *full)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "secret" not in result.output
    assert not list(tmp_path.glob("runs/*/trial-*"))  # nothing ran


def test_bad_space_path_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = sweep(tmp_path, "--trials", "1", space={"optimizer.lrr": {"float": [0.1, 0.2]}})
    assert result.exit_code == 2 and "did you mean 'lr'?" in result.output
    show = runner.invoke(app, ["sweep", "show", "nothing"])
    assert show.exit_code == 2 and "no study database" in show.output
