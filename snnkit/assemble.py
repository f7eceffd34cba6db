"""Recipe + Registry -> Experiment: the one place that knows how recipe sections nest.

Nestings: a neuron spec may carry ``surrogate:`` (a surrogate spec, default ``sigmoid``), built
fresh for each neuron and supplied as its ``surrogate``; a model receives ``build`` to turn its
layer and neuron specs into modules; the optimizer receives the model's parameters; the
scheduler the optimizer and the number of epochs; the encoder the recipe's ``time_steps``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnkit.errors import DeviceError, RecipeError
from snnkit.recipe import Recipe
from snnkit.registry import Kind, Registry, normalize_spec

DEFAULT_SURROGATE = "sigmoid"


@dataclass
class Experiment:
    """Everything a run needs, built and checked, but not yet trained."""

    recipe: Recipe
    registry: Registry
    device: torch.device
    model: nn.Module
    encoder: nn.Module
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_data: Any
    test_data: Any

    def summary(self) -> str:
        """One line: what would run."""
        r = self.recipe
        layers = [_spec_name(s) for s in r.model.get("layers", [])] or [r.model["name"]]
        params = sum(p.numel() for p in self.model.parameters())
        return (f"{r.label}: {r.dataset['name']} ({len(self.train_data)} train / "
                f"{len(self.test_data)} test) · {r.encoder['name']}(T={r.time_steps}) · "
                f"{' → '.join(layers)} ({params:,} parameters) · {r.loss['name']} · "
                f"{r.optimizer['name']} · {r.train.epochs} epochs × batch {r.train.batch_size} "
                f"on {self.device}")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for an absent device is a DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"train.device: '{name}' requested but no CUDA device is present — "
                              "use device: auto or cpu")
        index = torch.device(name).index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"train.device: '{name}' not present ({torch.cuda.device_count()} "
                              "CUDA devices) — pick an existing index")
    return torch.device(name)


def make_builder(registry: Registry) -> Any:
    """``build(spec, at)``: a layer or neuron module from a spec (neurons get a fresh surrogate)."""

    def build(spec: Any, at: str) -> nn.Module:
        at = f"model.{at}"
        spec = normalize_spec(spec, at=at)
        name = spec["name"]
        is_layer, is_neuron = (Kind.LAYER, name) in registry, (Kind.NEURON, name) in registry
        if is_neuron:
            spec = dict(spec)
            surrogate_spec = spec.pop("surrogate", DEFAULT_SURROGATE)
            surrogate = registry.build(Kind.SURROGATE, surrogate_spec, at=f"{at}.surrogate")
            return registry.build(Kind.NEURON, spec, at=at, surrogate=surrogate)
        if is_layer:
            return registry.build(Kind.LAYER, spec, at=at)
        known = registry.names(Kind.LAYER) + registry.names(Kind.NEURON)
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else " —"
        raise RecipeError(f"{at}: unknown layer or neuron '{name}'{hint} see snnkit list layer "
                          "and snnkit list neuron")

    return build


def assemble(recipe: Recipe, registry: Registry, *, device: str | None = None) -> Experiment:
    """Build and check every component of ``recipe``; raises SnnkitError on the first problem."""
    dev = resolve_device(device or recipe.train.device)
    train_data = registry.build(Kind.DATASET, recipe.dataset, at="dataset", train=True)
    test_data = registry.build(Kind.DATASET, recipe.dataset, at="dataset", train=False)
    encoder = registry.build(Kind.ENCODER, recipe.encoder, at="encoder", time_steps=recipe.time_steps)
    model = registry.build(Kind.MODEL, recipe.model, at="model", build=make_builder(registry))
    loss = registry.build(Kind.LOSS, recipe.loss, at="loss")
    per_sample = check_shapes(model, recipe, train_data, encoder)
    check_memory(recipe, per_sample, dev)
    model.to(dev)
    optimizer = registry.build(Kind.OPTIMIZER, recipe.optimizer, at="optimizer",
                               params=list(model.parameters()))
    scheduler = None
    if recipe.scheduler is not None:
        scheduler = registry.build(Kind.SCHEDULER, recipe.scheduler, at="scheduler",
                                   optimizer=optimizer, epochs=recipe.train.epochs)
    return Experiment(recipe, registry, dev, model, encoder, loss, optimizer, scheduler,
                      train_data, test_data)


def check_shapes(model: nn.Module, recipe: Recipe, data: Any, encoder: Any = None) -> int:
    """Run one dummy step through the model, layer by layer; return activations per sample.

    A layer whose input does not fit says which layer and which shapes; a final width that
    differs from the dataset's class count says so too.
    """
    from snnkit.functional import reset_net, set_step_mode

    modes = {m: m.step_mode for m in model.modules() if hasattr(m, "step_mode")}
    set_step_mode(model, "m")
    x = torch.zeros((2, *tuple(data.input_shape)))
    x = encoder(x)[:1] if encoder is not None else x.unsqueeze(0)  # one step of [T, B, *]
    elements = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            stages = list(model.named_children()) if isinstance(model, nn.Sequential) else [("", model)]
            for index, (_, module) in enumerate(stages):
                shape_in = tuple(x.shape[2:])
                try:
                    x = module(x)
                except (RuntimeError, ValueError) as err:
                    at = f"model.layers[{index}]" if isinstance(model, nn.Sequential) else "model"
                    kind = type(module).__name__
                    raise RecipeError(f"{at} ({kind}): cannot take input of shape {list(shape_in)} "
                                      f"per time step ({_first_line(err)}) — fix the sizes of "
                                      "this layer or the one before it") from None
                elements += x[0, 0].numel()
    finally:
        for module, mode in modes.items():
            module.step_mode = mode
        reset_net(model)
        model.train(was_training)
    if x.dim() != 3:
        raise RecipeError(f"model: output must be [T, B, classes], got a per-step shape of "
                          f"{list(x.shape[2:])} — end the model with a linear layer and a neuron")
    if x.shape[-1] != data.num_classes:
        raise RecipeError(f"model: the output layer has {x.shape[-1]} neurons but dataset "
                          f"'{recipe.dataset['name']}' has {data.num_classes} classes — set the "
                          f"last layer's out_features to {data.num_classes}")
    return elements + int(math.prod(data.input_shape))


def check_memory(recipe: Recipe, per_sample: int, device: torch.device) -> None:
    """Refuse a configuration whose activations for one batch cannot fit in memory.

    Estimate: T × batch × (input + every layer's output) × 4 bytes × 3 (values, saved state
    and gradients), for the larger of the train and eval batch sizes.
    """
    batch = max(recipe.train.batch_size, recipe.train.eval_batch_size or 0)
    need = recipe.time_steps * batch * per_sample * 4 * 3
    have = _available_bytes(device)
    if have and need > have:
        raise RecipeError(f"train: one batch needs about {need / 2**30:.1f} GiB "
                          f"(time_steps {recipe.time_steps} × batch {batch} × {per_sample:,} "
                          f"values per sample) but {have / 2**30:.1f} GiB is available — lower "
                          "time_steps or batch_size")


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def _spec_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name", "?"))


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__

