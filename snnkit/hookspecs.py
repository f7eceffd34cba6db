"""The snnkit plugin API: one hook per component kind.

A plugin is a module (or object) whose functions are marked ``@snnkit.hookimpl`` and named after
the hooks below. Each hook receives one argument, ``register(name, factory)``:

- ``name``: lower_snake_case (``^[a-z][a-z0-9_]*$``), unique within its kind; the word a recipe
  writes. A name already taken is refused (the first plugin keeps it; built-ins load first).
- ``factory``: a class or function. snnkit calls ``factory(**params, **supplied)``, where
  ``params`` are the recipe's values and ``supplied`` the arguments snnkit passes itself (listed
  per hook; a recipe may not set them). The factory's signature *is* the component's schema:
  give every parameter a type hint and, where sensible, a default. Recipe values are coerced to
  the hints (``"1e-3"`` -> 0.001) and unknown names are refused before anything is built. A
  factory rejects out-of-range values by raising ``ValueError`` with a message naming the rule.

Name the hook argument ``register`` with no default: pluggy passes arguments by name.
Shapes are time-first: ``[T, B, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("snnkit")
hookimpl = pluggy.HookimplMarker("snnkit")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_neurons(register: Register) -> None:
    """Spiking neurons: ``factory(surrogate, **params) -> nn.Module``.

    snnkit supplies ``surrogate``: a fresh surrogate module built from the recipe's
    ``surrogate:`` entry of that neuron (default ``sigmoid``). The module has a ``step_mode``
    attribute: in ``"m"`` (multi-step, the default) ``forward`` maps input ``[T, B, *]`` to
    spikes ``[T, B, *]`` in {0, 1} and keeps no state between calls; in ``"s"`` (single-step)
    it maps ``[B, *]`` to ``[B, *]`` and keeps its state until ``reset()``. A non-spiking
    readout returns its membrane potential instead of spikes.
    """


@hookspec
def register_surrogates(register: Register) -> None:
    """Surrogate spike functions: ``factory(**params) -> nn.Module``.

    Calling the module on ``x = H - V_threshold`` returns Θ(x) (1 where ``x >= 0``) in the
    forward pass and lets gradients through as g'(x) in the backward pass. Subclass
    ``snnkit.surrogates.Surrogate`` and write ``primitive`` (g) and optionally
    ``derivative`` (g'). snnkit supplies nothing.
    """


@hookspec
def register_encoders(register: Register) -> None:
    """Input encoders: ``factory(time_steps, **params) -> nn.Module``.

    The module maps a batch ``[B, *]`` (intensities, usually in [0, 1]) to ``[T, B, *]`` with
    ``T = time_steps``. snnkit supplies ``time_steps`` from the recipe's top-level
    ``time_steps``.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Losses: ``factory(**params) -> nn.Module``.

    ``loss(output[T, B, C], target[B] int64) -> scalar tensor``, differentiable with respect to
    ``output``. If the module has ``predict(output) -> [B]``, snnkit uses it for accuracy;
    otherwise the class with the highest mean output over time wins. snnkit supplies nothing.
    """


@hookspec
def register_layers(register: Register) -> None:
    """Stateless layers: ``factory(**params) -> nn.Module``.

    The module has a ``step_mode`` attribute. In ``"m"`` it maps ``[T, B, *]`` by running once
    over ``[T*B, *]``; in ``"s"`` it maps ``[B, *]``. snnkit supplies nothing.
    """


@hookspec
def register_models(register: Register) -> None:
    """Architectures: ``factory(build, **params) -> nn.Module`` mapping ``[T, B, *]`` to
    ``[T, B, C]``.

    snnkit supplies ``build(spec, at) -> nn.Module``, which builds a layer or neuron from a
    recipe spec (a name or ``{name: ..., **params}``), so architectures stay recipe-driven.
    """


@hookspec
def register_optimizers(register: Register) -> None:
    """Optimizers: ``factory(params, **options) -> torch.optim.Optimizer``.

    snnkit supplies ``params`` (the model's parameters).
    """


@hookspec
def register_schedulers(register: Register) -> None:
    """Learning-rate schedules: ``factory(optimizer, epochs, **options)`` returning a
    ``torch.optim.lr_scheduler.LRScheduler`` that snnkit steps once per epoch.

    snnkit supplies ``optimizer`` and ``epochs`` (the total number of training epochs).
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Datasets: ``factory(train, **params)`` returning an ``InMemoryDataset`` or any map-style
    dataset.

    snnkit supplies ``train`` (True for the training split, False for the test split), and
    ``pre_transform`` to factories that declare it (the recipe's leading deterministic event
    transforms, to apply before a cache; see ``snnkit.data.transformed.EventPipeline``).
    The result is either

    - a ``snnkit.data.images.InMemoryDataset``: ``inputs`` (``[N, *]``, uint8 read as
      value/255 or float), ``targets`` (``[N]`` int64) and ``num_classes``; held on the
      training device and batched by index (the fast path), or
    - any map-style dataset with ``len(ds)``, ``ds[i] -> (input tensor, int label)``,
      ``num_classes``, ``input_shape`` (one sample's shape) and ``targets`` (the N labels);
      batched through a ``torch.utils.data.DataLoader`` (streamed). A dataset with
      ``streamed = True`` is always streamed.

    Recipe keys ``transforms``, ``streaming``, ``num_workers``, ``prefetch``, ``pin_memory`` and
    ``persistent_workers`` of the ``dataset`` section are snnkit's (the data path), never
    passed to the factory. Missing or corrupt files raise ``snnkit.errors.DataError`` naming
    the folder and the files to place there.
    """


@hookspec
def register_transforms(register: Register) -> None:
    """Data transforms: ``factory(**params)`` returning a per-sample transform (recipes list
    them under ``dataset.transforms.train`` / ``.test``).

    Either an *event* transform (``stage = "events"``: ``t(events, sensor, rng) -> events`` on
    a numpy structured event array before framing, ``t.sensor(sensor) -> sensor``, ``random``
    whether it draws from ``rng``) or a *tensor* transform (``stage = "tensor"``: ``t(x) -> x``
    on the sample tensor, drawing from torch's global RNG, which snnkit seeds per sample).
    Subclass ``snnkit.components.transforms.base.EventTransform`` / ``TensorTransform``.
    snnkit supplies nothing.
    """
