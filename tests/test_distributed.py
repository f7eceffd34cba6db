"""Data-parallel training with torchrun on CPU (gloo): same trajectory as one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

RECIPE = """\
seed: 3
time_steps: 4
dataset: {name: synthetic, num_samples: 256, shape: [1, 6, 6], num_classes: 4}
encoder: direct
model:
  name: sequential
  layers:
    - flatten
    - {name: linear, in_features: 36, out_features: 16}
    - {name: lif, tau: 2.0}
    - {name: linear, in_features: 16, out_features: 4}
    - {name: li, tau: 2.0}
loss: tet
optimizer: {name: sgd, lr: 0.5}
train: {epochs: 2, batch_size: 32, device: cpu}
output: {tensorboard: false}
"""

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")


def _torchrun(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    cmd = ["torchrun", "--standalone", "--nproc-per-node", "2", "-m", "snnkit", *args]
    return subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "SNNKIT_LOAD_PLUGINS": "", **(env or {})},
    )


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    (root / "recipe.yaml").write_text(RECIPE)
    two = _torchrun(["run", "recipe.yaml", "--out", "two", "--quiet"], root)
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run(
        [sys.executable, "-m", "snnkit", "run", "recipe.yaml", "--out", "one", "--quiet"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SNNKIT_LOAD_PLUGINS": ""},
    )
    assert one.returncode == 0, one.stderr[-2000:]
    return root / "one", root / "two"


def test_two_processes_follow_the_single_process_trajectory(runs: tuple[Path, Path]) -> None:
    one, two = (_metrics(r) for r in runs)
    assert len(one) == len(two) == 2  # rank 1 wrote nothing
    for a, b in zip(one, two):
        for key in ("train_loss", "test_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
        for key in ("train_acc", "test_acc"):
            assert b[key] == pytest.approx(a[key], abs=1e-9), key


def test_the_rank_0_checkpoint_loads_in_one_process(runs: tuple[Path, Path]) -> None:
    _, two = runs
    result = subprocess.run(
        [sys.executable, "-m", "snnkit", "eval", str(two), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SNNKIT_LOAD_PLUGINS": ""},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["test_acc"] == pytest.approx(_metrics(two)[-1]["test_acc"])


def test_a_crashed_rank_ends_the_run_instead_of_hanging(tmp_path: Path) -> None:
    # an installed-looking plugin whose dataset crashes on rank 1 only
    (tmp_path / "snnkit_crash.py").write_text(
        textwrap.dedent('''
        import os
        import snnkit
        from snnkit.data.images import synthetic

        def crashy(train: bool, num_samples: int = 64):
            """Synthetic data that crashes on rank 1."""
            if os.environ.get("RANK") == "1":
                raise RuntimeError("disk on fire on rank 1")
            return synthetic(train, num_samples=num_samples, shape=(1, 6, 6), num_classes=4)

        @snnkit.hookimpl
        def register_datasets(register):
            register("crashy", crashy)
        ''')
    )
    info = tmp_path / "snnkit_crash-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: snnkit-crash\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[snnkit]\ncrash = snnkit_crash\n")
    (tmp_path / "recipe.yaml").write_text(
        RECIPE.replace(
            "{name: synthetic, num_samples: 256, shape: [1, 6, 6], num_classes: 4}", "crashy"
        )
    )
    env = {
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "SNNKIT_LOAD_PLUGINS": "snnkit-crash",
        "SNNKIT_DIST_TIMEOUT": "30",
    }
    start = time.monotonic()
    result = _torchrun(["run", "recipe.yaml", "--out", "crash"], tmp_path, env, timeout=150)
    assert result.returncode != 0
    assert "disk on fire on rank 1" in result.stderr
    assert time.monotonic() - start < 120
