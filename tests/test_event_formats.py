"""Event-file readers and frame integration, on files written here in the official byte layouts."""

from __future__ import annotations

import numpy as np
import pytest
from event_files import (  # the shared writers in tests/event_files.py
    RNG,
    aedat3_bytes,
    assert_events,
    known_events,
    nmnist_bytes,
    polarity_body,
    write_shd,
)

from snnkit.data.event_formats import (
    AEDAT3_HEADER_END,
    parse_aedat2_dvs128,
    parse_aedat3,
    parse_nmnist,
)
from snnkit.data.frames import audio_frames, camera_frames, frame_index
from snnkit.errors import DataError

# -- N-MNIST ----------------------------------------------------------------------------------


def test_nmnist_events_read_back_exactly() -> None:
    ev = known_events(500, 34, 34, 1 << 23)
    got = parse_nmnist(nmnist_bytes(ev))
    assert_events(got, ev)
    assert got.dtype.names == ("t", "x", "y", "p")


def test_nmnist_hand_decoded_event() -> None:
    # x=3, y=17, p=1, t = 0x5A_1234: third byte 1·128 + 0x5A
    got = parse_nmnist(bytes([3, 17, 0x80 | 0x5A, 0x12, 0x34]))
    assert (got["x"][0], got["y"][0], got["p"][0], got["t"][0]) == (3, 17, 1, 0x5A1234)


def test_nmnist_truncated_file_is_a_data_error() -> None:
    with pytest.raises(DataError, match="truncated"):
        parse_nmnist(b"\x01\x02\x03\x04\x05\x06\x07", "Train/0/00002.bin")


# -- AEDAT 3.1 ---------------------------------------------------------------------------------


def test_aedat3_polarity_packets_read_back_skipping_other_types() -> None:
    a = known_events(300, 128, 128, 2**31 - 1)
    b = known_events(200, 128, 128, 1000)
    imu = bytes(range(36)) * 4  # four 36-byte IMU6 events: skipped
    valid = np.ones(200, bool)
    valid[::7] = False
    data = aedat3_bytes(
        [(1, 0, polarity_body(a), 8), (2, 0, imu, 36), (1, 1, polarity_body(b, valid), 8)]
    )
    got = parse_aedat3(data)
    want = {k: np.concatenate([a[k], b[k][valid]]) for k in a}
    want["t"] = np.concatenate([a["t"], (1 << 31) + b["t"][valid]])
    assert_events(got, want)


@pytest.mark.parametrize(
    "data, what",
    [
        (b"#!AER-DAT3.1\r\n no end", "END-HEADER"),
        (b"garbage" + AEDAT3_HEADER_END, "AEDAT 3"),
    ],
)
def test_aedat3_corrupt_header_is_a_data_error(data: bytes, what: str) -> None:
    with pytest.raises(DataError, match=what):
        parse_aedat3(data, "user01_fluorescent.aedat")


def test_aedat3_truncated_packet_is_a_data_error() -> None:
    data = aedat3_bytes([(1, 0, polarity_body(known_events(10, 128, 128, 99)), 8)])
    with pytest.raises(DataError, match="user01.aedat: .*truncated"):
        parse_aedat3(data[:-5], "user01.aedat")
    with pytest.raises(DataError, match="truncated"):
        parse_aedat3(data[: len(data) - 80 - 10], "user01.aedat")


# -- AEDAT 2.0 (CIFAR10-DVS) -------------------------------------------------------------------


def test_aedat2_dvs128_events_read_back() -> None:
    ev = known_events(400, 128, 128, 2**32 - 1)
    addr = ((127 - ev["x"]) << 1) | (ev["y"] << 8) | ev["p"]
    rec = np.empty(400, dtype=[("a", ">u4"), ("t", ">u4")])
    rec["a"], rec["t"] = addr, ev["t"]
    data = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + rec.tobytes()
    assert_events(parse_aedat2_dvs128(data), ev)
    with pytest.raises(DataError, match="truncated"):
        parse_aedat2_dvs128(data[:-3], "airplane_0.aedat")


# -- frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, frames", [(0, 4), (3, 5), (10, 3), (1000, 16), (17, 17)])
def test_split_by_number_counts_differ_by_at_most_one(n: int, frames: int) -> None:
    f = frame_index(np.arange(n), frames, "number")
    counts = np.bincount(f, minlength=frames)
    assert len(counts) == frames and counts.sum() == n
    assert counts.max() - counts.min() <= 1
    assert np.all(np.diff(f) >= 0)  # consecutive slices
    q, r = divmod(n, frames)
    np.testing.assert_array_equal(counts, [q + 1] * r + [q] * (frames - r))


def test_split_by_time_equal_windows_and_empty_frames() -> None:
    t = np.array([100, 101, 150, 199, 200, 400])  # span 300, T = 3: windows of 100 µs
    np.testing.assert_array_equal(frame_index(t, 3, "time"), [0, 0, 0, 0, 1, 2])
    t = np.array([0, 10, 90, 100])  # T = 5: windows 1..3 are empty
    f = frame_index(t, 5, "time")
    np.testing.assert_array_equal(np.bincount(f, minlength=5), [2, 0, 0, 0, 2])


def test_split_by_time_single_timestamp_goes_to_first_frame() -> None:
    np.testing.assert_array_equal(frame_index(np.array([5, 5, 5]), 4, "time"), [0, 0, 0])


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_camera_frames_equal_a_histogram_of_the_events(split_by: str) -> None:
    ev = known_events(2000, 34, 34, 300_000)
    arr = parse_nmnist(nmnist_bytes(ev))
    frames = camera_frames(arr, 7, split_by, (34, 34))  # type: ignore[arg-type]
    assert frames.shape == (7, 2, 34, 34)
    f = frame_index(ev["t"], 7, split_by)  # type: ignore[arg-type]
    want = np.zeros((7, 2, 34, 34), np.int64)
    for i in range(2000):  # the histogram, one event at a time
        want[f[i], ev["p"][i], ev["y"][i], ev["x"][i]] += 1
    np.testing.assert_array_equal(frames, want)


def test_camera_frames_refuse_events_outside_the_sensor() -> None:
    arr = parse_nmnist(bytes([40, 1, 0, 0, 1]))
    with pytest.raises(DataError, match="sensor"):
        camera_frames(arr, 2, "number", (34, 34), "Test/3/00001.bin")


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_audio_frames_equal_a_histogram(split_by: str) -> None:
    n, c = 500, 700
    ev = np.empty(n, dtype=[("t", np.int64), ("x", np.int16)])
    ev["t"] = np.sort(RNG.integers(0, 1_000_000, n))
    ev["x"] = RNG.integers(0, c, n)
    frames = audio_frames(ev, 10, split_by, c)  # type: ignore[arg-type]
    f = frame_index(ev["t"], 10, split_by)  # type: ignore[arg-type]
    want = np.zeros((10, c), np.int64)
    np.add.at(want, (f, ev["x"]), 1)
    np.testing.assert_array_equal(frames, want)


# -- SHD / SSC (HDF5) --------------------------------------------------------------------------


def test_shd_h5_reads_back_times_in_microseconds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from snnkit.data.event_formats import read_spike_h5

    samples = [
        (np.array([0.0, 0.0125, 0.5], np.float32), np.array([3, 699, 0], np.uint16)),
        (np.array([], np.float32), np.array([], np.uint16)),
    ]
    write_shd(tmp_path / "shd_train.h5", samples, [4, 19])
    events, labels = read_spike_h5(tmp_path / "shd_train.h5")
    np.testing.assert_array_equal(labels, [4, 19])
    np.testing.assert_array_equal(events[0]["t"], [0, 12500, 500000])
    np.testing.assert_array_equal(events[0]["x"], [3, 699, 0])
    assert len(events[1]) == 0


def test_shd_h5_without_spike_times_is_a_data_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from snnkit.data.event_formats import read_spike_h5

    write_shd(
        tmp_path / "bad.h5",
        [(np.zeros(1, np.float32), np.zeros(1, np.uint16))],
        [0],
        drop="spikes/times",
    )
    with pytest.raises(DataError, match=r"bad.h5: no spikes/times"):
        read_spike_h5(tmp_path / "bad.h5")
    (tmp_path / "cut.h5").write_bytes((tmp_path / "bad.h5").read_bytes()[:100])
    with pytest.raises(DataError, match="cut.h5: not a readable HDF5"):
        read_spike_h5(tmp_path / "cut.h5")
