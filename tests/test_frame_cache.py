"""The frame cache: keys, atomic builds, parallel builds, digest sidecars."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from event_files import known_events, nmnist_bytes, write_zip

from snnkit.data import frame_cache
from snnkit.data.neuromorphic import factories
from snnkit.data.neuromorphic.dataset import EventDataset

pytestmark = pytest.mark.filterwarnings("ignore::snnkit.data.neuromorphic.files.DataWarning")


@pytest.fixture(autouse=True)
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@dataclass
class Counts:
    """A frame source: sample i is a [3, 4] array with i at [i % 3, i % 4]; can sleep or fail."""

    n: int
    sleep_from: int | None = None
    fail_at: int | None = None

    def __len__(self) -> int:
        return self.n

    def frames_of(self, i: int) -> np.ndarray:
        if self.fail_at == i:
            raise RuntimeError("boom")
        if self.sleep_from is not None and i >= self.sleep_from:
            time.sleep(60)
        out = np.zeros((3, 4), np.int16)
        out[i % 3, i % 4] = i
        return out


def test_entry_round_trip_serial_and_parallel(cache_root: Path) -> None:
    src = Counts(200)
    labels = np.arange(200) % 5
    seen: list[tuple[int, int]] = []
    a = frame_cache.build_entry(
        "toy",
        "k1",
        src,
        labels,
        (3, 4),
        {"x": 1},
        workers=1,
        progress=lambda d, t: seen.append((d, t)),
    )
    b = frame_cache.build_entry("toy", "k2", src, labels, (3, 4), {"x": 2}, workers=2)
    assert seen[-1] == (200, 200)
    for i in range(200):
        np.testing.assert_array_equal(a.frames(i), src.frames_of(i))
        np.testing.assert_array_equal(b.frames(i), src.frames_of(i))
    np.testing.assert_array_equal(a.labels, labels)
    assert {r["key"] for r in frame_cache.list_entries()} == {"k1", "k2"}
    assert frame_cache.load_entry("toy", "k1") is not None


def test_failed_build_leaves_nothing(cache_root: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        frame_cache.build_entry(
            "toy", "k", Counts(100, fail_at=70), np.zeros(100), (3, 4), {}, workers=1
        )
    assert frame_cache.load_entry("toy", "k") is None
    assert list((cache_root / "toy").iterdir()) == []


def _build_slowly(root: str) -> None:
    os.environ["SNNKIT_CACHE"] = root
    frame_cache.build_entry(
        "toy", "k", Counts(200, sleep_from=150), np.zeros(200), (3, 4), {}, workers=1
    )


def test_killed_build_leaves_no_entry_that_loads(cache_root: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_build_slowly, args=(str(cache_root),))
    child.start()
    deadline = time.monotonic() + 30
    while not list((cache_root / "toy").glob(".k.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert list((cache_root / "toy").glob(".k.tmp-*"))  # the killed build's leftovers…
    assert frame_cache.load_entry("toy", "k") is None  # …never load
    assert frame_cache.list_entries() == []
    entry = frame_cache.build_entry("toy", "k", Counts(10), np.zeros(10), (3, 4), {}, workers=1)
    assert len(entry) == 10
    assert frame_cache.clear("toy") == 2 and not list((cache_root / "toy").iterdir())


def nmnist_zip(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    write_zip(
        root / "NMNIST" / "Test.zip",
        {
            f"Test/{d}/{k:05d}.bin": nmnist_bytes(known_events(20, 34, 34, 10_000, rng))
            for d in range(3)
            for k in range(2)
        },
    )


def test_cache_key_changes_with_every_parameter(
    tmp_path: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nmnist_zip(tmp_path)
    root = str(tmp_path)
    base = factories.nmnist(False, root=root, frames=4)
    key = frame_cache.cache_key(base.cache_spec or {})
    keys = {key}
    for other in (
        factories.nmnist(False, root=root, frames=5),
        factories.nmnist(False, root=root, frames=4, split_by="time"),
    ):
        keys.add(frame_cache.cache_key(other.cache_spec or {}))
    spec = base.cache_key_spec()
    keys.add(frame_cache.cache_key({**spec, "transform": "crop(10)"}))
    monkeypatch.setattr(base.reader, "version", "nmnist-bin-2")
    keys.add(frame_cache.cache_key(base.cache_key_spec()))
    assert len(keys) == 5
    assert len(frame_cache.list_entries()) == 3
    again = factories.nmnist(False, root=root, frames=4)  # same everything: the entry is reused
    assert frame_cache.cache_key(again.cache_spec or {}) == key
    assert len(frame_cache.list_entries()) == 3
    time.sleep(0.01)
    nmnist_zip(tmp_path, seed=1)  # new source files: a new entry, never the stale one
    changed = factories.nmnist(False, root=root, frames=4)
    assert frame_cache.cache_key(changed.cache_spec or {}) != key
    for i in range(len(changed)):
        np.testing.assert_array_equal(changed[i][0].numpy(), changed.frames_of(i))


def test_cached_frames_equal_computed_frames(tmp_path: Path) -> None:
    nmnist_zip(tmp_path)
    cached = factories.nmnist(False, root=str(tmp_path), frames=3, split_by="time")
    plain = factories.nmnist(False, root=str(tmp_path), frames=3, split_by="time", cache=False)
    assert cached.cached and not plain.cached
    for i in range(len(plain)):
        np.testing.assert_array_equal(cached[i][0].numpy(), plain[i][0].numpy())


def test_digest_sidecar_hashes_once_until_the_file_changes(
    tmp_path: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = frame_cache.file_digest
    monkeypatch.setattr(frame_cache, "file_digest", lambda p, a: calls.append(p) or real(p, a))  # type: ignore[func-returns-value]
    f = tmp_path / "big.zip"
    f.write_bytes(b"a" * 1000)
    d1 = frame_cache.cached_digest(f)
    assert frame_cache.cached_digest(f) == d1 and len(calls) == 1
    f.write_bytes(b"b" * 1001)
    assert frame_cache.cached_digest(f) != d1 and len(calls) == 2


def test_dataset_is_usable_when_the_cache_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nmnist_zip(tmp_path)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    monkeypatch.setenv("SNNKIT_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="frame cache cannot be written"):
        ds = factories.nmnist(False, root=str(tmp_path), frames=2)
    assert not ds.cached and ds[0][0].shape == (2, 2, 34, 34)
    assert isinstance(ds, EventDataset)


def test_a_full_disk_while_caching_is_one_data_error_and_leaves_nothing(
    tmp_path: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from snnkit.errors import DataError

    nmnist_zip(tmp_path)
    real_save = np.save
    calls = {"n": 0}

    def save(path: object, arr: object, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the disk fills up in the middle of writing the entry
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arr, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(frame_cache.np, "save", save)
    with pytest.raises(DataError) as info:
        factories.nmnist(False, root=str(tmp_path), frames=2)
    text = str(info.value)
    assert "disk is full" in text and "SNNKIT_CACHE" in text and "\n" not in text
    assert str(cache_root) in text
    leftovers = [p for p in cache_root.rglob("*") if p.is_file() and "digests" not in p.parts]
    assert leftovers == [], leftovers  # nothing half-written stays
    monkeypatch.setattr(frame_cache.np, "save", real_save)
    ds = factories.nmnist(False, root=str(tmp_path), frames=2)  # space again: a clean build
    assert ds.cached and ds[0][0].shape == (2, 2, 34, 34)
