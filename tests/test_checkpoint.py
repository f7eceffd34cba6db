"""Checkpoints: atomic writes (also under SIGKILL), weights-only loads, format versions, RNG state."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.engine.checkpoint import (
    FORMAT_VERSION,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from snnkit.errors import CheckpointError

runner = CliRunner()


def _state(value: float) -> dict:
    return {"recipe": {}, "model": {"w": torch.full((4,), value)}, "position": {"epoch": 1}}


def _one_error_line(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Traceback" not in result.output


def test_round_trip_adds_the_format_version(tmp_path: Path) -> None:
    path = save_checkpoint(_state(1.5), tmp_path / "sub" / "last.pt")
    state = load_checkpoint(path)
    assert state["format_version"] == FORMAT_VERSION and torch.equal(
        state["model"]["w"], torch.full((4,), 1.5)
    )
    assert load_checkpoint(tmp_path / "sub")["model"]["w"][0] == 1.5  # a folder means its last.pt


def test_a_failed_write_leaves_the_old_checkpoint_and_no_temp_file(
    tmp_path: Path, monkeypatch
) -> None:
    path = save_checkpoint(_state(1.0), tmp_path / "last.pt")
    real_save = torch.save

    def half_then_die(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_die)
    with pytest.raises(OSError):
        save_checkpoint(_state(2.0), path)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["model"]["w"][0] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_stale_temp_file_is_removed_by_the_next_save(tmp_path: Path) -> None:
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"left by a killed process")
    save_checkpoint(_state(1.0), tmp_path / "last.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_sigkill_while_saving_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    # A child saves a 4 MB checkpoint over and over (generation g holds the value g); we kill
    # it with SIGKILL at an arbitrary moment, then read whatever last.pt holds.
    script = textwrap.dedent(f"""
        import torch
        from snnkit.engine.checkpoint import save_checkpoint
        g = 0
        while True:
            g += 1
            save_checkpoint({{"recipe": {{}}, "position": {{"epoch": g}},
                             "model": {{"w": torch.full((1 << 20,), float(g))}}}},
                            {str(tmp_path / "last.pt")!r})
            print(g, flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(5):  # a few generations written, so the kill lands amid the loop
            assert child.stdout.readline(), "the child died"
        time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    state = load_checkpoint(tmp_path / "last.pt")
    g = state["position"]["epoch"]
    assert g >= 5 and torch.equal(state["model"]["w"], torch.full((1 << 20,), float(g)))


class _Payload:
    """Pickles as a call that creates a file: what a malicious checkpoint would do."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format_version": FORMAT_VERSION,
            "recipe": {},
            "model": {},
            "position": {},
            "x": _Payload(target),
        },
        path,
    )
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "refused: it holds pickled Python objects" in message and "weights_only=True" in message
    assert "\n" not in message and not target.exists()
    _one_error_line(
        runner.invoke(app, ["eval", str(path)]), "refused: it holds pickled Python objects"
    )
    assert not target.exists()


def test_another_format_version_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({**_state(1.0), "format_version": FORMAT_VERSION + 1}, path)
    expected = (
        f"checkpoint format {FORMAT_VERSION + 1}, but this snnkit reads format {FORMAT_VERSION}"
    )
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)
    _one_error_line(runner.invoke(app, ["eval", str(path)]), expected)


@pytest.mark.parametrize(
    "payload,expected",
    [
        ({"model": {}}, "not an snnkit checkpoint (no format_version)"),
        ([1, 2, 3], "not an snnkit checkpoint"),
        ({"format_version": FORMAT_VERSION, "model": {}}, "incomplete checkpoint (no 'recipe')"),
    ],
)
def test_foreign_files_are_refused(payload, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(path)
    _one_error_line(runner.invoke(app, ["eval", str(path)]), expected)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(_state(1.0), tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last.pt: not a"):
        load_checkpoint(path)


def test_rng_states_survive_a_weights_only_round_trip(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint({**_state(0.0), "rng": capture_rng()}, tmp_path / "last.pt")
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng(load_checkpoint(tmp_path / "last.pt")["rng"])
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_save_and_load_leave_the_callers_state_alone(tmp_path: Path) -> None:
    state = _state(1.0)
    save_checkpoint(state, tmp_path / "a.pt")
    assert "format_version" not in state
    assert os.listdir(tmp_path) == ["a.pt"]
