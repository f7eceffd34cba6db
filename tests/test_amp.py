"""Mixed precision: bf16 autocast on CUDA when train.amp is true; ignored on CPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import snnkit


def _recipe(device: str) -> dict:
    return {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 64, "shape": [1, 6, 6], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": ["flatten", {"name": "linear", "in_features": 36, "out_features": 4}, "lif"],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 1e-2},
        "train": {"epochs": 1, "batch_size": 16, "device": device, "amp": True},
        "output": {"tensorboard": False},
    }


def test_amp_is_ignored_on_cpu_and_gives_the_fp32_result(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SNNKIT_LOAD_PLUGINS", "")
    with_amp = snnkit.run(_recipe("cpu"), out=tmp_path / "amp").metrics[0]
    recipe = _recipe("cpu")
    recipe["train"]["amp"] = False
    without = snnkit.run(recipe, out=tmp_path / "fp32").metrics[0]
    assert with_amp["train_loss"] == without["train_loss"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_amp_trains_in_bf16_on_cuda(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SNNKIT_LOAD_PLUGINS", "")
    row = snnkit.run(_recipe("cuda"), out=tmp_path / "cuda").metrics[0]
    assert math.isfinite(row["train_loss"]) and 0.0 <= row["test_acc"] <= 1.0
