"""Exceptions raised by components while training or evaluating, and the signal handling around
a run: one ``error:`` line naming the layer path, the component and its plugin; the original
exception behind ``snnkit --debug`` / ``SNNKIT_DEBUG=1``; ``last.pt`` as it was.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from test_faults import Explode, _ExplodePlugin, one_error, recipe, runner

import snnkit
from snnkit.assembly.assemble import assemble
from snnkit.cli.app import app
from snnkit.engine.blame import component_error, find_culprit
from snnkit.engine.checkpoint import load_checkpoint
from snnkit.engine.signals import Stopped, stop_signals
from snnkit.errors import DataError, TrainingError
from snnkit.plugins.loader import build_registry
from snnkit.recipes.loader import load_recipe
from snnkit.version import __version__

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("only_builtins")]


class _Bomb(torch.autograd.Function):
    """Identity forward; its backward fails (a plugin's broken gradient)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("bad gradient in the plugin's backward")


class BackwardBomb(torch.nn.Module):
    """A plugin layer whose backward always fails."""

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Bomb.apply(x)


class EvalBomb(torch.nn.Module):
    """A plugin layer that fails on every evaluation batch (not on the 2-sample shape probe)."""

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and x.shape[1] > 2:
            raise KeyError("no such class index")
        return x


class _Plugin:
    __name__ = "snnkit_bombs"

    @snnkit.hookimpl
    def register_layers(self, register: Any) -> None:
        register("backward_bomb", BackwardBomb)
        register("eval_bomb", EvalBomb)


@pytest.fixture
def with_plugins(monkeypatch: pytest.MonkeyPatch) -> Any:
    registry = build_registry(plugins=[_Plugin(), _ExplodePlugin()], entry_points=False)
    monkeypatch.setattr("snnkit.plugins.loader.get_registry", lambda: registry)
    Explode.steps = 0
    return registry


def recipe_with(tmp_path: Path, layer: str, epochs: int = 2) -> Path:
    spec = recipe(tmp_path, epochs)
    spec["model"]["layers"].insert(2, layer)
    path = tmp_path / f"{layer}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_exception_in_a_plugins_backward_names_the_layer(
    tmp_path: Path, with_plugins: Any
) -> None:
    out = tmp_path / "run"
    line = one_error(
        runner.invoke(app, ["run", str(recipe_with(tmp_path, "backward_bomb")), "--out", str(out)]),
        1,
        "error: epoch 1, batch 1: layer 'backward_bomb' at model.layers[2] (plugin "
        "'snnkit_bombs') raised RuntimeError: bad gradient in the plugin's backward in its "
        "backward pass — a bug in that component",
    )
    assert "report it to the author of plugin 'snnkit_bombs'" in line
    assert f"snnkit --debug run --resume {out}" in line
    assert load_checkpoint(out / "last.pt")["position"]["epoch"] == 1


def test_an_exception_during_evaluation_names_the_layer(tmp_path: Path, with_plugins: Any) -> None:
    out = tmp_path / "run"
    one_error(
        runner.invoke(app, ["run", str(recipe_with(tmp_path, "eval_bomb")), "--out", str(out)]),
        1,
        "error: epoch 1, evaluation: layer 'eval_bomb' at model.layers[2] (plugin "
        "'snnkit_bombs') raised KeyError: 'no such class index' in its forward pass",
    )
    assert load_checkpoint(out / "last.pt")["position"]["epoch"] == 1
    last = out / "last.pt"
    line = one_error(runner.invoke(app, ["eval", str(last)]), 1, f"error: {last}: evaluation: ")
    assert f"snnkit --debug eval {last}" in line and f"{last} is unchanged" in line


@pytest.mark.parametrize("how", ["option", "environment"])
def test_debug_shows_the_original_traceback(
    tmp_path: Path, with_plugins: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    args = ["run", str(recipe_with(tmp_path, "explode")), "--out", str(tmp_path / "run")]
    if how == "option":
        args.insert(0, "--debug")
    else:
        monkeypatch.setenv("SNNKIT_DEBUG", "1")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("boom: the plugin\'s own bug")' in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: epoch 1, batch 1: layer 'explode' at model.layers[2]")


def test_without_debug_only_the_line(tmp_path: Path, with_plugins: Any) -> None:
    result = runner.invoke(app, ["--debug", "list", "loss"])  # --debug is harmless elsewhere
    assert result.exit_code == 0
    args = ["run", str(recipe_with(tmp_path, "explode")), "--out", str(tmp_path / "run")]
    one_error(runner.invoke(app, args), 1, "boom")  # the option does not stick


def test_a_builtin_component_is_named_with_snnkits_version(tmp_path: Path) -> None:
    exp = assemble(load_recipe(recipe(tmp_path)), build_registry(entry_points=False))
    with pytest.raises(RuntimeError) as info:
        exp.forward_module(torch.rand(2, 1, 4, 5))  # 20 features for a Linear of 16
    culprit = find_culprit(info.value, exp)
    assert culprit is not None and culprit.builtin and culprit.phase == "forward"
    assert (
        culprit.describe() == f"layer 'linear' at model.layers[1] (plugin 'snnkit' {__version__})"
    )
    error = component_error(info.value, exp, "epoch 1, batch 1", rerun="snnkit run x", kept="k")
    assert isinstance(error, TrainingError) and "report it to snnkit's developers" in str(error)
    assert "snnkit --debug run x" in str(error)


def test_errors_no_component_raised_keep_their_traceback(tmp_path: Path) -> None:
    exp = assemble(load_recipe(recipe(tmp_path)), build_registry(entry_points=False))
    try:
        raise ValueError("a bug in the engine itself")
    except ValueError as err:
        assert find_culprit(err, exp) is None
        assert component_error(err, exp, "x", rerun="snnkit run", kept="k") is None
    assert component_error(DataError("d: e — f"), exp, "x", rerun="snnkit run", kept="k") is None


# -- signal handling around a run -------------------------------------------------------------
def test_nested_stop_signals_share_one_request() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_signals() as outer, stop_signals() as inner:
        assert inner is outer
        os.kill(os.getpid(), signal.SIGTERM)
        assert outer.signum == signal.SIGTERM and outer.requested
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_inside_immediate_raises_at_once() -> None:
    with stop_signals() as stop:
        with pytest.raises(Stopped) as info, stop.immediate():
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("not reached: the handler raises")
        assert info.value.signum == signal.SIGINT
        with pytest.raises(Stopped), stop.immediate():  # already requested: raises on entry
            pass


def test_a_signal_before_immediate_is_acted_on_when_it_starts() -> None:
    with stop_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # recorded only
        assert stop.requested
        with pytest.raises(Stopped), stop.immediate():
            pass
