"""Two ``snnkit sweep`` worker processes share one study in a real PostgreSQL server.

The test starts a throwaway server on loopback (``initdb`` + ``postgres`` from the apt package
``postgresql``; skipped with the reason when they or the psycopg2 driver are missing), runs two
workers against one study and checks that every trial ran exactly once and that the study
holds every trial that ran.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

psycopg2 = pytest.importorskip(
    "psycopg2", reason="psycopg2 is not installed (pip install 'snnkit[postgres]')"
)
optuna = pytest.importorskip("optuna")

from snnkit.sweep.study import open_storage  # noqa: E402 - after the skips

ROOT = Path(__file__).resolve().parents[1]


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with an empty database ``sweep`` (user ``snnkit``)."""
    initdb, server = _binary("initdb"), _binary("postgres")
    if not initdb or not server:
        pytest.skip(
            "PostgreSQL is not installed (no initdb/postgres binaries): "
            "apt-get install -y postgresql"
        )
    as_user: dict[str, int] = {}
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid}
    home = Path(tempfile.mkdtemp(prefix="snnkit-pg-"))
    if as_user:
        os.chown(home, as_user["user"], as_user["group"])
    data = home / "data"
    port = _free_port()
    subprocess.run(
        [initdb, "-D", str(data), "-U", "snnkit", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        **as_user,
    )
    proc = subprocess.Popen(
        [server, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(home), "-F"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **as_user,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1", port=port, user="snnkit", dbname="postgres", connect_timeout=2
                )
                break
            except psycopg2.OperationalError as err:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start: {proc.stderr.read()!r}") from err
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE sweep")
        conn.close()
        yield f"postgresql://snnkit@127.0.0.1:{port}/sweep"
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: close client connections
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_study(tmp_path: Path, postgres_url: str) -> None:
    recipe = {
        "seed": 2,
        "time_steps": 3,
        "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 4, 4], "num_classes": 3},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 8},
                "lif",
                {"name": "linear", "in_features": 8, "out_features": 3},
                "lif",
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {
            "epochs": 1,
            "batch_size": 16,
            "max_batches": 1,
            "device": "cpu",
            "num_threads": 1,
        },
        "output": {"dir": "runs", "tensorboard": False},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    (tmp_path / "space.yaml").write_text(
        yaml.safe_dump(
            {
                "optimizer.lr": {"float": [1.0e-3, 1.0e-1], "log": True},
                "model.layers.2.tau": {"float": [1.5, 6.0]},
            }
        )
    )
    trials = 4
    cmd = [
        sys.executable,
        "-m",
        "snnkit",
        "sweep",
        "r.yaml",
        "--space",
        "space.yaml",
        "--trials",
        str(trials),
        "--storage",
        postgres_url,
        "--study",
        "shared",
        "--pruner",
        "none",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SNNKIT_LOAD_PLUGINS": ""}
    workers = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, out + err
    ran = [[int(n) for n in re.findall(r"^trial (\d+): test_acc", out, re.M)] for out, _ in outputs]
    study = optuna.load_study(study_name="shared", storage=open_storage(postgres_url))
    numbers = sorted(t.number for t in study.trials)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    # every trial ran once (in one worker, into its own folder); the study holds them all
    assert sorted(ran[0] + ran[1]) == numbers and not set(ran[0]) & set(ran[1])
    assert trials <= len(numbers) <= trials + 1  # workers starting at one instant: at most +1
    folders = sorted(p.name for p in (tmp_path / "runs" / "shared").glob("trial-*"))
    assert folders == sorted(f"trial-{n}" for n in numbers)
    for t in study.trials:
        rows = Path(t.user_attrs["run_dir"], "metrics.jsonl").read_text().splitlines()
        assert len(rows) == 1 and json.loads(rows[0])["test_acc"] == t.value
