"""Every shipped recipe validates, and trains a few batches on synthetic data of its shapes.

Fashion-MNIST and CIFAR-10 are not available offline, so their recipes are exercised on the
``synthetic`` dataset with the same sample shape and class count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import snnkit
from snnkit.recipes.loader import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
SHAPES = {
    "mnist": [1, 28, 28],
    "fashion_mnist": [1, 28, 28],
    "kmnist": [1, 28, 28],
    "cifar10": [3, 32, 32],
}

pytestmark = pytest.mark.usefixtures("only_builtins")


def test_every_recipe_has_a_header_comment_with_its_source() -> None:
    assert len(RECIPES) >= 8
    for path in RECIPES:
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("# "), f"{path.name} lacks its header comment"


@pytest.mark.parametrize(
    "path", [p for p in RECIPES if "triangle" not in p.name], ids=lambda p: p.stem
)
def test_recipe_trains_a_few_batches_on_synthetic_data_of_its_shape(
    path: Path, tmp_path: Path
) -> None:
    dataset = load_recipe(path).dataset["name"]
    if dataset not in SHAPES:
        pytest.skip("event recipe: trained on official-format files in test_event_recipes.py")
    shape = SHAPES[dataset]
    overrides = [
        f"dataset={{name: synthetic, num_samples: 16, shape: {shape}, num_classes: 10}}",
        "train.epochs=1",
        "train.max_batches=2",
        "train.batch_size=8",
        "train.device=cpu",
        "output.tensorboard=false",
    ]
    row = snnkit.run(path, overrides, out=tmp_path / path.stem).metrics[0]
    assert 0.0 <= row["test_acc"] <= 1.0 and row["train_loss"] == row["train_loss"]
