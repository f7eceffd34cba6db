"""``train.memory`` resolved against the estimate: the mode to train in, or a one-line error.

``auto`` takes the first of full, checkpoint, online (fastest first) whose estimated batch fits
``train.memory_budget`` (or, without one, the device's free memory); a named mode must fit the
budget when one is given. ``train.tbptt`` K < T turns ``full`` and ``checkpoint`` into ``tbptt``.
"""

from __future__ import annotations

import warnings

from torch import nn

from snnkit.assembly.memory.estimate import MemoryEstimate
from snnkit.assembly.memory.runner import unsupported_modules, warn_fallbacks
from snnkit.assembly.memory.segmented import SegmentedForward, segment_plan
from snnkit.errors import RecipeError
from snnkit.recipes.loader import Recipe
from snnkit.recipes.sizes import format_size


def resolve_mode(recipe: Recipe, estimate: MemoryEstimate, available: int) -> str:
    """The mode to train in: ``full``, ``checkpoint``, ``tbptt`` or ``online``."""
    train = recipe.train
    budget = train.budget_bytes
    mode = train.memory
    if mode == "auto":
        limit, what = (budget, "train.memory_budget") if budget else (available, "free memory")
        if not limit:
            mode = "full"
        else:
            chosen = estimate.choose(limit)
            if chosen is None:
                raise RecipeError(estimate.over_budget("online", limit, what))
            mode = chosen
            if mode == "online":
                warnings.warn(
                    f"train.memory: auto chose online ({format_size(estimate.total('online'))} "
                    f"fits {what} {format_size(limit)}; full and checkpoint do not): it "
                    "computes the SLTT gradient, not full BPTT",
                    UserWarning,
                    stacklevel=2,
                )
    if train.tbptt is not None and train.tbptt < recipe.time_steps and mode != "online":
        mode = "tbptt"
    if budget and mode != "auto" and estimate.total(mode) > budget:
        raise RecipeError(estimate.over_budget(mode, budget, "train.memory_budget"))
    return mode


def memory_forward(
    recipe: Recipe, mode: str, encoder: nn.Module, model: nn.Module
) -> nn.Module | None:
    """The :class:`SegmentedForward` of ``mode``, or None for ``full`` (the ordinary forward
    module). Layers that cannot run the mode as in full get one warning each; a model with
    state the segments cannot hand over trains in full mode, after a warning naming it."""
    plan = segment_plan(
        "checkpoint" if mode == "tbptt" else mode,
        recipe.time_steps,
        recipe.train.tbptt,
        recipe.train.segment_steps,
        recipe.train.recompute_macs,
    )
    if plan is None:
        return None
    blocked = unsupported_modules(model)
    if blocked:
        warnings.warn(
            f"train.memory={mode}: layer {blocked[0]} keeps state across steps that time "
            "segments cannot hand over — training in full mode instead",
            UserWarning,
            stacklevel=2,
        )
        return None
    warn_fallbacks(model, mode)
    return SegmentedForward(encoder, model, plan)
