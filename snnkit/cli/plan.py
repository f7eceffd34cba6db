"""``snnkit plan RECIPE [--set k=v]...``: what a training batch costs before anything trains.

Prints, for the recipe's T and batch: each layer's saved activation memory per time step, the
activation memory of ``full`` / ``checkpoint`` / ``online`` (and ``tbptt`` when set), the
parameters with their gradients and optimizer state, and an estimated time per batch (one
training step per mode measured at a small batch, scaled linearly to the recipe's batch;
``--no-time`` skips it); then the mode ``train.memory`` resolves to. The memory figures are
:mod:`snnkit.assembly.memory.estimate` measured with the kernels training uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from snnkit.errors import SnnkitError
from snnkit.recipes.sizes import format_size


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except SnnkitError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None


def plan(
    recipe: Annotated[Path, typer.Argument(help="Recipe file (YAML).")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe value (YAML).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    timing: Annotated[bool, typer.Option("--time/--no-time", help="Time each mode.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per-layer activation memory, each memory mode's total and time per batch."""
    from snnkit.assembly.assemble import assemble
    from snnkit.plugins.loader import get_registry
    from snnkit.recipes.loader import load_recipe

    with _reported():
        loaded = load_recipe(recipe, overrides)
        _build_kernels()  # the estimate then runs the kernels training runs
        exp = assemble(loaded, get_registry(), device=device, fast_input=True)
    report = plan_report(exp, timing=timing)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    typer.echo(
        f"{exp.recipe.label}: T={report['time_steps']}, batch {report['batch']} on {exp.device}"
    )
    typer.echo(f"{'layer':<14}{'kind':<18}{'saved per step':>16}{'state':>12}")
    for row in report["layers"]:
        typer.echo(
            f"{row['name']:<14}{row['kind']:<18}{format_size(row['step_bytes']):>16}"
            f"{format_size(row['state_bytes']):>12}"
        )
    if report["full_step_bytes"] is not None:
        typer.echo(
            "(per layer as the layers run one by one; full as training runs it keeps "
            f"{format_size(report['full_step_bytes'])} per step)"
        )
    typer.echo(f"parameters + gradients + optimizer state: {format_size(report['fixed_bytes'])}")
    typer.echo(f"{'mode':<12}{'activations':>14}{'total':>14}{'time/batch':>12}  gradient")
    for mode, row in report["modes"].items():
        seconds = row.get("seconds")
        shown = f"{seconds:.3g} s" if seconds is not None else "-"
        typer.echo(
            f"{mode:<12}{format_size(row['activations']):>14}{format_size(row['total']):>14}"
            f"{shown:>12}  {row['gradient']}"
        )
    typer.echo(f"train.memory: {exp.recipe.train.memory} -> {exp.memory}")


GRADIENTS = {
    "full": "exact BPTT",
    "checkpoint": "exact BPTT (recomputed)",
    "tbptt": "truncated BPTT",
    "online": "SLTT (temporal path dropped)",
}


def _build_kernels() -> None:
    """Compile the CPU kernels now if they are not (announced; nothing with SNNKIT_NO_CPP)."""
    from snnkit.kernels.cpu.build import PARTS, load_part

    for part in PARTS:
        load_part(part)


def plan_report(exp: Any, *, timing: bool = True) -> dict[str, Any]:
    """The plan as plain data: per-layer rows, per-mode activations / totals / seconds, from
    the estimate the assembly chose the mode and checked the free memory with."""
    r = exp.recipe
    batch = max(r.train.batch_size, r.train.eval_batch_size or 0)
    est = exp.estimate
    modes = ["full", "checkpoint", "online"] + (["tbptt"] if r.train.tbptt else [])
    seconds = _time_modes(exp, modes) if timing else {}
    return {
        "time_steps": r.time_steps,
        "batch": batch,
        "layers": [
            vars(row)
            | {"step_bytes": row.step_bytes * batch, "state_bytes": row.state_bytes * batch}
            for row in est.layers
        ],
        "full_step_bytes": (None if est.full_step_bytes is None else est.full_step_bytes * batch),
        "fixed_bytes": est.fixed_bytes,
        "modes": {
            m: {
                "activations": est.activations(m),
                "total": est.total(m),
                "seconds": seconds.get(m),
                "gradient": GRADIENTS[m],
            }
            for m in modes
        },
        "chosen": exp.memory,
    }


def _time_modes(exp: Any, modes: list[str]) -> dict[str, float]:
    """Seconds per batch of each mode: the second of two training steps at a batch of at
    most 8, scaled to the recipe's batch."""
    from snnkit.assembly.data import first_inputs, first_targets
    from snnkit.assembly.fast_input import build_forward
    from snnkit.assembly.memory.segmented import SegmentedForward, segment_plan

    r = exp.recipe
    small = min(r.train.batch_size, 8, len(exp.train_data))
    x = first_inputs(exp.train_data, small).to(exp.device)
    y = first_targets(exp.train_data, small).to(exp.device)
    out: dict[str, float] = {}
    state = {k: v.detach().clone() for k, v in exp.model.state_dict().items()}
    exp.model.train()
    with torch.random.fork_rng(devices=[]):
        for mode in modes:
            seg = segment_plan(
                "checkpoint" if mode == "tbptt" else mode,
                r.time_steps,
                r.train.tbptt,
                r.train.segment_steps,
                r.train.recompute_macs,
            )
            fwd = (
                build_forward(exp.encoder, exp.model, fast_input=r.train.fast_input)
                if seg is None
                else SegmentedForward(exp.encoder, exp.model, seg)
            )
            for _ in range(2):
                start = time.perf_counter()
                getattr(exp.loss, "clear", lambda: None)()  # a penalty's recorded spikes
                exp.loss(fwd(x).float(), y).backward()
                if exp.device.type == "cuda":
                    torch.cuda.synchronize(exp.device)
                elapsed = time.perf_counter() - start
            exp.model.zero_grad(set_to_none=True)
            out[mode] = elapsed * r.train.batch_size / small
    exp.model.load_state_dict(state)
    return out
