"""SIGINT / SIGTERM during training: finish the step, save last.pt, print the resume command,
exit 128+N.

Two real processes (`python -m snnkit run ...`) are signalled after their first epoch line;
they run side by side to keep the test short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.engine.checkpoint import load_checkpoint
from snnkit.engine.progress import SilentReporter
from snnkit.engine.run import run as run_engine

runner = CliRunner()


def long_recipe(tmp_path: Path) -> dict[str, Any]:
    """128 batches of 8 per epoch and 50 epochs: far longer than the test waits."""
    return {
        "seed": 0,
        "time_steps": 8,
        "dataset": {"name": "synthetic", "num_samples": 1024, "shape": [16], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [{"name": "linear", "in_features": 16, "out_features": 4}, "lif"],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 50, "batch_size": 8, "device": "cpu", "num_threads": 1},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }


pytestmark = pytest.mark.usefixtures("only_builtins")


def _start(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(long_recipe(tmp_path)))
    out = tmp_path / name
    env = {**os.environ, "SNNKIT_LOAD_PLUGINS": "", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snnkit", "run", str(path), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, out


def _wait_for_first_epoch(proc: subprocess.Popen, deadline: float) -> str:
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if line.startswith("epoch 1:"):
            return seen
    proc.kill()
    raise AssertionError(f"no epoch line from the child: {seen!r} {proc.stderr.read()!r}")


def test_sigint_and_sigterm_save_and_print_the_resume_command(tmp_path: Path) -> None:
    procs = {sig: _start(tmp_path, sig.name.lower()) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = time.monotonic() + 120
    try:
        for sig, (proc, _) in procs.items():
            _wait_for_first_epoch(proc, deadline)
            proc.send_signal(sig)
        results = {sig: (proc.communicate(timeout=60), out) for sig, (proc, out) in procs.items()}
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
    for sig, ((stdout, stderr), out) in results.items():
        proc = procs[sig][0]
        assert proc.returncode == 128 + sig, (sig, stdout, stderr)
        assert "Traceback" not in stderr
        assert "stopped by signal; checkpoint saved. Resume with:" in stderr
        assert f"snnkit run --resume {out}" in stderr
        state = load_checkpoint(out / "last.pt")
        position = state["position"]
        # stopped after the step under way: epoch 1 is done (the signal came after its line)
        assert position["epoch"] >= 2 and position["global_step"] >= 128
        rows = (out / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == position["epoch"] - 1 and json.loads(rows[0])["epoch"] == 1
        assert not list(out.glob(".*.tmp"))
    # the printed command continues the SIGTERM run; finish the epoch it was in
    out = results[signal.SIGTERM][1]
    epoch = load_checkpoint(out / "last.pt")["position"]["epoch"]
    result = runner.invoke(app, ["run", "--resume", str(out), "--set", f"train.epochs={epoch}"])
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == epoch


class _DoubleSigint(SilentReporter):
    """Sends SIGINT twice after the second batch, as an impatient user would."""

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None:
        if done == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)


def test_a_second_sigint_stops_at_once_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    recipe = long_recipe(tmp_path)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run_engine(recipe, out=tmp_path / "run", reporter=_DoubleSigint())
    assert signal.getsignal(signal.SIGINT) is before
    position = load_checkpoint(tmp_path / "run" / "last.pt")["position"]
    assert (position["epoch"], position["batch"]) == (1, 0)  # the start-of-run checkpoint
