"""Neuromorphic datasets on small files written here in the official layouts."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from event_files import (  # shared writers in tests/event_files.py
    FileServer,
    aedat2_bytes,
    aedat3_bytes,
    assert_events,
    gzip_file,
    known_events,
    nmnist_bytes,
    polarity_body,
    write_shd,
    write_zip,
)

from snnkit.data.frames import frame_index
from snnkit.data.neuromorphic import factories, sources
from snnkit.data.neuromorphic.files import DataWarning
from snnkit.errors import DataError
from snnkit.plugins.loader import build_registry

# files written here are not the published archives: their checksum warning is expected
pytestmark = pytest.mark.filterwarnings("ignore::snnkit.data.neuromorphic.files.DataWarning")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SNNKIT_DATA", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def server() -> Iterator[FileServer]:
    s = FileServer()
    try:
        yield s
    finally:
        s.close()


def histogram(ev: np.ndarray, frames: int, split_by: str, h: int, w: int) -> np.ndarray:
    f = frame_index(ev["t"], frames, split_by)  # type: ignore[arg-type]
    out = np.zeros((frames, 2, h, w), np.float32)
    for i in range(len(ev)):
        out[f[i], ev["p"][i], ev["y"][i], ev["x"][i]] += 1
    return out


# -- N-MNIST ----------------------------------------------------------------------------------


def nmnist_files(
    root: Path,
    split: str = "Test",
    per_digit: int = 2,
) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    members = {}
    for digit in (0, 1, 7):
        for k in range(per_digit):
            ev = known_events(int(rng.integers(5, 60)), 34, 34, 300_000, rng)
            members[f"{split}/{digit}/{k * 10 + 2:05d}.bin"] = ev
    write_zip(
        root / "NMNIST" / f"{split}.zip", {name: nmnist_bytes(ev) for name, ev in members.items()}
    )
    return members


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("cache", [False, True])
def test_nmnist_zip_events_frames_and_labels(tmp_path: Path, split_by: str, cache: bool) -> None:
    members = nmnist_files(tmp_path)
    with pytest.warns(DataWarning, match="Test.zip has md5"):  # not the published archive
        ds = factories.nmnist(
            False, root=str(tmp_path), download=False, frames=5, split_by=split_by, cache=cache
        )  # type: ignore[arg-type]
    assert len(ds) == 6 and ds.cached is cache
    names = sorted(members, key=lambda n: (int(n.split("/")[1]), n))
    for i, name in enumerate(names):
        assert_events(ds.events(i), members[name])
        frames, label = ds[i]
        assert isinstance(label, int) and label == int(name.split("/")[1])
        assert frames.dtype == torch.float32 and frames.shape == (5, 2, 34, 34)
        np.testing.assert_array_equal(frames.numpy(), histogram(ds.events(i), 5, split_by, 34, 34))
    assert ds.events(-1).dtype.names == ("t", "x", "y", "p")
    with pytest.raises(IndexError):
        ds[6]


def test_nmnist_extracted_folder_reads_the_same(tmp_path: Path) -> None:
    members = nmnist_files(tmp_path / "zip")
    for name, ev in members.items():
        path = tmp_path / "dir" / "NMNIST" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nmnist_bytes(ev))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a = factories.nmnist(False, root=str(tmp_path / "zip"), download=False, cache=False)
    b = factories.nmnist(False, root=str(tmp_path / "dir"), download=False, cache=False)
    assert len(a) == len(b) == 6
    for i in range(6):
        np.testing.assert_array_equal(a.events(i), b.events(i))
        assert a[i][1] == b[i][1]


def test_nmnist_truncated_member_fails_the_build(tmp_path: Path) -> None:
    ev = known_events(10, 34, 34, 1000)
    write_zip(
        tmp_path / "NMNIST" / "Test.zip",
        {"Test/3/00001.bin": nmnist_bytes(ev), "Test/3/00002.bin": nmnist_bytes(ev)[:-2]},
    )
    with pytest.raises(DataError, match=r"Test.zip: member Test/3/00002.bin .*truncated"):
        factories.nmnist(False, root=str(tmp_path), download=False, cache=False)


def test_nmnist_truncated_archive_fails_the_build(tmp_path: Path) -> None:
    nmnist_files(tmp_path)
    path = tmp_path / "NMNIST" / "Test.zip"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"Test.zip: not a readable zip"):
        factories.nmnist(False, root=str(tmp_path), download=False, cache=False)


def test_missing_files_without_download_name_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        factories.nmnist(True, root=str(tmp_path), download=False)
    text = str(err.value)
    assert f"files missing in {tmp_path / 'NMNIST'}: Train.zip" in text and "\n" not in text


def test_registry_builds_a_neuromorphic_dataset(tmp_path: Path) -> None:
    nmnist_files(tmp_path)
    reg = build_registry(entry_points=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ds = reg.build(
            "dataset",
            {
                "name": "nmnist",
                "root": str(tmp_path),
                "frames": "3",
                "split_by": "time",
                "download": False,
            },
            train=False,
        )
    assert ds.input_shape == (3, 2, 34, 34) and ds[0][0].shape == (3, 2, 34, 34)
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers get a copy
    np.testing.assert_array_equal(clone[1][0], ds[1][0])
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 3, 2, 34, 34) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == ds.targets[:4].tolist()


# -- downloads --------------------------------------------------------------------------------


def _serve_nmnist(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksum_of: bytes | None
) -> bytes:
    nmnist_files(tmp_path / "src")
    blob = (tmp_path / "src" / "NMNIST" / "Test.zip").read_bytes()
    server.files["/Test.zip"] = blob
    info = sources.DATASETS["nmnist"]
    md5 = "md5:" + hashlib.md5(checksum_of if checksum_of is not None else blob).hexdigest()
    test = replace(
        info.files[1], urls=(f"{server.url}/missing", f"{server.url}/Test.zip"), checksum=md5
    )
    monkeypatch.setitem(sources.DATASETS, "nmnist", replace(info, files=(info.files[0], test)))
    return blob


def test_download_verifies_against_the_published_checksum(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = _serve_nmnist(server, tmp_path, monkeypatch, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # a verified download warns about nothing
        ds = factories.nmnist(False, root=str(tmp_path / "data"), cache=False)
    assert len(ds) == 6 and (tmp_path / "data" / "NMNIST" / "Test.zip").read_bytes() == blob


def test_download_with_a_wrong_checksum_is_refused(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_nmnist(server, tmp_path, monkeypatch, b"something else")
    with pytest.raises(DataError, match="checksum is not the published"):
        factories.nmnist(False, root=str(tmp_path / "data"), cache=False)
    assert not (tmp_path / "data" / "NMNIST" / "Test.zip").exists()


def test_offline_download_names_folder_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = sources.DATASETS["nmnist"]
    dead = replace(info.files[1], urls=("http://127.0.0.1:9/Test.zip",))
    monkeypatch.setitem(sources.DATASETS, "nmnist", replace(info, files=(info.files[0], dead)))
    with pytest.raises(DataError) as err:
        factories.nmnist(False, root=str(tmp_path))
    text = str(err.value)
    assert str(tmp_path / "NMNIST") in text and "Test.zip" in text and "download failed" in text


def test_hand_placed_file_with_another_checksum_is_one_warning(tmp_path: Path) -> None:
    nmnist_files(tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        factories.nmnist(False, root=str(tmp_path), download=True, cache=False)
    ours = [w for w in seen if issubclass(w.category, DataWarning)]
    assert len(ours) == 1 and "published 69ca8762b2fe404d9b9bad1103e97832" in str(ours[0].message)


# -- DVS128 Gesture ---------------------------------------------------------------------------


def gesture_archive(root: Path, *, corrupt: str | None = None) -> dict[str, np.ndarray]:
    """Two train recordings and one test recording; returns each recording's events."""
    rng = np.random.default_rng(5)
    recordings = {}
    files: dict[str, bytes] = {}
    rows = {  # overlapping (100-300 / 200-400), touching (400-500 / 500-600), outside (>= 600)
        "user01_fluorescent": [(3, 100, 300), (11, 200, 400), (1, 400, 500), (2, 500, 600)],
        "user02_lab": [(5, 0, 350)],
        "user24_led": [(7, 50, 150), (8, 150, 700)],
    }
    for name, label_rows in rows.items():
        ev = known_events(400, 128, 128, 800, rng)
        half = 200
        a = {k: v[:half] for k, v in ev.items()}
        b = {k: v[half:] for k, v in ev.items()}
        data = aedat3_bytes(
            [(1, 0, polarity_body(a), 8), (2, 0, bytes(36), 36), (1, 0, polarity_body(b), 8)]
        )
        if corrupt == name:
            data = b"#!AER-DAT9" + data[10:]
        recordings[name] = ev
        files[f"DvsGesture/{name}.aedat"] = data
        files[f"DvsGesture/{name}_labels.csv"] = (
            "class,startTime_usec,endTime_usec\n"
            + "".join(f"{c},{s},{e}\n" for c, s, e in label_rows)
        ).encode()
    files["DvsGesture/trials_to_train.txt"] = b"user01_fluorescent.aedat\nuser02_lab.aedat\n"
    files["DvsGesture/trials_to_test.txt"] = b"user24_led.aedat\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    (root / "DVSGesture").mkdir(parents=True, exist_ok=True)
    (root / "DVSGesture" / "DvsGesture.tar.gz").write_bytes(buf.getvalue())
    return recordings


def test_gesture_segments_overlapping_touching_and_outside(tmp_path: Path) -> None:
    recordings = gesture_archive(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ds = factories.dvs_gesture(True, root=str(tmp_path), frames=4, cache=True)
    assert (tmp_path / "DVSGesture" / "extracted" / "DvsGesture").is_dir()
    ev = recordings["user01_fluorescent"]
    want = [(100, 300, 2), (200, 400, 10), (400, 500, 0), (500, 600, 1)]
    assert len(ds) == 5 and ds.num_classes == 11
    for i, (start, end, label) in enumerate(want):
        keep = (ev["t"] >= start) & (ev["t"] < end)
        assert_events(ds.events(i), {k: v[keep] for k, v in ev.items()})
        frames, got_label = ds[i]
        assert got_label == label
        np.testing.assert_array_equal(
            frames.numpy(), histogram(ds.events(i), 4, "number", 128, 128)
        )
    # overlap: events of 200 <= t < 300 are in two samples; events at t >= 600 in none
    assert sum(len(ds.events(i)) for i in range(4)) == int(
        ((ev["t"] >= 100) & (ev["t"] < 600)).sum() + ((ev["t"] >= 200) & (ev["t"] < 300)).sum()
    )
    test = factories.dvs_gesture(False, root=str(tmp_path), cache=False)
    assert [test[i][1] for i in range(len(test))] == [6, 7]


def test_gesture_archive_is_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        factories.dvs_gesture(True, root=str(tmp_path))
    text = str(err.value)
    assert "DvsGesture.tar.gz" in text and sources._IBM in text
    assert str(tmp_path / "DVSGesture") in text


def test_gesture_corrupt_aedat_header_fails_the_build(tmp_path: Path) -> None:
    gesture_archive(tmp_path, corrupt="user02_lab")
    with pytest.raises(DataError, match=r"user02_lab.aedat: not an AEDAT 3"):
        factories.dvs_gesture(True, root=str(tmp_path), cache=False)


def test_gesture_half_extracted_archive_is_never_read(tmp_path: Path) -> None:
    gesture_archive(tmp_path)
    folder = tmp_path / "DVSGesture"
    left = folder / ".extracted.killed" / "DvsGesture"  # what a killed extraction leaves
    left.mkdir(parents=True)
    (left / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    ds = factories.dvs_gesture(True, root=str(tmp_path), cache=False)
    assert len(ds) == 5
    # a hand-extracted folder that lacks a listed recording is refused at build
    by_hand = folder / "DvsGesture"
    by_hand.mkdir()
    (by_hand / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    with pytest.raises(DataError, match="files missing: user01_fluorescent.aedat"):
        factories.dvs_gesture(True, root=str(tmp_path), cache=False)


# -- CIFAR10-DVS ------------------------------------------------------------------------------


def cifar_files(root: Path, per_class: int = 10) -> dict[tuple[str, int], np.ndarray]:
    rng = np.random.default_rng(9)
    out = {}
    for cls in sources.DATASETS["cifar10_dvs"].classes:
        members = {}
        for k in range(per_class):
            ev = known_events(int(rng.integers(3, 40)), 128, 128, 10**6, rng)
            members[f"{cls}/cifar10_{cls}_{k}.aedat"] = aedat2_bytes(ev)
            out[(cls, k)] = ev
        write_zip(root / "CIFAR10DVS" / f"{cls}.zip", members)
    return out


def test_cifar10_dvs_fixed_split_and_events(tmp_path: Path) -> None:
    recordings = cifar_files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        train = factories.cifar10_dvs(True, root=str(tmp_path), frames=2, cache=False)
        test = factories.cifar10_dvs(False, root=str(tmp_path), frames=2, cache=False)
    assert len(train) == 90 and len(test) == 10
    assert np.bincount(train.targets).tolist() == [9] * 10
    order = np.random.default_rng(0).permutation(10)  # the documented split
    held_out = int(order[9])
    members = {s.member for s in test.reader.samples}
    assert f"airplane/cifar10_airplane_{held_out}.aedat" in members
    seen = {s.member for s in train.reader.samples} | members
    assert len(seen) == 100
    i = [s.member for s in test.reader.samples].index(f"airplane/cifar10_airplane_{held_out}.aedat")
    assert_events(test.events(i), recordings[("airplane", held_out)])
    assert test[i][1] == 0 and test[i][0].shape == (2, 2, 128, 128)


def test_cifar10_dvs_corrupt_member_fails_the_build(tmp_path: Path) -> None:
    cifar_files(tmp_path, per_class=2)
    write_zip(
        tmp_path / "CIFAR10DVS" / "dog.zip",
        {"dog/cifar10_dog_0.aedat": b"garbage", "dog/cifar10_dog_1.aedat": b"#!AER"},
    )
    with pytest.raises(DataError, match=r"dog.zip:dog/cifar10_dog_0.aedat: not an AEDAT 2.0"):
        factories.cifar10_dvs(True, root=str(tmp_path), download=False, cache=False)


# -- SHD / SSC --------------------------------------------------------------------------------


def shd_samples(n: int = 4) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    rng = np.random.default_rng(11)
    samples = []
    for _ in range(n):
        k = int(rng.integers(1, 50))
        samples.append(
            (np.sort(rng.random(k)).astype(np.float32), rng.integers(0, 700, k).astype(np.uint16))
        )
    return samples, [int(v) for v in rng.integers(0, 20, n)]


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_shd_gz_is_unpacked_once_and_read(tmp_path: Path, split_by: str) -> None:
    samples, labels = shd_samples()
    folder = tmp_path / "SHD"
    folder.mkdir()
    write_shd(tmp_path / "plain.h5", samples, labels)
    gzip_file(tmp_path / "plain.h5", folder / "shd_test.h5.gz")
    ds = factories.shd(False, root=str(tmp_path), frames=7, split_by=split_by)  # type: ignore[arg-type]
    assert (folder / "shd_test.h5").is_file()
    assert sorted(p.name for p in folder.iterdir()) == ["shd_test.h5", "shd_test.h5.gz"]
    assert len(ds) == 4 and ds.targets.tolist() == labels
    for i, (times, units) in enumerate(samples):
        ev = ds.events(i)
        np.testing.assert_array_equal(ev["t"], np.rint(times.astype(np.float64) * 1e6))
        np.testing.assert_array_equal(ev["x"], units)
        f = frame_index(ev["t"], 7, split_by)  # type: ignore[arg-type]
        want = np.zeros((7, 700), np.float32)
        np.add.at(want, (f, ev["x"].astype(np.int64)), 1)
        frames, label = ds[i]
        assert label == labels[i]
        np.testing.assert_array_equal(frames.numpy(), want)


def test_shd_h5_without_spikes_fails_the_build(tmp_path: Path) -> None:
    samples, labels = shd_samples(2)
    (tmp_path / "SHD").mkdir()
    write_shd(tmp_path / "SHD" / "shd_train.h5", samples, labels, drop="spikes/times")
    with pytest.raises(DataError, match=r"shd_train.h5: no spikes/times"):
        factories.shd(True, root=str(tmp_path), cache=False)


def test_truncated_gz_fails_and_leaves_no_h5(tmp_path: Path) -> None:
    samples, labels = shd_samples(2)
    (tmp_path / "SSC").mkdir()
    write_shd(tmp_path / "plain.h5", samples, labels)
    gz = gzip_file(tmp_path / "plain.h5", tmp_path / "SSC" / "ssc_valid.h5.gz")
    gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    with pytest.raises(DataError, match="ssc_valid.h5.gz: cannot be unpacked"):
        factories.ssc(False, root=str(tmp_path), eval_split="valid", cache=False)
    assert [p.name for p in (tmp_path / "SSC").iterdir()] == ["ssc_valid.h5.gz"]


def test_shd_download_uses_the_published_checksum_list(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, labels = shd_samples(3)
    write_shd(tmp_path / "plain.h5", samples, labels)
    blob = gzip_file(tmp_path / "plain.h5", tmp_path / "x.gz").read_bytes()
    server.files["/shd_test.h5.gz"] = blob
    server.files["/md5sums.txt"] = (
        f"{hashlib.md5(b'other').hexdigest()}  shd_train.h5.gz\n"
        f"{hashlib.md5(blob).hexdigest()}  shd_test.h5.gz\n"
    ).encode()
    info = sources.DATASETS["shd"]
    moved = tuple(
        replace(f, urls=(f"{server.url}/{f.name}",), checksum_list=f"{server.url}/md5sums.txt")
        for f in info.files
    )
    monkeypatch.setitem(sources.DATASETS, "shd", replace(info, files=moved))
    ds = factories.shd(False, root=str(tmp_path / "data"), cache=False)
    assert len(ds) == 3 and "/md5sums.txt" in server.requests
    server.files["/shd_train.h5.gz"] = blob  # the list says otherwise: refused
    with pytest.raises(DataError, match="checksum is not the published"):
        factories.shd(True, root=str(tmp_path / "data"), cache=False)


def test_forked_loader_workers_open_their_own_handles(tmp_path: Path) -> None:
    nmnist_files(tmp_path, per_digit=6)
    samples, labels = shd_samples(12)
    (tmp_path / "SHD").mkdir()
    write_shd(tmp_path / "SHD" / "shd_test.h5", samples, labels)
    for ds in (
        factories.nmnist(False, root=str(tmp_path), frames=2, cache=False),
        factories.shd(False, root=str(tmp_path), frames=2, cache=False),
    ):
        want = torch.stack([ds[i][0] for i in range(len(ds))])  # the parent's handles are open
        loader = torch.utils.data.DataLoader(
            ds, batch_size=3, num_workers=2, multiprocessing_context="fork"
        )
        got = torch.cat([x for x, _ in loader])
        assert torch.equal(got, want)
