"""The recipe's ``dataset`` section -> the train and test datasets the engine batches.

The section's data-path keys (``transforms``, ``streaming``, ``num_workers``, ...; see
:class:`snnkit.recipes.loader.DataLoading`) are split off; the rest is the factory's spec. Each
split's transforms are built from the registry (kind ``transform``); a leading run of
deterministic event transforms is handed to the factory as ``pre_transform`` (applied before
its frame cache, part of the cache key) when the factory declares that parameter, and the
other transforms wrap the dataset in a :class:`~snnkit.data.transformed.TransformedDataset`
(per sample, seeded by the run's seed, epoch and sample index).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from snnkit.data.transformed import EventPipeline, TransformedDataset, split_pre_cache
from snnkit.plugins.registry import Kind, Registry
from snnkit.recipes.loader import DataLoading, Recipe, split_dataset_spec


def data_loading(recipe: Recipe) -> DataLoading:
    """The recipe's data-path settings."""
    return split_dataset_spec(recipe.dataset)[1]


def build_data(recipe: Recipe, registry: Registry, *, train: bool) -> Any:
    """One split of the recipe's dataset, with that split's transforms applied."""
    spec, loading = split_dataset_spec(recipe.dataset)
    split: Literal["train", "test"] = "train" if train else "test"
    specs = loading.transforms.get(split, [])
    transforms = [
        registry.build(Kind.TRANSFORM, s, at=f"dataset.transforms.{split}[{i}]")
        for i, s in enumerate(specs)
    ]
    component = registry.get(Kind.DATASET, spec["name"], at="dataset")
    pre = split_pre_cache(transforms)
    supplied: dict[str, Any] = {"train": train}
    if pre and "pre_transform" in component.signature().parameters:
        supplied["pre_transform"] = EventPipeline(transforms[:pre], specs[:pre])
        transforms, specs = transforms[pre:], specs[pre:]
    data = registry.build(Kind.DATASET, spec, at="dataset", **supplied)
    if not transforms:
        return data
    try:
        return TransformedDataset(data, transforms, seed=recipe.seed)
    except ValueError as err:
        from snnkit.errors import RecipeError

        raise RecipeError(f"dataset.transforms.{split}: {err}") from None


def first_inputs(data: Any, count: int) -> torch.Tensor:
    """The first ``count`` inputs as one batch ``[count, *]`` (stacked samples if streamed)."""
    inputs = getattr(data, "inputs", None)
    if isinstance(inputs, torch.Tensor) and not getattr(data, "streamed", False):
        return inputs[:count]
    return torch.stack([torch.as_tensor(data[i][0]) for i in range(count)])


def first_targets(data: Any, count: int) -> torch.Tensor:
    """The first ``count`` targets as one batch (stacked if streamed), as :func:`first_inputs`."""
    targets = getattr(data, "targets", None)
    if isinstance(targets, torch.Tensor) and not getattr(data, "streamed", False):
        return targets[:count]
    return torch.stack([torch.as_tensor(data[i][1]) for i in range(count)])


def in_memory(data: Any) -> bool:
    """Whether ``data`` can be held as two tensors (an InMemoryDataset not declared streamed)."""
    return isinstance(getattr(data, "inputs", None), torch.Tensor) and not getattr(
        data, "streamed", False
    )


def data_bytes(data: Any) -> int:
    """Bytes of an in-memory dataset's tensors."""
    return int(data.inputs.nbytes + data.targets.nbytes)
