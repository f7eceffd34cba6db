"""Fault injection: every fault ends in one ``error:`` line, its exit code, and nothing lost.

Faults: damaged checkpoints (a bit flipped in the weights or the optimizer state, a cut-off
file), a full disk (a real small tmpfs, and ``torch.save`` / the metrics append made to fail
with ENOSPC), two processes on one run folder (a live holder, a stale lock of a dead one),
read-only folders (a tmpfs remounted read-only, and a refused probe), and a recipe.yaml edited
behind a run's back. After each fault: ``last.pt`` still loads and resumes, and
``metrics.jsonl`` holds every finished epoch once, in order. Mounting needs root; where it is
not allowed those tests are skipped (the monkeypatched variants still run).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

import snnkit
from snnkit.cli.app import app
from snnkit.engine import run_lock, rundir
from snnkit.engine.checkpoint import load_checkpoint
from snnkit.errors import CheckpointError, RecipeError

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("only_builtins")]
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def recipe(tmp_path: Path, epochs: int = 1) -> dict[str, Any]:
    """A tiny synthetic recipe: 4 batches of 16 per epoch, Adam (so there is optimizer state)."""
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
                {"name": "linear", "in_features": 8, "out_features": 4},
                "lif",
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.02},
        "train": {"epochs": epochs, "batch_size": 16, "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }


def recipe_file(tmp_path: Path, epochs: int = 1) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path, epochs)))
    return path


def one_error(result: Any, code: int, expected: str) -> str:
    """Exit ``code``, exactly one ``error:`` line on stderr holding ``expected``, no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def epochs_logged(run_dir: Path) -> list[int]:
    """The epochs metrics.jsonl holds; every line must be whole JSON."""
    text = (run_dir / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line)["epoch"] for line in text.splitlines()]


def resume(run_dir: Path, *extra: str) -> Any:
    return runner.invoke(app, ["run", "--resume", str(run_dir), *extra])


def assert_resumes_to(run_dir: Path, epochs: int) -> None:
    """Nothing was lost: the run resumes and ends with every epoch logged once, in order."""
    result = resume(run_dir, "--set", f"train.epochs={epochs}")
    assert result.exit_code == 0, result.output
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))
    assert load_checkpoint(run_dir / "last.pt")["position"]["epoch"] == epochs + 1
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / run_lock.LOCK_FILE).exists()


@pytest.fixture
def one_epoch(tmp_path: Path) -> Path:
    """A finished 1-epoch run."""
    return snnkit.run(recipe(tmp_path), out=tmp_path / "run").run_dir


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``mount(size)``: a fresh tmpfs of that size (skips the test where mounting is refused)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        tool = shutil.which("mount")
        done = tool and subprocess.run(
            [tool, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if not done or done.returncode != 0:
            pytest.skip(
                "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): "
                f"{done.stderr.strip() if done else 'no mount tool'}"
            )
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


# -- damaged checkpoints ----------------------------------------------------------------------
def flip_bit_in(path: Path, tensor: torch.Tensor) -> None:
    """Flip one bit in the middle of ``tensor``'s bytes inside the checkpoint file."""
    data = bytearray(path.read_bytes())
    blob = tensor.detach().contiguous().numpy().tobytes()
    at = data.find(blob)
    assert at >= 0 and data.find(blob, at + 1) < 0, "the tensor's bytes are not unique"
    data[at + len(blob) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _weights(state: dict[str, Any]) -> torch.Tensor:
    return next(v for v in state["model"].values() if v.numel() >= 8)


def _optimizer_state(state: dict[str, Any]) -> torch.Tensor:
    return next(iter(state["optimizer"]["state"].values()))["exp_avg_sq"]


@pytest.mark.parametrize("part", [_weights, _optimizer_state], ids=["weights", "optimizer"])
def test_a_flipped_bit_is_refused_and_the_other_checkpoint_still_works(
    one_epoch: Path, part: Callable[[dict[str, Any]], torch.Tensor]
) -> None:
    last = one_epoch / "last.pt"
    flip_bit_in(last, part(load_checkpoint(last)))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(last)
    assert str(info.value) == (
        f"{last}: damaged checkpoint (its bytes do not match the SHA-256 "
        "checksum written with it) — refused; the run's other checkpoint "
        "(best.pt / last.pt) may still be good"
    )
    one_error(runner.invoke(app, ["eval", str(last)]), 2, f"{last}: damaged checkpoint")
    one_error(resume(one_epoch, "--set", "train.epochs=2"), 2, f"{last}: damaged checkpoint")
    assert epochs_logged(one_epoch) == [1]
    assert runner.invoke(app, ["eval", str(one_epoch / "best.pt")]).exit_code == 0
    shutil.copyfile(one_epoch / "best.pt", last)  # what the message suggests
    assert_resumes_to(one_epoch, 2)


@pytest.mark.parametrize("cut", [1, 60, 79, 1000, "half"])
def test_a_cut_off_checkpoint_is_refused(one_epoch: Path, cut: int | str) -> None:
    last = one_epoch / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2 if cut == "half" else len(data) - int(cut)])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(last)
    assert "(best.pt / last.pt) may still be good" in str(info.value)
    one_error(runner.invoke(app, ["eval", str(last)]), 2, f"{last}: ")
    one_error(resume(one_epoch), 2, "truncated")


def test_checkpoints_written_before_seals_still_load_and_resume(one_epoch: Path) -> None:
    last = one_epoch / "last.pt"
    torch.save(load_checkpoint(last), last)  # what an older snnkit wrote: no seal
    assert load_checkpoint(last)["format_version"] == 1
    assert_resumes_to(one_epoch, 2)


def test_an_unsealed_checkpoint_with_a_flipped_bit_is_refused_by_its_crc(one_epoch: Path) -> None:
    last = one_epoch / "last.pt"
    state = load_checkpoint(last)
    torch.save(state, last)
    flip_bit_in(last, _weights(state))
    with pytest.raises(CheckpointError, match=r"damaged checkpoint \(the CRC-32 of its part "):
        load_checkpoint(last)


# -- a full disk ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code,expected",
    [
        (errno.ENOSPC, "cannot write: no space left on the disk that holds {out}"),
        (errno.EROFS, "cannot write: the file system holding {out} is read-only"),
    ],
)
def test_a_checkpoint_write_that_fails_keeps_the_previous_one(
    one_epoch: Path, monkeypatch: pytest.MonkeyPatch, code: int, expected: str
) -> None:
    before = (one_epoch / "last.pt").read_bytes()
    real_save = torch.save

    def half_then_fail(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(torch, "save", half_then_fail)
    line = one_error(
        resume(one_epoch, "--set", "train.epochs=2"), 1, expected.format(out=one_epoch)
    )
    assert "what was saved before is intact" in line
    monkeypatch.setattr(torch, "save", real_save)
    assert (one_epoch / "last.pt").read_bytes() == before and epochs_logged(one_epoch) == [1]
    assert_resumes_to(one_epoch, 2)


class HalfFile:
    """Stands in for ``open`` in rundir: writes half of what it is given, then the disk is full."""

    def __init__(self, path: Path, mode: str) -> None:
        self.handle = open(path, mode)  # noqa: SIM115

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self) -> HalfFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.close()


def test_a_metrics_line_that_cannot_be_written_is_cut_back_off(
    one_epoch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rundir, "open", HalfFile, raising=False)
    one_error(
        resume(one_epoch, "--set", "train.epochs=2"),
        1,
        f"{one_epoch / 'metrics.jsonl'}: cannot write: no space left on the disk",
    )
    assert epochs_logged(one_epoch) == [1]  # no half line left behind
    # last.pt is never ahead of metrics.jsonl: epoch 2's checkpoint was not written
    assert load_checkpoint(one_epoch / "last.pt")["position"]["epoch"] == 2


def _fill(disk: Path, leave: int) -> Path:
    """Take all of ``disk``'s free space but ``leave`` bytes."""
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, shutil.disk_usage(disk).free - leave)
    return filler


def test_a_real_full_disk(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("2m")
    out = disk / "run"
    result = runner.invoke(app, ["run", str(recipe_file(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    before = (out / "last.pt").read_bytes()
    filler = _fill(disk, 8 << 10)  # room for the small files, not for a checkpoint
    line = one_error(
        resume(out, "--set", "train.epochs=2"),
        1,
        f"cannot write: no space left on the disk that holds {out}",
    )
    assert "free space there" in line and "--out on another disk" in line
    assert (out / "last.pt").read_bytes() == before and not list(out.glob(".*.tmp"))
    assert epochs_logged(out) == [1]
    filler.unlink()
    assert_resumes_to(out, 2)


# -- two processes on one run folder ----------------------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SNNKIT_LOAD_PLUGINS": ""}


def _holder(folder: Path) -> subprocess.Popen:
    """A child process that holds ``folder``'s lock until its stdin closes."""
    code = (
        "import sys; from snnkit.engine.run_lock import hold\n"
        f"with hold({str(folder)!r}):\n    print('held', flush=True); sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_busy_run_folder_is_refused_naming_the_pid(one_epoch: Path, tmp_path: Path) -> None:
    child = _holder(one_epoch)
    try:
        busy = f"the run folder is in use by another snnkit process (PID {child.pid} on "
        one_error(resume(one_epoch, "--set", "train.epochs=2"), 2, f"--resume {one_epoch}: {busy}")
        one_error(
            runner.invoke(app, ["run", str(recipe_file(tmp_path)), "--out", str(one_epoch)]),
            2,
            f"--out {one_epoch}: {busy}",
        )
        with pytest.raises(RecipeError, match=f"PID {child.pid} "), run_lock.hold(one_epoch):
            pass
    finally:
        child.stdin.close()
        child.wait(60)
    assert epochs_logged(one_epoch) == [1]
    assert_resumes_to(one_epoch, 2)


def test_the_same_process_cannot_take_a_folder_twice(tmp_path: Path) -> None:
    with run_lock.hold(tmp_path):
        assert f"pid={os.getpid()} " in (tmp_path / run_lock.LOCK_FILE).read_text()
        busy = f"in use by another snnkit process \\(PID {os.getpid()} "
        with pytest.raises(RecipeError, match=busy), run_lock.hold(tmp_path, "--resume"):
            pass
    assert not (tmp_path / run_lock.LOCK_FILE).exists() and run_lock.holder(tmp_path) is None


@pytest.mark.parametrize("how", ["killed", "file"])
def test_a_stale_lock_of_a_dead_process_is_taken_over(one_epoch: Path, how: str) -> None:
    if how == "killed":  # SIGKILL: no cleanup, the lock file stays with the dead PID
        child = _holder(one_epoch)
        child.kill()
        child.wait(60)
    else:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait(60)
        (one_epoch / run_lock.LOCK_FILE).write_text(f"pid={child.pid} host=gone started=then\n")
    assert f"pid={child.pid} " in (one_epoch / run_lock.LOCK_FILE).read_text()
    assert run_lock.holder(one_epoch) is None
    assert_resumes_to(one_epoch, 2)


def test_a_second_process_while_a_real_run_trains(tmp_path: Path) -> None:
    out = tmp_path / "run"
    path = recipe_file(tmp_path, epochs=100_000)
    child = subprocess.Popen(
        [sys.executable, "-m", "snnkit", "run", str(path), "--out", str(out), "--quiet"],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not ((out / "metrics.jsonl").exists() and epochs_logged(out)):
            assert child.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        one_error(
            resume(out),
            2,
            f"--resume {out}: the run folder is in use by another snnkit process (PID {child.pid} ",
        )
        one_error(runner.invoke(app, ["run", str(path), "--out", str(out)]), 2, f"PID {child.pid}")
    finally:
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGINT, err
    epoch = load_checkpoint(out / "last.pt")["position"]["epoch"]  # the epoch to run next
    assert epochs_logged(out) == list(range(1, epoch))
    assert_resumes_to(out, epoch)


# -- read-only places -------------------------------------------------------------------------
def test_an_empty_out_folder_on_a_read_only_disk(
    tmp_path: Path, tmpfs: Callable[[str], Path]
) -> None:
    disk = tmpfs("1m")
    (disk / "empty").mkdir()
    remount(disk, "ro")
    one_error(
        runner.invoke(app, ["run", str(recipe_file(tmp_path)), "--out", str(disk / "empty")]),
        2,
        f"--out {disk / 'empty'}: the folder is not writable (Read-only file system) — "
        "choose a writable folder with --out",
    )


def test_resuming_a_run_on_a_read_only_disk(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("2m")
    out = snnkit.run(recipe(tmp_path), out=disk / "run").run_dir
    before = (out / "last.pt").read_bytes()
    remount(disk, "ro")
    one_error(
        resume(out, "--set", "train.epochs=2"),
        2,
        f"--resume {out}: the folder is not writable (Read-only file system) — remount it "
        "read-write, or copy the run folder to a writable disk and resume the copy",
    )
    remount(disk, "rw")
    assert (out / "last.pt").read_bytes() == before and epochs_logged(out) == [1]
    assert_resumes_to(out, 2)


def test_a_refused_write_probe_is_one_line(
    one_epoch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(rundir.tempfile, "mkstemp", read_only)  # the first write of a resume
    one_error(
        resume(one_epoch),
        2,
        f"--resume {one_epoch}: the folder is not writable (Read-only file system)",
    )


# -- a recipe.yaml edited behind the run's back -----------------------------------------------
@pytest.mark.parametrize(
    "key,value,expected",
    [
        (
            "seed",
            4,
            (
                "cannot change 'seed' of a run that has started (the run folder's recipe.yaml "
                "differs from the recipe saved in last.pt) — undo the edit of recipe.yaml"
            ),
        ),
        ("time_steps", 8, "cannot change 'time_steps'"),
        ("encoder", "rate", "cannot change 'encoder'"),
        ("optimizer", {"name": "sgd", "lr": 0.02}, "cannot change optimizer.name"),
    ],
)
def test_an_edited_recipe_yaml_is_refused_on_resume(
    one_epoch: Path, key: str, value: Any, expected: str
) -> None:
    edited = yaml.safe_load((one_epoch / "recipe.yaml").read_text())
    edited[key] = value
    (one_epoch / "recipe.yaml").write_text(yaml.safe_dump(edited))
    before = (one_epoch / "last.pt").read_bytes()
    one_error(resume(one_epoch, "--set", "train.epochs=2"), 2, f"error: --resume: {expected}")
    assert (one_epoch / "last.pt").read_bytes() == before and epochs_logged(one_epoch) == [1]


def test_an_edit_that_only_extends_training_is_allowed(one_epoch: Path) -> None:
    edited = yaml.safe_load((one_epoch / "recipe.yaml").read_text())
    edited["train"]["epochs"] = 2
    (one_epoch / "recipe.yaml").write_text(yaml.safe_dump(edited))
    assert resume(one_epoch).exit_code == 0 and epochs_logged(one_epoch) == [1, 2]


# -- the save sequence, signals, overflow, component faults ------------------------------------


def test_the_metrics_row_is_durable_before_the_epochs_checkpoint(
    one_epoch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rundir, "open", HalfFile, raising=False)
    one_error(resume(one_epoch, "--set", "train.epochs=2"), 1, "no space left on the disk")
    monkeypatch.undo()
    # last.pt must not be ahead of metrics.jsonl: epoch 2 runs again, nothing is skipped
    assert load_checkpoint(one_epoch / "last.pt")["position"]["epoch"] == 2
    assert_resumes_to(one_epoch, 3)


def test_a_signal_during_the_first_checkpoint_is_a_graceful_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snnkit.engine import trainer  # the module that calls save_checkpoint after the split

    real = trainer.save_checkpoint
    calls: list[Path] = []

    def signalled(state: dict[str, Any], path: Path) -> Path:
        calls.append(path)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(state, path)

    monkeypatch.setattr(trainer, "save_checkpoint", signalled)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(recipe_file(tmp_path, 2)), "--out", str(out)])
    assert result.exit_code == 128 + signal.SIGINT, result.output
    assert "Traceback" not in result.output and f"snnkit run --resume {out}" in result.stderr
    monkeypatch.undo()
    load_checkpoint(out / "last.pt")
    assert_resumes_to(out, 2)


def test_an_optimizer_overflow_is_the_non_finite_training_message(tmp_path: Path) -> None:
    spec = recipe(tmp_path, 2)
    spec["optimizer"] = {"name": "adam", "lr": 1e38}
    path = tmp_path / "overflow.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    line = one_error(
        runner.invoke(app, ["run", str(path), "--out", str(out)]), 1, "error: epoch 1, batch "
    )
    assert "non-finite" in line and "lower optimizer.lr (now 1e+38)" in line
    load_checkpoint(out / "last.pt")


class Explode(torch.nn.Module):
    """A plugin layer whose forward fails on its first training batch: a call with gradients
    on more than 2 samples (assembly's shape and memory probes use 2, so they pass)."""

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode, self.steps = step_mode, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.shape[1] > 2:
            self.steps += 1
            if self.steps == 1:
                raise ValueError("boom: the plugin's own bug")
        return x


class _ExplodePlugin:
    __name__ = "snnkit_explode"

    @snnkit.hookimpl
    def register_layers(self, register: Any) -> None:
        register("explode", Explode)


def test_an_exception_in_a_plugins_forward_names_the_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snnkit.plugins.loader import build_registry

    registry = build_registry(plugins=[_ExplodePlugin()], entry_points=False)
    monkeypatch.setattr("snnkit.plugins.loader.get_registry", lambda: registry)
    spec = recipe(tmp_path, 2)
    spec["model"]["layers"].insert(2, "explode")
    path = tmp_path / "explode.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    line = one_error(
        runner.invoke(app, ["run", str(path), "--out", str(out)]), 1, "boom: the plugin's own bug"
    )
    assert "explode" in line and "snnkit_explode" in line
    assert load_checkpoint(out / "last.pt")["position"]["epoch"] == 1
