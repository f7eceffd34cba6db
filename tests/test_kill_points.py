"""SIGKILL and SIGTERM at many points of the save sequence: nothing is lost.

Each case runs ``snnkit run`` of a tiny 3-epoch recipe in a child process that signals itself
at one point: before an epoch's metrics row is appended, between the row and the epoch's
checkpoint, inside the checkpoint write (half the bytes written), between the fsynced temporary
file and its rename, inside ``best.pt``'s first write, while the run folder is being written
(before the first checkpoint) and while the experiment is assembled (before anything exists).
Afterwards ``last.pt`` loads, ``metrics.jsonl`` holds whole lines, and the run resumes to
every epoch logged once, in order (a SIGTERM also exits 143 with the resume command, or, before
anything was saved, with the command that starts the run again).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_faults import _env, app, assert_resumes_to, epochs_logged, recipe_file, runner

from snnkit.engine.checkpoint import load_checkpoint

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("only_builtins")]

#: The child: patches one point of the save sequence to signal itself, then runs the CLI.
#: argv: POINT NAME N SIGNAL -- snnkit arguments. POINT is one of
#: append (before the N-th metrics row), appended (after it), save (inside the N-th write of
#: NAME: half of the bytes), replace (NAME's N-th write, fsynced, before the rename),
#: run_info (before recipe.yaml is written), assemble (while the model is built).
CHILD = r"""
import io, os, signal, sys
from pathlib import Path
import torch
from snnkit.engine import checkpoint, rundir, run, trainer
point, name, nth, sig = sys.argv[1], sys.argv[2], int(sys.argv[3]), getattr(signal, sys.argv[4])
calls, armed = {}, []

def hit(key):
    calls[key] = calls.get(key, 0) + 1
    return calls[key] == nth

def fire():
    os.kill(os.getpid(), sig)

real_append = rundir.append_metrics
def append_metrics(run_dir, row):
    if point == "append" and hit("row"):
        fire()
    real_append(run_dir, row)
    if point == "appended" and hit("row"):
        fire()
rundir.append_metrics = append_metrics

real_ckpt = trainer.save_checkpoint
def save_checkpoint(state, path):
    if Path(path).name == name and hit(name):
        armed.append(point)
    try:
        return real_ckpt(state, path)
    finally:
        armed.clear()
trainer.save_checkpoint = save_checkpoint

real_save = torch.save
def save(obj, handle, *args, **kwargs):
    if "save" not in armed:
        return real_save(obj, handle, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    handle.write(data[: len(data) // 2])
    fire()
    handle.write(data[len(data) // 2 :])
torch.save = save

class Os:
    def __getattr__(self, attr):
        return getattr(os, attr)
    def replace(self, src, dst):
        if "replace" in armed:
            fire()
        os.replace(src, dst)
checkpoint.os = Os()

real_info = rundir.write_run_info
def write_run_info(*args, **kwargs):
    if point == "run_info":
        fire()
    real_info(*args, **kwargs)
rundir.write_run_info = write_run_info

real_assemble = run._assemble
def assemble(*args, **kwargs):
    if point == "assemble":
        fire()
    return real_assemble(*args, **kwargs)
run._assemble = assemble

from snnkit.cli.app import main_entry
sys.argv = ["snnkit", *sys.argv[sys.argv.index("--") + 1 :]]
main_entry()
"""


def signalled_run(point: str, name: str, nth: int, sig: str, *args: str) -> tuple[int, str]:
    """Run the CLI with ``args`` in a child that signals itself at ``point``."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, point, name, str(nth), sig, "--", *args],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONUNBUFFERED": "1"},
        timeout=300,
        check=False,
    )
    return child.returncode, child.stderr


def whole_lines(out: Path) -> list[int]:
    epochs = epochs_logged(out)
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    return epochs


@pytest.mark.parametrize(
    "point,name,nth,position,logged",
    [
        ("append", "", 2, 2, [1]),  # before epoch 2's row
        ("appended", "", 2, 2, [1, 2]),  # between epoch 2's row and its checkpoint
        ("save", "last.pt", 3, 2, [1, 2]),  # inside epoch 2's last.pt write
        ("replace", "last.pt", 3, 2, [1, 2]),  # fsynced, not yet renamed
        ("save", "best.pt", 1, 1, [1]),  # inside the first best.pt write
    ],
)
def test_sigkill_in_the_save_sequence_loses_nothing(
    tmp_path: Path, point: str, name: str, nth: int, position: int, logged: list[int]
) -> None:
    out = tmp_path / "run"
    code, err = signalled_run(
        point, name, nth, "SIGKILL", "run", str(recipe_file(tmp_path, 3)), "--out", str(out)
    )
    assert code == -signal.SIGKILL, err
    assert load_checkpoint(out / "last.pt")["position"]["epoch"] == position
    assert whole_lines(out) == logged  # the row may be ahead of last.pt, never behind
    assert_resumes_to(out, 3)


@pytest.mark.parametrize(
    "point,name,nth,position",
    [
        ("appended", "", 2, 3),  # between epoch 2's row and its checkpoint
        ("save", "last.pt", 2, 2),  # inside epoch 1's last.pt write
        ("run_info", "", 1, 1),  # the run folder is being written: no checkpoint yet
    ],
)
def test_sigterm_in_the_save_sequence_saves_then_stops(
    tmp_path: Path, point: str, name: str, nth: int, position: int
) -> None:
    out = tmp_path / "run"
    code, err = signalled_run(
        point, name, nth, "SIGTERM", "run", str(recipe_file(tmp_path, 3)), "--out", str(out)
    )
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert f"stopped by signal; checkpoint saved. Resume with:\n  snnkit run --resume {out}" in err
    assert load_checkpoint(out / "last.pt")["position"]["epoch"] == position
    assert whole_lines(out) == list(range(1, position))
    assert_resumes_to(out, 3)


def test_sigterm_before_anything_was_saved_says_how_to_start_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    path = recipe_file(tmp_path, 1)
    code, err = signalled_run("assemble", "", 1, "SIGTERM", "run", str(path), "--out", str(out))
    assert code == 128 + signal.SIGTERM, err
    assert err.splitlines()[-2:] == [
        "stopped by signal before training started; nothing was saved. Start again with:",
        f"  snnkit run {path} --out {out}",
    ]
    assert not out.exists()
    result = runner.invoke(app, ["run", str(path), "--out", str(out)])  # the printed command
    assert result.exit_code == 0, result.output
    assert epochs_logged(out) == [1]


def test_sigterm_while_a_resume_is_assembled_leaves_the_run_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert (
        runner.invoke(app, ["run", str(recipe_file(tmp_path, 1)), "--out", str(out)]).exit_code == 0
    )
    before = (out / "last.pt").read_bytes(), (out / "metrics.jsonl").read_text()
    code, err = signalled_run(
        "assemble", "", 1, "SIGTERM", "run", "--resume", str(out), "--set", "train.epochs=2"
    )
    assert code == 128 + signal.SIGTERM, err
    assert err.splitlines()[-2:] == [
        "stopped by signal before training resumed; last.pt is as it was. Resume with:",
        f"  snnkit run --resume {out}",
    ]
    assert ((out / "last.pt").read_bytes(), (out / "metrics.jsonl").read_text()) == before
    assert json.loads((out / "metrics.jsonl").read_text())["epoch"] == 1
    assert_resumes_to(out, 2)
