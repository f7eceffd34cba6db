"""The streamed data path: same batches as the in-memory one, exact resume, DDP shards, checks."""

from __future__ import annotations

import copy
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from test_resume import assert_same_run, metrics

import snnkit
from snnkit.assembly.assemble import assemble
from snnkit.data.images import synthetic
from snnkit.engine.batches import MemoryBatches, StreamBatches, make_batches, should_stream
from snnkit.engine.distributed import World
from snnkit.engine.progress import SilentReporter
from snnkit.engine.run import run as run_engine
from snnkit.engine.trainer import Interrupted
from snnkit.errors import RecipeError
from snnkit.plugins.loader import get_registry
from snnkit.recipes.loader import DataLoading, load_recipe

pytestmark = pytest.mark.usefixtures("only_builtins")


def recipe(tmp_path: Path, epochs: int = 2, **dataset: Any) -> dict[str, Any]:
    """Poisson input, dropout and a scheduler: every RNG matters. 4 batches of 16 per epoch."""
    return {
        "seed": 3,
        "time_steps": 4,
        "dataset": {
            "name": "synthetic",
            "num_samples": 64,
            "shape": [1, 4, 4],
            "num_classes": 4,
            **dataset,
        },
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 8},
                {"name": "lif", "tau": 2.0},
                {"name": "dropout", "p": 0.2},
                {"name": "linear", "in_features": 8, "out_features": 4},
                "lif",
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.02},
        "scheduler": {"name": "step", "step_size": 1, "gamma": 0.7},
        "train": {"epochs": epochs, "batch_size": 16, "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_run_equals_the_in_memory_run_bit_for_bit(tmp_path: Path, workers: int) -> None:
    memory = snnkit.run(recipe(tmp_path), out=tmp_path / "memory").run_dir
    streamed = snnkit.run(
        recipe(tmp_path, streaming=True, num_workers=workers), out=tmp_path / "streamed"
    ).run_dir
    assert_same_run(memory, streamed)


def test_batch_sources_give_the_same_batches_and_ddp_shards() -> None:
    data = synthetic(True, num_samples=40, shape=(2, 3), num_classes=3)
    cpu = torch.device("cpu")
    mem = MemoryBatches.of(data, cpu)
    stream = StreamBatches(data, cpu, DataLoading())
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    for world in (World(), World(0, 2), World(1, 2)):
        a = list(mem.epoch(perm, 16, 1, 3, 1, world.shard))
        b = list(stream.epoch(perm, 16, 1, 3, 1, world.shard))
        assert len(a) == len(b) == 2
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb) and xb.dtype == torch.uint8
        idx = world.shard(perm[16:32])  # batch 1 of the global batches
        assert torch.equal(a[0][0], data.inputs[idx]) and len(a[0][1]) == 16 // world.size
    for rank in (0, 1):
        xm = torch.cat([x for x, _ in mem.every(rank, 2).in_order(7)])
        xs = torch.cat([x for x, _ in stream.every(rank, 2).in_order(7)])
        assert torch.equal(xm, xs) and torch.equal(xm, data.inputs[rank::2])
    assert torch.equal(stream.first(1), data.inputs[:1])


def test_the_path_is_chosen_automatically() -> None:
    data = synthetic(True, num_samples=8, shape=(2, 3), num_classes=3)
    cpu = torch.device("cpu")
    assert not should_stream(data, DataLoading(), cpu)
    assert isinstance(make_batches(data, cpu, DataLoading()), MemoryBatches)
    assert should_stream(data, DataLoading(streaming=True), cpu)

    class Streamed:  # any map-style dataset: len / getitem
        num_classes, input_shape, targets = 3, (2, 3), data.targets

        def __len__(self) -> int:
            return 8

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return data.inputs[i], int(data.targets[i])

    assert isinstance(make_batches(Streamed(), cpu, DataLoading()), StreamBatches)
    with pytest.raises(RecipeError, match="remove streaming: false"):
        should_stream(Streamed(), DataLoading(streaming=False), cpu)


class _StopAt(SilentReporter):
    def __init__(self, epoch: int, batch: int) -> None:
        self.at, self.epoch = (epoch, batch), 0

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        self.epoch = epoch

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None:
        if (self.epoch, done) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def augmented(tmp_path: Path, epochs: int = 2) -> dict[str, Any]:
    r = recipe(tmp_path, epochs, num_workers=2)
    r["dataset"]["shape"] = [1, 6, 6]
    r["dataset"]["transforms"] = {
        "train": [{"name": "random_crop", "size": 4, "padding": 1}, "horizontal_flip"],
        "test": [{"name": "random_crop", "size": 4}],
    }
    return r


def test_resume_mid_epoch_with_transforms_and_workers_is_exact(tmp_path: Path) -> None:
    reference = snnkit.run(augmented(tmp_path), out=tmp_path / "ref").run_dir
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        run_engine(augmented(tmp_path), out=out, reporter=_StopAt(2, 2))
    run_engine(resume=out)
    assert_same_run(out, reference)
    assert len(metrics(out)) == 2


def test_a_transform_that_changes_the_shape_is_seen_by_the_shape_check(tmp_path: Path) -> None:
    r = augmented(tmp_path)
    r["dataset"]["transforms"]["train"] = [{"name": "random_crop", "size": 5}]
    with pytest.raises(RecipeError, match="in_features=16 but the layer before it gives 25"):
        assemble(load_recipe(r), get_registry())


def test_bad_data_path_settings_are_one_line_errors(tmp_path: Path) -> None:
    for key, value, match in (
        ("num_workers", -1, "dataset.num_workers must be >= 0"),
        ("streaming", "maybe", "dataset.streaming must be auto, true or false"),
        ("transforms", {"val": []}, "only the keys train and test"),
        ("transforms", {"train": [{"name": "random_cropp"}]}, "did you mean 'random_crop'"),
        ("transforms", {"train": [{"name": "denoise"}]}, "event transforms need an event"),
    ):
        r = copy.deepcopy(recipe(tmp_path))
        r["dataset"][key] = value
        with pytest.raises(Exception, match=match) as err:
            assemble(load_recipe(r), get_registry())
        assert "\n" not in str(err.value)
