"""Transforms: the event equations on known events, the torchvision wrappers, the seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnkit.components.transforms import events as ev_t
from snnkit.components.transforms import images as im_t
from snnkit.data.event_formats import AUDIO_EVENT, CAMERA_EVENT
from snnkit.data.images import InMemoryDataset
from snnkit.data.transformed import (
    EventPipeline,
    TransformedDataset,
    sample_seed,
    split_pre_cache,
)
from snnkit.plugins.loader import build_registry
from snnkit.plugins.registry import Kind

SENSOR = (4, 5)  # H, W


def cam(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Camera events from (t, x, y, p) rows."""
    out = np.empty(len(rows), CAMERA_EVENT)
    for i, (t, x, y, p) in enumerate(rows):
        out[i] = (t, x, y, p)
    return out


def rows(ev: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in e) for e in ev]


def test_denoise_keeps_events_with_a_recent_neighbour() -> None:
    ev = cam(
        [
            (0, 1, 1, 0),  # first event: no earlier neighbour -> dropped
            (5, 2, 1, 1),  # right of (1,1), 5 us later -> kept
            (6, 2, 1, 0),  # its own pixel does not count; (1,1) at t=0: 0 + 10 > 6 -> kept
            (50, 3, 1, 0),  # neighbour (2,1) last at t=6: 6 + 10 > 50? no -> dropped
            (55, 3, 2, 1),  # neighbour (3,1) at t=50 -> kept
            (55, 0, 3, 0),  # corner, no neighbour ever -> dropped
            (60, 4, 2, 0),  # neighbour (3,2) at t=55 -> kept
            (64, 3, 2, 1),  # neighbour (4,2) at 60 -> kept (diagonal ones never count)
        ]
    )
    got = ev_t.denoise(ev, SENSOR, filter_time=10)
    assert rows(got) == [rows(ev)[i] for i in (1, 2, 4, 6, 7)]
    # the rule is strict: last + filter_time > t
    assert len(ev_t.denoise(cam([(0, 1, 1, 0), (10, 2, 1, 0)]), SENSOR, 10)) == 0
    assert len(ev_t.denoise(cam([(0, 1, 1, 0), (9, 2, 1, 0)]), SENSOR, 10)) == 1


def test_denoise_matches_a_per_event_loop_on_random_events() -> None:
    rng = np.random.default_rng(1)
    n = 400
    ev = cam(
        list(
            zip(
                np.sort(rng.integers(0, 2000, n)).tolist(),
                rng.integers(0, 5, n).tolist(),
                rng.integers(0, 4, n).tolist(),
                rng.integers(0, 2, n).tolist(),
                strict=True,
            )
        )
    )
    memory = np.full((4 + 2, 5 + 2), -(10**9))  # padded: neighbours outside never fire
    keep = []
    for t, x, y, _ in rows(ev):
        near = [memory[y + 1, x], memory[y + 1, x + 2], memory[y, x + 1], memory[y + 2, x + 1]]
        keep.append(max(near) + 100 > t)
        memory[y + 1, x + 1] = t
    assert rows(ev_t.denoise(ev, SENSOR, 100)) == [r for r, k in zip(rows(ev), keep) if k]


def test_drop_downsample_flip_crop_and_jitter_equations() -> None:
    ev = cam([(10, 0, 0, 0), (20, 4, 3, 1), (30, 3, 1, 1), (40, 2, 2, 0)])
    rng = np.random.default_rng(0)
    u = np.random.default_rng(0).random(4)
    assert rows(ev_t.drop_events(ev, 0.5, rng)) == [r for r, v in zip(rows(ev), u) if v >= 0.5]
    assert rows(ev_t.downsample(ev, 2)) == [
        (10, 0, 0, 0),
        (20, 2, 1, 1),
        (30, 1, 0, 1),
        (40, 1, 1, 0),
    ]
    assert ev_t.Downsample(2).sensor((4, 5)) == (2, 3)
    assert [r[1] for r in rows(ev_t.flip_events(ev, SENSOR, "x"))] == [4, 0, 1, 2]
    assert [r[2] for r in rows(ev_t.flip_events(ev, SENSOR, "y"))] == [3, 0, 2, 1]
    assert [r[3] for r in rows(ev_t.flip_events(ev, SENSOR, "p"))] == [1, 0, 0, 1]
    assert rows(ev_t.crop_events(ev, 1, 1, 3, 2)) == [(30, 2, 0, 1), (40, 1, 1, 0)]
    assert ev_t.CropEvents(3, 2, 1, 1).sensor(SENSOR) == (2, 3)
    with pytest.raises(ValueError, match="does not fit"):
        ev_t.CropEvents(5, 2, 1, 1).sensor(SENSOR)
    shift = np.rint(np.random.default_rng(3).standard_normal(4) * 15.0).astype(np.int64)
    want = np.maximum(np.array([10, 20, 30, 40]) + shift, 0)
    got = ev_t.time_jitter(ev, 15.0, np.random.default_rng(3))
    assert got["t"].tolist() == sorted(want.tolist())
    assert np.all(np.diff(got["t"]) >= 0)
    assert rows(ev) == [(10, 0, 0, 0), (20, 4, 3, 1), (30, 3, 1, 1), (40, 2, 2, 0)]  # untouched


def test_audio_events_downsample_and_camera_only_transforms_refuse_them() -> None:
    ev = np.zeros(3, AUDIO_EVENT)
    ev["t"], ev["x"] = [1, 2, 3], [0, 5, 699]
    assert ev_t.downsample(ev, 10)["x"].tolist() == [0, 0, 69]
    assert ev_t.Downsample(10).sensor((700,)) == (70,)
    with pytest.raises(ValueError, match="camera events"):
        ev_t.denoise(ev, (700,), 10)


def test_cutout_box_zeroes_the_square_clipped_to_the_image() -> None:
    x = torch.ones(1, 6, 6)
    out = im_t.cutout_box(x, 4, 1, 4)  # rows -1..2 -> 0..2, cols 2..5
    want = torch.ones(1, 6, 6)
    want[:, 0:3, 2:6] = 0
    assert torch.equal(out, want) and torch.equal(x, torch.ones(1, 6, 6))


def test_torchvision_wrappers_keep_shape_and_dtype_and_normalize_is_the_equation() -> None:
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    for t in (
        im_t.random_crop(32, padding=4),
        im_t.horizontal_flip(1.0),
        im_t.auto_augment("cifar10"),
        im_t.random_erasing(1.0),
        im_t.cutout(8),
    ):
        y = t(x)
        assert y.shape == x.shape and y.dtype == torch.uint8
    assert torch.equal(im_t.horizontal_flip(1.0)(x), x.flip(-1))
    assert im_t.random_crop(28)(x).shape == (3, 28, 28)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    got = im_t.normalize(mean, std)(x)
    want = (x.float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(got, want)
    frames = torch.rand(4, 2, 10, 10)
    cropped = im_t.random_crop(8, padding=1)(frames)  # one crop for all frames
    assert cropped.shape == (4, 2, 8, 8)


def test_registry_lists_the_transform_kind() -> None:
    reg = build_registry()
    names = reg.names(Kind.TRANSFORM)
    for name in (
        "random_crop",
        "horizontal_flip",
        "normalize",
        "auto_augment",
        "random_erasing",
        "cutout",
        "denoise",
        "drop_events",
        "downsample",
        "flip_events",
        "time_jitter",
        "crop_events",
    ):
        assert name in names
    t = reg.build(Kind.TRANSFORM, {"name": "denoise", "filter_time": 500})
    assert t.stage == "events" and not t.random and t.filter_time == 500


def test_sample_seed_is_the_splitmix_equation() -> None:
    mask = (1 << 64) - 1
    z = (3 * 0x9E3779B97F4A7C15 + 2 * 0xBF58476D1CE4E5B9 + 7) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    assert sample_seed(3, 2, 7) == (z ^ (z >> 31)) >> 1
    assert len({sample_seed(0, e, i) for e in range(5) for i in range(100)}) == 500


def test_transformed_samples_depend_on_seed_epoch_and_index_only() -> None:
    data = InMemoryDataset(
        torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8), torch.arange(6) % 2, 2
    )
    ds = TransformedDataset(data, [im_t.random_crop(8, padding=2), im_t.horizontal_flip()], 5)
    torch.manual_seed(1)
    before = torch.get_rng_state()
    a = [ds.sample(i, 3)[0] for i in range(6)]
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is untouched
    b = [ds.sample(i, 3)[0] for i in reversed(range(6))][::-1]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    c = [ds.sample(i, 4)[0] for i in range(6)]
    assert any(not torch.equal(p, q) for p, q in zip(a, c))
    assert ds.input_shape == (3, 8, 8) and ds.streamed and ds.num_classes == 2
    shrunk = TransformedDataset(data, [im_t.random_crop(6)], 0)
    assert shrunk.input_shape == (3, 6, 6)


def test_pre_cache_split_and_pipeline() -> None:
    chain = [ev_t.Denoise(10), ev_t.Downsample(2), ev_t.DropEvents(0.1), ev_t.CropEvents(1, 1)]
    assert split_pre_cache(chain) == 2
    assert split_pre_cache([im_t.horizontal_flip(), ev_t.Denoise()]) == 0
    pipe = EventPipeline(chain[:2], [{"name": "denoise"}, {"name": "downsample"}])
    assert pipe.sensor((34, 34)) == (17, 17)
    ev = cam([(0, 4, 4, 0), (1, 5, 4, 1), (2, 9, 9, 0)])
    assert rows(pipe(ev, (34, 34))) == [(1, 2, 2, 1)]


def test_snnkit_list_transform_shows_them(only_builtins: None) -> None:
    from typer.testing import CliRunner

    from snnkit.cli.app import app

    result = CliRunner().invoke(app, ["list", "transform", "--json"])
    assert result.exit_code == 0, result.output
    assert '"random_crop"' in result.stdout and '"denoise"' in result.stdout
