"""Recipe + Registry -> Experiment: the one place that knows how recipe sections nest.

Nestings: a neuron spec may carry ``surrogate:`` (a surrogate spec, default ``sigmoid``), built
fresh for each neuron and supplied as its ``surrogate``; a model receives ``build`` to turn its
layer and neuron specs into modules; the optimizer receives the model's parameters; the
scheduler the optimizer and the number of epochs; the encoder the recipe's ``time_steps``.

Checks before anything trains, each a one-line :class:`~snnkit.errors.SnnkitError`: the
device exists; a dummy step runs through the model layer by layer (which layer, which
shapes); the output width equals the class count; the loss accepts the output; one batch's
activations fit in memory (before anything of that size is allocated); the encoder accepts the
first training samples (e.g. Poisson intensities in [0, 1]). Errors about the recipe are
prefixed with the recipe file.

The parts meet in one forward module, ``Experiment.forward_module``: a raw batch ``x [B, *]``
to the model's output ``[T, B, C]`` (encoder then time loop, or the fast input rewrite of
:mod:`snnkit.assembly.fast_input` when asked for and the recipe allows it).
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snnkit.assembly.data import build_data, data_loading, first_inputs, in_memory
from snnkit.assembly.fast_input import build_forward
from snnkit.assembly.losses import attach_penalties, build_loss, loss_label
from snnkit.assembly.memory.choose import memory_forward, resolve_mode
from snnkit.assembly.memory.estimate import MemoryEstimate, profile
from snnkit.components import layers
from snnkit.components.blocks import JoinShapeError
from snnkit.components.functional import reset_net, set_step_mode
from snnkit.errors import (
    ComponentBuildError,
    DataError,
    DeviceError,
    ParameterError,
    RecipeError,
    SnnkitError,
    UnknownComponentError,
    did_you_mean,
    one_line,
)
from snnkit.kernels import reference_only
from snnkit.plugins.registry import Kind, Registry, normalize_spec
from snnkit.recipes.loader import DataLoading, Recipe

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
    #: ``x [B, *] -> [T, B, C]``: what training and evaluation run (wraps encoder and model)
    forward_module: nn.Module
    #: the data path: streaming, workers, transforms (the ``dataset`` section's own keys)
    loading: DataLoading = field(default_factory=DataLoading)
    #: the memory mode training runs in (``train.memory`` resolved: full, checkpoint, tbptt,
    #: online) and the estimate it was chosen from
    memory: str = "full"
    estimate: MemoryEstimate | None = None

    def summary(self) -> str:
        """One line: what would run."""
        r = self.recipe
        layers = [_spec_name(s) for s in r.model.get("layers", [])] or [r.model["name"]]
        params = sum(p.numel() for p in self.model.parameters())
        return (
            f"{r.label}: {r.dataset['name']} ({len(self.train_data)} train / "
            f"{len(self.test_data)} test) · {r.encoder['name']}(T={r.time_steps}) · "
            f"{' → '.join(layers)} ({params:,} parameters) · {loss_label(r.loss)} · "
            f"{r.optimizer['name']} · {r.train.epochs} epochs × batch {r.train.batch_size} "
            f"on {self.device}"
        )


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for an absent device is a DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"train.device: '{name}' requested but no CUDA device is present — "
                "use device: auto or cpu"
            )
        index = torch.device(name).index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"train.device: '{name}' not present ({torch.cuda.device_count()} "
                "CUDA devices) — pick an existing index"
            )
    return torch.device(name)


#: module -> (recipe path, spec name) of every module built from a spec; read by the shape check
_PATHS: weakref.WeakKeyDictionary[nn.Module, tuple[str, str]] = weakref.WeakKeyDictionary()


def make_builder(registry: Registry) -> Any:
    """``build(spec, at)``: a layer or neuron module from a spec (neurons get a fresh surrogate).

    A layer whose factory takes ``build`` (a block: ``residual``, ``repeat``, ``branches``)
    gets one that builds its nested specs under its own path (``layers[3].body[1]``). Every
    module built is remembered with its path, so the shape check can name a nested layer.
    """

    def build(spec: Any, at: str) -> nn.Module:
        module = _build(spec, at)
        _PATHS[module] = (f"model.{at}", _spec_name(spec))
        return module

    def _build(spec: Any, rel: str) -> nn.Module:
        at = f"model.{rel}"
        spec = normalize_spec(spec, at=at)
        name = spec["name"]
        is_layer, is_neuron = (Kind.LAYER, name) in registry, (Kind.NEURON, name) in registry
        if is_neuron:
            spec = dict(spec)
            surrogate_spec = spec.pop("surrogate", DEFAULT_SURROGATE)
            surrogate = registry.build(Kind.SURROGATE, surrogate_spec, at=f"{at}.surrogate")
            return registry.build(Kind.NEURON, spec, at=at, surrogate=surrogate)
        if is_layer:

            def nested(inner: Any, sub: str) -> nn.Module:
                return build(inner, f"{rel}.{sub}")

            return registry.build(Kind.LAYER, spec, at=at, build=nested)
        known = registry.names(Kind.LAYER) + registry.names(Kind.NEURON)
        hint = did_you_mean(name, known) or " —"
        raise UnknownComponentError(
            f"{at}: unknown layer or neuron '{name}'{hint} see snnkit "
            "list layer and snnkit list neuron"
        )

    return build


def assemble(
    recipe: Recipe, registry: Registry, *, device: str | None = None, fast_input: bool = False
) -> Experiment:
    """Build and check every component of ``recipe``; raises SnnkitError on the first problem.

    ``fast_input``: make ``forward_module`` the fast input rewrite where ``train.fast_input``
    is on and the model fits it (the engine asks for it when it trains in one process; a
    distributed run keeps the dense path); otherwise encoder then time loop.
    """
    try:
        return _assemble(recipe, registry, device, fast_input)
    except (RecipeError, ParameterError, UnknownComponentError, ComponentBuildError) as err:
        if not recipe.source:
            raise
        raise type(err)(f"{recipe.source}: {err}") from err.__cause__


def _assemble(
    recipe: Recipe, registry: Registry, device: str | None, fast_input: bool
) -> Experiment:
    dev = resolve_device(device or recipe.train.device)
    train_data = build_data(recipe, registry, train=True)
    test_data = build_data(recipe, registry, train=False)
    steps = recipe.time_steps
    encoder = registry.build(Kind.ENCODER, recipe.encoder, at="encoder", time_steps=steps)
    model = registry.build(Kind.MODEL, recipe.model, at="model", build=make_builder(registry))
    check_delays(model, recipe.time_steps)
    loss = build_loss(recipe, registry)
    check_memory(recipe, math.prod(train_data.input_shape), dev)  # the input alone, before encoding
    with reference_only():  # two samples on the CPU: no kernel needs compiling for that
        probe = check_encoder(encoder, recipe, train_data)
        check_shapes(model, recipe, train_data, loss, probe)
    fast = fast_input and recipe.train.fast_input
    estimate = estimate_memory(model, recipe, train_data, probe, encoder, fast_input=fast)
    available = _available_bytes(dev)
    memory = resolve_mode(recipe, estimate, available)
    check_estimate(recipe, estimate, memory, available)
    model.to(dev)
    optimizer = registry.build(
        Kind.OPTIMIZER, recipe.optimizer, at="optimizer", params=list(model.parameters())
    )
    scheduler = None
    if recipe.scheduler is not None:
        scheduler = registry.build(
            Kind.SCHEDULER,
            recipe.scheduler,
            at="scheduler",
            optimizer=optimizer,
            epochs=recipe.train.epochs,
        )
    forward = memory_forward(recipe, memory, encoder, model)
    if forward is None:
        memory = "full"
        forward = build_forward(encoder, model, fast_input=fast)
    return Experiment(
        recipe,
        registry,
        dev,
        model,
        encoder,
        loss,
        optimizer,
        scheduler,
        train_data,
        test_data,
        attach_penalties(loss, model, forward, memory, _PATHS),
        data_loading(recipe),
        memory,
        estimate,
    )


def check_shapes(
    model: nn.Module,
    recipe: Recipe,
    data: Any,
    loss: nn.Module | None = None,
    probe: torch.Tensor | None = None,
) -> int:
    """Run one step (T=1, B=2) through the model, stage by stage; return values per sample.

    ``probe`` is that step as the encoder produces it (its shape may differ from the samples',
    e.g. one image row per step); zeros of the sample shape otherwise.

    A stage whose input does not fit says which layer, what it expects and what it gets; an
    output that is not ``[T, B, classes]`` or whose width differs from the dataset's class
    count says so too, and so does a loss that refuses the output.
    """
    modes = {m: m.step_mode for m in model.modules() if hasattr(m, "step_mode")}
    set_step_mode(model, "m")
    x = probe if probe is not None else torch.zeros((1, 2, *tuple(data.input_shape)))
    elements = 0
    was_training = model.training
    model.eval()
    stages = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    entered: list[tuple[nn.Module, list[int]]] = []
    hooks = [_track_entry(m, entered) for m in model.modules() if m in _PATHS]
    try:
        with torch.no_grad():
            for index, module in enumerate(stages):
                shape_in = list(x.shape[2:])
                entered.clear()
                try:
                    x = module(x)
                except Exception as err:  # noqa: BLE001 - any failure of a dummy step is a shape problem
                    raise RecipeError(
                        _locate(recipe, stages, index, module, shape_in, entered, err)
                    ) from None
                elements += x[0, 0].numel()
    finally:
        for handle in hooks:
            handle.remove()
        for module, mode in modes.items():
            module.step_mode = mode
        reset_net(model)
        model.train(was_training)
    if x.dim() != 3:
        raise RecipeError(
            f"model: the output must be [T, B, classes], but each step gives "
            f"{list(x.shape[2:])} — end the model with flatten, linear and a neuron"
        )
    if x.shape[-1] != data.num_classes:
        raise RecipeError(
            f"model: the output layer has {x.shape[-1]} neurons but dataset "
            f"'{recipe.dataset['name']}' has {data.num_classes} classes — set the "
            f"last layer's out_features to {data.num_classes}"
        )
    if loss is not None:
        target = torch.zeros(2, dtype=torch.int64)
        try:
            with torch.no_grad():
                loss(x.float(), target)
        except Exception as err:  # noqa: BLE001 - a loss refusing the output is a recipe problem
            raise RecipeError(
                f"loss: '{loss_label(recipe.loss)}' cannot take the model's output "
                f"[T, B, {x.shape[-1]}] ({one_line(err, 300, first_line=True)}) — pick a loss that "
                "fits the model's last layer (snnkit show loss NAME)"
            ) from None
    return elements + int(math.prod(data.input_shape))


def check_delays(model: nn.Module, time_steps: int) -> None:
    """Refuse a layer whose ``max_delay`` (``delay``, ``dcls_delay``) is not below T: its
    delayed spikes would never reach the output."""
    for module in model.modules():
        delay = getattr(module, "max_delay", None)
        if isinstance(delay, int) and delay >= time_steps:
            path, name = _PATHS.get(module, ("model", type(module).__name__))
            raise RecipeError(
                f"{path} ({name}): a delay of {delay} steps is not shorter than time_steps "
                f"{time_steps}, so it never reaches the output — lower the delay or raise "
                "time_steps"
            )


def _track_entry(module: nn.Module, entered: list[tuple[nn.Module, list[int]]]) -> Any:
    """A pre-hook noting ``module`` and its per-step input shape when it starts, popped when
    it returns: after a failure, ``entered`` ends with the innermost module that failed."""

    def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        entered.append((mod, list(x.shape[2:]) if isinstance(x, torch.Tensor) else []))

    def post(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if entered and entered[-1][0] is mod:
            entered.pop()

    first = module.register_forward_pre_hook(pre)
    second = module.register_forward_hook(post)

    class _Both:
        def remove(self) -> None:
            first.remove()
            second.remove()

    return _Both()


def _locate(
    recipe: Recipe,
    stages: list[nn.Module],
    index: int,
    stage: nn.Module,
    shape_in: list[int],
    entered: list[tuple[nn.Module, list[int]]],
    err: BaseException,
) -> str:
    """``model.<path>: what — fix`` for a failed dummy step: the innermost module built from a
    nested spec (inside a block) when there is one, else the stage."""
    if entered and entered[-1][0] is not stage:
        module, inner_shape = entered[-1]
        path, name = _PATHS[module]
        return f"{path} ({name}): {_mismatch(module, inner_shape, err)}"
    return f"model.{_stage_name(recipe, stages, index)}: {_mismatch(stage, shape_in, err)}"


def _stage_name(recipe: Recipe, stages: list[nn.Module], index: int) -> str:
    """``layers[i] (name)`` for a recipe layer list, else the module's own position."""
    specs = recipe.model.get("layers")
    if (
        recipe.model.get("name") == "sequential"
        and isinstance(specs, list)
        and len(specs) == len(stages)
    ):
        return f"layers[{index}] ({_spec_name(specs[index])})"
    if len(stages) > 1:
        return f"{recipe.model['name']} stage {index} ({type(stages[index]).__name__})"
    return recipe.model["name"]


def _mismatch(module: nn.Module, shape_in: list[int], err: BaseException) -> str:
    """What a stage expects versus what it is given, in the recipe's words."""
    if isinstance(err, JoinShapeError):
        return str(err)
    fix = "fix the sizes of this layer or of the one before it"
    if isinstance(module, nn.Linear) and shape_in:
        if len(shape_in) != 1:
            return (
                f"expects vectors of in_features={module.in_features} but gets per-step input "
                f"of shape {shape_in} — put a flatten layer before it"
            )
        if shape_in[-1] != module.in_features:
            return (
                f"expects in_features={module.in_features} but the layer before it gives "
                f"{shape_in[-1]} features — set in_features: {shape_in[-1]}"
            )
    channels = getattr(module, "in_channels", None)
    if isinstance(module, nn.modules.conv._ConvNd) and channels is not None:
        need = len(module.kernel_size) + 1
        if len(shape_in) != need:
            return (
                f"expects per-step input [channels, {', '.join(['size'] * (need - 1))}] but "
                f"gets {shape_in} — {fix}"
            )
        if shape_in[0] != channels:
            return (
                f"expects in_channels={channels} but gets per-step input {shape_in} "
                f"(channels first: {shape_in[0]}) — set in_channels: {shape_in[0]}"
            )
    why = one_line(err, 300, first_line=True)
    return f"cannot take per-step input of shape {shape_in} ({why}) — {fix}"


def check_encoder(encoder: nn.Module, recipe: Recipe, data: Any) -> torch.Tensor | None:
    """Encode the first training samples once (RNG untouched): e.g. Poisson needs [0, 1].

    Returns the first step of two encoded samples (``[1, 2, *]``), the model's shape probe.
    A streamed dataset is probed on its first (at most 8) samples as the data path gives them.
    """
    count = min(len(data), recipe.train.batch_size, 64 if in_memory(data) else 8)
    if count < 2:
        return None
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            seq = encoder(first_inputs(data, count))
        except DataError as err:
            raise DataError(f"dataset '{recipe.dataset['name']}' → {err}") from None
        except SnnkitError:
            raise
        except Exception as err:  # noqa: BLE001 - a plugin encoder crashing on real data
            raise ComponentBuildError(
                f"encoder: '{recipe.encoder['name']}' fails on the first "
                f"training samples ({one_line(err, 300, first_line=True, typed=True)})"
                " — check the encoder's parameters against the data"
            ) from None
    if not isinstance(seq, torch.Tensor) or seq.dim() < 2 or seq.shape[1] != count:
        raise ComponentBuildError(
            f"encoder: '{recipe.encoder['name']}' must return [T, B, *] "
            f"for a batch of {count}, got "
            f"{list(seq.shape) if isinstance(seq, torch.Tensor) else type(seq).__name__}"
        )
    return seq[:1, :2].float()


def check_memory(recipe: Recipe, per_sample: int, device: torch.device) -> None:
    """Refuse a configuration whose activations for one batch cannot fit in memory.

    Estimate: T × batch × (input + every layer's output) × 4 bytes × 3 (values, saved state
    and gradients), for the larger of the train and eval batch sizes.
    """
    batch = max(recipe.train.batch_size, recipe.train.eval_batch_size or 0)
    need = recipe.time_steps * batch * per_sample * 4 * 3
    have = _available_bytes(device)
    if have and need > have:
        raise RecipeError(
            f"train: one batch needs about {need / 2**30:.1f} GiB "
            f"(time_steps {recipe.time_steps} × batch {batch} × {per_sample:,} "
            f"values per sample) but {have / 2**30:.1f} GiB is available — lower "
            "time_steps or batch_size"
        )


def estimate_memory(
    model: nn.Module,
    recipe: Recipe,
    data: Any,
    probe: torch.Tensor | None,
    encoder: nn.Module | None = None,
    *,
    fast_input: bool = False,
) -> MemoryEstimate:
    """The memory estimate of :mod:`snnkit.assembly.memory.estimate` for the recipe's T and
    the larger of its train and eval batch, measured on two steps of two samples (the probe
    step repeated; zeros of the sample shape without one); ``full`` on two samples over all T
    steps through the forward module ``full`` trains with (:func:`build_forward` of
    ``encoder`` and ``model``, ``fast_input`` as the run asks) when an encoder and a probe are
    given. The kernels run as in training where they are compiled already
    (:func:`~snnkit.kernels.cpu.build.kernels_ready`), else the reference loops (which keep
    more: the estimate is then high)."""
    from snnkit.kernels.cpu.build import kernels_ready

    step = probe if probe is not None else torch.zeros((1, 2, *tuple(data.input_shape)))
    batch = max(recipe.train.batch_size, recipe.train.eval_batch_size or 0)
    ready = kernels_ready()
    with contextlib.nullcontext() if ready else reference_only():
        full, layouts = None, _conv_layouts(model)
        if encoder is not None and probe is not None:
            forward = build_forward(encoder, model, fast_input=fast_input and ready)
            full = (forward, first_inputs(data, 2))
        try:
            return profile(
                model,
                torch.cat([step, step]),
                time_steps=recipe.time_steps,
                batch=batch,
                optimizer=str(recipe.optimizer["name"]),
                segment=recipe.train.segment_steps,
                tbptt=recipe.train.tbptt,
                full=full,
                recompute_macs=recipe.train.recompute_macs,
            )
        finally:
            _restore_conv_layouts(layouts)


def _conv_layouts(model: nn.Module) -> list[tuple[Any, bool]]:
    """Each snnkit convolution of ``model`` with its channels-last switch."""
    return [(m, m.channels_last) for m in model.modules() if isinstance(m, layers.Conv2d)]


def _restore_conv_layouts(layouts: list[tuple[Any, bool]]) -> None:
    for conv, on in layouts:
        if conv.channels_last != on:
            conv.use_channels_last(on)


def check_estimate(recipe: Recipe, estimate: MemoryEstimate, mode: str, available: int) -> None:
    """Refuse a batch whose estimated memory in ``mode`` exceeds the free memory ``available``
    (0: unknown, not checked), naming a mode or batch size that would fit."""
    if available and estimate.total(mode) > available:
        raise RecipeError(
            f"train: {estimate.over_budget(mode, available, 'the free memory')} "
            f"(time_steps {recipe.time_steps} × batch {estimate.batch}); or lower "
            "time_steps or batch_size"
        )


def on_device(data: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset's inputs and targets on ``device``."""
    return data.inputs.to(device), data.targets.to(device)


def _available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's free bytes, else MemAvailable (Linux), else free pages."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def _spec_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name", "?"))
