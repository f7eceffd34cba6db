"""``snnkit data``: list, info, fetch, verify, cache list/clear."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from event_files import FileServer, known_events, nmnist_bytes, write_zip
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.data.neuromorphic import factories, sources

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore::snnkit.data.neuromorphic.files.DataWarning")


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def server() -> Iterator[FileServer]:
    s = FileServer()
    try:
        yield s
    finally:
        s.close()


def nmnist_zip(path: Path) -> bytes:
    rng = np.random.default_rng(0)
    write_zip(
        path,
        {f"Test/{d}/00001.bin": nmnist_bytes(known_events(9, 34, 34, 999, rng)) for d in range(3)},
    )
    return path.read_bytes()


def test_list_shows_every_dataset_and_presence(env: Path) -> None:
    nmnist_zip(env / "NMNIST" / "Test.zip")
    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"nmnist", "dvs_gesture", "cifar10_dvs", "shd", "ssc"}
    assert rows["nmnist"]["present"] == "partly" and rows["shd"]["present"] == "no"
    assert runner.invoke(app, ["data", "list"]).exit_code == 0


def test_info_shows_files_checksums_licence_and_citation() -> None:
    result = runner.invoke(app, ["data", "info", "nmnist"])
    assert result.exit_code == 0
    for text in (
        "Train.zip",
        "md5:20959b8e626244a1b502305a9e6e2031",
        "licence:",
        "Orchard",
        "34×34",
        "mendeley",
    ):
        assert text in result.output, text
    shd = runner.invoke(app, ["data", "info", "shd"]).output
    assert "none published; read from https://zenkelab.org/datasets/md5sums.txt" in shd
    gesture = runner.invoke(app, ["data", "info", "dvs_gesture"]).output
    assert "by hand" in gesture and "research.ibm.com" in gesture


def test_unknown_dataset_is_one_error_line_exit_2() -> None:
    for command in (["info", "nmist"], ["fetch", "nmist"], ["verify", "nmist"]):
        result = runner.invoke(app, ["data", *command])
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: unknown neuromorphic dataset")


def test_verify_reports_mismatch_with_exit_1(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = nmnist_zip(env / "NMNIST" / "Test.zip")
    result = runner.invoke(app, ["data", "verify", "nmnist"])
    assert result.exit_code == 1
    assert "MISMATCH" in result.output and "missing" in result.output  # Train.zip is absent
    info = sources.DATASETS["nmnist"]
    good = replace(info.files[1], checksum="md5:" + hashlib.md5(blob).hexdigest())
    monkeypatch.setitem(sources.DATASETS, "nmnist", replace(info, files=(good,)))
    result = runner.invoke(app, ["data", "verify", "nmnist"])
    assert result.exit_code == 0 and result.output.startswith("ok ")


def test_fetch_downloads_missing_files_and_keeps_present_ones(
    env: Path, tmp_path: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = nmnist_zip(tmp_path / "Test.zip")
    server.files["/Test.zip"] = blob
    info = sources.DATASETS["nmnist"]
    test = replace(
        info.files[1],
        urls=(f"{server.url}/Test.zip",),
        checksum="md5:" + hashlib.md5(blob).hexdigest(),
    )
    monkeypatch.setitem(sources.DATASETS, "nmnist", replace(info, files=(test,)))
    result = runner.invoke(app, ["data", "fetch", "nmnist", "--root", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "NMNIST" / "Test.zip").read_bytes() == blob
    again = runner.invoke(app, ["data", "fetch", "nmnist", "--root", str(tmp_path / "r")])
    assert again.output.startswith("have ") and server.requests == ["/Test.zip"]
    server.files.clear()
    bad = runner.invoke(app, ["data", "fetch", "nmnist", "--root", str(tmp_path / "s")])
    assert bad.exit_code == 2 and bad.output.startswith("error: dataset nmnist: files missing")


def test_gesture_fetch_says_where_to_get_the_archive() -> None:
    result = runner.invoke(app, ["data", "fetch", "dvs_gesture"])
    assert result.exit_code == 2 and "research.ibm.com" in result.output


def test_cache_list_and_clear(env: Path) -> None:
    nmnist_zip(env / "NMNIST" / "Test.zip")
    factories.nmnist(False, frames=3)
    factories.nmnist(False, frames=4)
    listed = json.loads(runner.invoke(app, ["data", "cache", "list", "--json"]).output)
    assert sorted(r["spec"]["frames"] for r in listed) == [3, 4]
    assert "nmnist" in runner.invoke(app, ["data", "cache", "list"]).output
    result = runner.invoke(app, ["data", "cache", "clear", "nmnist"])
    assert result.exit_code == 0 and "removed 2 entries" in result.output
    assert json.loads(runner.invoke(app, ["data", "cache", "list", "--json"]).output) == []
