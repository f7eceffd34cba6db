"""The event and augmentation recipes validate and train a few batches on files the tests write
in the official formats (N-MNIST zips, the DVS Gesture archive, CIFAR-10 python pickles)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_neuromorphic import gesture_archive, nmnist_files

import snnkit
from snnkit.assembly.data import build_data
from snnkit.data.neuromorphic.files import DataWarning
from snnkit.plugins.loader import get_registry
from snnkit.recipes.loader import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
pytestmark = [
    pytest.mark.usefixtures("only_builtins"),
    pytest.mark.filterwarnings("ignore::snnkit.data.neuromorphic.files.DataWarning"),
]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def small(root: Path, *extra: str) -> list[str]:
    return [
        f"dataset.root={root}",
        "dataset.download=false",
        "train.epochs=1",
        "train.batch_size=2",
        "train.max_batches=2",
        "train.device=cpu",
        "output.tensorboard=false",
        *extra,
    ]


def test_nmnist_csnn_trains_on_official_zips(tmp_path: Path) -> None:
    nmnist_files(tmp_path / "data", "Train")
    nmnist_files(tmp_path / "data", "Test", per_digit=1)
    result = snnkit.run(
        RECIPES / "nmnist_csnn.yaml",
        small(tmp_path / "data", "dataset.num_workers=0"),
        out=tmp_path / "run",
    )
    row = result.metrics[0]
    assert 0.0 <= row["test_acc"] <= 1.0 and row["train_loss"] == row["train_loss"]


def test_dvs_gesture_trains_on_the_official_archive(tmp_path: Path) -> None:
    gesture_archive(tmp_path / "data")
    overrides = small(
        tmp_path / "data",
        "dataset.frames=4",
        "time_steps=4",
        "dataset.num_workers=2",
        "train.amp=false",
        "train.max_batches=1",
    )
    row = snnkit.run(RECIPES / "dvs_gesture.yaml", overrides, out=tmp_path / "run").metrics[0]
    assert 0.0 <= row["test_acc"] <= 1.0 and row["train_loss"] == row["train_loss"]


def write_cifar(root: Path, per_file: int = 3) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, per_file)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar10_augmented_trains_with_crop_and_flip(tmp_path: Path) -> None:
    write_cifar(tmp_path / "data")
    overrides = small(tmp_path / "data", "dataset.num_workers=2")
    row = snnkit.run(RECIPES / "cifar10_augmented.yaml", overrides, out=tmp_path / "run").metrics[0]
    assert 0.0 <= row["test_acc"] <= 1.0 and row["train_loss"] == row["train_loss"]


def test_pre_cache_event_transforms_key_the_cache_and_reshape_the_frames(tmp_path: Path) -> None:
    nmnist_files(tmp_path / "data", "Test")
    registry = get_registry()

    def test_split(transforms: list) -> object:  # type: ignore[type-arg]
        recipe = load_recipe(
            RECIPES / "nmnist_csnn.yaml",
            [
                f"dataset.root={tmp_path / 'data'}",
                "dataset.download=false",
                f"dataset.transforms={{test: [{', '.join(transforms)}]}}",
            ],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            return build_data(recipe, registry, train=False)

    plain = test_split([])
    pre = test_split(["denoise", "{name: downsample, factor: 2}"])
    mixed = test_split(["{name: downsample, factor: 2}", "drop_events"])
    assert plain.cache_spec["transform"] is None  # type: ignore[attr-defined]
    assert pre.cache_spec["transform"] == [{"name": "denoise"}, {"name": "downsample", "factor": 2}]  # type: ignore[attr-defined]
    assert plain._entry_key != pre._entry_key  # type: ignore[attr-defined]
    assert pre.input_shape == (10, 2, 17, 17) and pre[0][0].shape == (10, 2, 17, 17)
    # the cached frames equal the frames of the transformed events
    want = pre.frames_of(1).astype(np.float32)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(pre[1][0].numpy(), want)
    # a random event transform after the cached ones runs per sample, on the downsampled events
    assert type(mixed).__name__ == "TransformedDataset"
    assert mixed.input_shape == (10, 2, 17, 17)
    assert mixed.base.cache_spec["transform"] == [{"name": "downsample", "factor": 2}]  # type: ignore[attr-defined]
    x0, _ = mixed.sample(0, 1)  # type: ignore[attr-defined]
    assert x0.sum() <= mixed.base[0][0].sum()  # type: ignore[attr-defined]


def test_shd_trains_on_hdf5_files(tmp_path: Path) -> None:
    from event_files import write_shd

    folder = tmp_path / "data" / "SHD"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        samples = []
        for _ in range(n):
            k = int(rng.integers(50, 200))
            times = np.sort(rng.uniform(0.0, 0.9, k)).astype(np.float32)
            samples.append((times, rng.integers(0, 700, k).astype(np.uint16)))
        write_shd(folder / f"shd_{split}.h5", samples, rng.integers(0, 20, n))
    overrides = small(tmp_path / "data", "model.hidden_sizes=[16]")
    row = snnkit.run(RECIPES / "shd.yaml", overrides, out=tmp_path / "run").metrics[0]
    assert 0.0 <= row["test_acc"] <= 1.0 and np.isfinite(row["train_loss"])
