"""``snnkit profile RUN_DIR``: per-layer spike rates, SOPs, MACs, parameters and energy.

The model is rebuilt from the run's ``best.pt`` (else ``last.pt``) and run over the test set
(or its first ``--batches N`` evaluation batches) with counting hooks
(:mod:`snnkit.costs.counting`). ``--json`` prints a JSON list: one object per layer, in
forward order, with the keys ``layer`` (recipe path and type, e.g. ``"model.layers[1]
linear"``), ``shape`` (one sample's output), ``rate`` and ``silent`` (neurons with binary
output, else null), ``sops``, ``macs``, ``params``, ``energy_pj``; then one totals object with
``layer: "total"``, ``samples``, ``rate``, ``silent``, ``sops``, ``macs``, ``params``,
``energy_pj``, ``sops_per_sample``, ``macs_per_sample``, ``energy_pj_per_sample``, ``ac_pj``,
``mac_pj`` and ``bn_folded``. Counts are sums over the whole pass (all samples and steps).
The energy constants and ``fold_bn`` are the run's recipe's ``costs`` section unless
``--ac-pj``, ``--mac-pj`` or ``--fold-bn/--no-fold-bn`` override them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from snnkit.cli.errors import reported_errors


def profile(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (or a .pt checkpoint).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    batches: Annotated[
        int | None,
        typer.Option(help="Count only the first N test batches (default: the whole test set)."),
    ] = None,
    fold_bn: Annotated[
        bool | None,
        typer.Option(
            "--fold-bn/--no-fold-bn",
            help="Count BatchNorm as folded into the previous layer (0 MACs), or not "
            "(default: the run's costs.fold_bn).",
        ),
    ] = None,
    ac_pj: Annotated[
        float | None,
        typer.Option(
            "--ac-pj", help="Energy of one accumulate (SOP) in pJ (default: the run's recipe)."
        ),
    ] = None,
    mac_pj: Annotated[
        float | None,
        typer.Option(
            "--mac-pj",
            help="Energy of one multiply-accumulate in pJ (default: the run's recipe).",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or cuda:N (overrides train.device).")
    ] = None,
) -> None:
    """Per-layer firing rate, synaptic operations, MACs and energy of a trained run."""
    from snnkit.analysis.profile import checkpoint_of, profile_experiment
    from snnkit.costs.energy import EnergyModel
    from snnkit.engine.restore import restore_experiment
    from snnkit.errors import SnnkitError

    with reported_errors():
        for flag, value in (("--ac-pj", ac_pj), ("--mac-pj", mac_pj)):
            if value is not None and not value >= 0:
                raise SnnkitError(
                    f"{flag} {value}: must be a number >= 0 (picojoules per operation)"
                )
        exp, _ = restore_experiment(checkpoint_of(run_dir), device=device)
        recipe_energy = exp.recipe.costs.energy
        energy = EnergyModel(
            ac_pj=recipe_energy.ac_pj if ac_pj is None else ac_pj,
            mac_pj=recipe_energy.mac_pj if mac_pj is None else mac_pj,
        )
        report = profile_experiment(exp, batches, fold_bn=fold_bn, energy=energy)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
        return
    _print_table(report.as_json(), run_dir)


def _print_table(rows: list[dict[str, Any]], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    *layers, total = rows
    table = Table(
        "layer",
        "shape",
        "rate",
        "silent",
        "SOPs",
        "MACs",
        "params",
        "energy",
        box=None,
        pad_edge=False,
        title=f"{run_dir} · {total['samples']} test samples",
    )
    for col in table.columns[2:]:
        col.justify = "right"
    for row in [*layers, total]:
        shape = "×".join(str(d) for d in row["shape"]) if "shape" in row else ""
        table.add_row(
            row["layer"],
            shape,
            _pct(row["rate"]),
            _pct(row["silent"]),
            f"{row['sops']:,}",
            f"{row['macs']:,}",
            f"{row['params']:,}",
            _energy(row["energy_pj"]),
            end_section=row is layers[-1] if layers else False,
        )
    console = Console(width=max(120, Console().width), soft_wrap=False)
    console.print(table)
    console.print(
        f"per sample: {total['sops_per_sample']:,.0f} SOPs · "
        f"{total['macs_per_sample']:,.0f} MACs · "
        f"{_energy(total['energy_pj_per_sample'])} "
        f"({total['ac_pj']} pJ/AC, {total['mac_pj']} pJ/MAC; BatchNorm "
        f"{'folded' if total['bn_folded'] else 'counted, not folded'})",
        highlight=False,
    )


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _energy(pj: float) -> str:
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"
