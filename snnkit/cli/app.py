"""The ``snnkit`` command line: each command is a few lines around one library call.

Exit codes: 0 success; 2 bad input (recipe, names, data, device, a damaged checkpoint, a busy
or read-only run folder: one ``error:`` line on stderr, no traceback); 1 a failed run (e.g. a
NaN loss, a full disk, an exception inside a component); 128+N when stopped by signal N (after
saving a resumable checkpoint, or before anything was saved: the message says which).

``snnkit --debug COMMAND`` (or ``SNNKIT_DEBUG=1``) also prints the traceback of the exception
behind an error (e.g. a plugin's bug inside ``forward``), for the component's author.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from snnkit.cli.data import data_app
from snnkit.cli.errors import one_line_warnings, reported_errors, set_debug
from snnkit.cli.kernels import kernels_app
from snnkit.cli.plan import plan
from snnkit.cli.profile import profile
from snnkit.cli.sweep import sweep_app
from snnkit.errors import SnnkitError
from snnkit.version import __version__

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Train and evaluate spiking neural networks from YAML recipes.",
)
app.add_typer(data_app, name="data")
app.add_typer(kernels_app, name="kernels")
app.command("plan")(plan)

RecipeArg = Annotated[Path, typer.Argument(help="Recipe file (YAML), e.g. recipes/lif_mnist.yaml.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a recipe value: --set train.epochs=1 (value parsed as YAML)."
    ),
]
DeviceOpt = Annotated[
    str | None, typer.Option(help="auto, cpu, cuda or cuda:N (overrides train.device).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"snnkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="On an error, also print the traceback of the exception behind it (for a "
            "plugin's author); same as SNNKIT_DEBUG=1.",
        ),
    ] = False,
) -> None:
    """Train and evaluate spiking neural networks from YAML recipes."""
    set_debug(debug)
    one_line_warnings()


@app.command()
def run(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe file (YAML).")] = None,
    overrides: SetOpt = None,
    device: DeviceOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to create (must be new).")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder from last.pt.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print only the final lines.")] = False,
) -> None:
    """Validate, train and evaluate a recipe; write a run folder with metrics and checkpoints."""
    from snnkit.engine.progress import SilentReporter, default_reporter
    from snnkit.engine.run import run as run_recipe
    from snnkit.engine.trainer import Interrupted

    reporter = SilentReporter() if quiet else default_reporter()
    with reported_errors():
        try:
            result = run_recipe(
                recipe, overrides, device=device, out=out, resume=resume, reporter=reporter
            )
        except Interrupted as stop:
            typer.echo(stop.message, err=True)
            raise typer.Exit(stop.exit_code) from None
    from snnkit.engine.distributed import current_world

    if quiet and current_world().is_main:
        typer.echo(f"run folder: {result.run_dir}")
        typer.echo(f"best test accuracy: {result.best_test_acc:.2%} (epoch {result.best_epoch})")


@app.command()
def validate(recipe: RecipeArg, overrides: SetOpt = None, device: DeviceOpt = None) -> None:
    """Check a recipe and build everything short of training; print what would run."""
    from snnkit.assembly.assemble import assemble
    from snnkit.plugins.loader import get_registry
    from snnkit.recipes.loader import load_recipe

    with reported_errors():
        exp = assemble(load_recipe(recipe, overrides), get_registry(), device=device)
    typer.echo(f"ok: {exp.summary()}")


@app.command("eval")
def eval_checkpoint(
    path: Annotated[Path, typer.Argument(help="Run folder or checkpoint (.pt).")],
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Test-set loss and accuracy of a checkpoint."""
    from snnkit.engine.run import evaluate_checkpoint

    with reported_errors():
        result = evaluate_checkpoint(path, device=device)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{path}: test loss {result['test_loss']:.4f} · test accuracy "
            f"{result['test_acc']:.2%} (after epoch {result['epoch']})"
        )


@app.command("list")
def list_components(
    kind: Annotated[
        str | None,
        typer.Argument(
            help="neuron, surrogate, encoder, loss, layer, model, optimizer, scheduler, dataset "
            "or transform."
        ),
    ] = None,
    pattern: Annotated[str, typer.Option(help="Glob on names, e.g. 'piecewise*'.")] = "*",
    as_json: JsonOpt = False,
) -> None:
    """List registered components and the plugin each came from."""
    from snnkit.plugins.loader import get_registry

    with reported_errors():
        components = get_registry().list(kind, pattern)
    rows = [c.as_dict() for c in components]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(["kind", "name", "plugin", "version", "summary"], rows)


@app.command()
def show(
    kind: Annotated[str, typer.Argument(help="Component kind, e.g. neuron.")],
    name: Annotated[str, typer.Argument(help="Component name, e.g. lif.")],
    as_json: JsonOpt = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Surrogates only: also draw g(x) and g'(x) for several shape values into this PNG."
        ),
    ] = None,
) -> None:
    """Show a component's documentation, parameters (types, defaults) and plugin."""
    from snnkit.plugins.loader import get_registry
    from snnkit.plugins.registry import SUPPLIED, Kind

    with reported_errors():
        component = get_registry().get(kind, name)
        if plot is not None:
            if component.kind is not Kind.SURROGATE:
                raise SnnkitError(
                    f"--plot: only surrogates can be plotted, not {component.kind} "
                    f"'{name}' — try snnkit show surrogate sigmoid --plot out.png"
                )
            from snnkit.plots import plot_surrogate

            plot_surrogate(component.factory, plot)
            typer.echo(f"wrote {plot}", err=True)
    params = [
        {
            "name": p.name,
            "type": p.type_name,
            "range": p.range or None,
            "default": None if p.required else _jsonable(p.default),
            "required": p.required,
        }
        for p in component.parameters().values()
    ]
    info = {
        **component.as_dict(),
        "doc": component.doc,
        "parameters": params,
        "supplied_by_snnkit": sorted(SUPPLIED[component.kind]),
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"{component.kind} '{component.name}' from {component.plugin} {component.version}\n")
    typer.echo(component.doc + "\n")
    _table(
        ["parameter", "type", "default"],
        [
            {
                "parameter": p["name"],
                "type": f"{p['type']} {p['range'] or ''}".strip(),
                "default": "(required)" if p["required"] else repr(p["default"]),
            }
            for p in params
        ],
    )
    if info["supplied_by_snnkit"]:
        typer.echo(f"\nsupplied by snnkit: {', '.join(info['supplied_by_snnkit'])}")


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="Run folder or checkpoint (.pt).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write, e.g. model.nir.")],
    fmt: Annotated[str, typer.Option("--format", help="Export format (nir).")] = "nir",
    dt: Annotated[float, typer.Option(help="Duration of one time step in NIR's time unit.")] = 1.0,
    input_shape: Annotated[
        str | None,
        typer.Option(
            help="One sample's shape per step, e.g. 1,28,28 (default: from the recipe's dataset)."
        ),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Refuse lossy mappings instead of warning.")] = False,
) -> None:
    """Export a trained model to NIR (the neuromorphic intermediate representation)."""
    from snnkit.interop import save

    with reported_errors():
        if fmt != "nir":
            raise SnnkitError(f"--format: unknown export format '{fmt}' — the one format is nir")
        shape = None
        if input_shape is not None:
            try:
                shape = [int(d) for d in input_shape.replace("x", ",").split(",") if d.strip()]
            except ValueError:
                raise SnnkitError(
                    f"--input-shape: expected sizes like 1,28,28, got '{input_shape}'"
                ) from None
        path, warnings = save(source, output, input_shape=shape, dt=dt, strict=strict)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {path}")


@app.command("plot")
def plot_run(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by snnkit run.")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the PNG files (default: the run folder).")
    ] = None,
    sample: Annotated[int, typer.Option(help="Test-set index of the sample to trace.")] = 0,
) -> None:
    """Plot a run: learning curves, firing rates, output spikes and a membrane trace (PNG)."""
    from snnkit.plots import plot_run as plot

    with reported_errors():
        paths = plot(run_dir, out, sample=sample)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command()
def plugins(as_json: JsonOpt = False) -> None:
    """List plugins: version, the hooks each implements, and whether it loaded."""
    from snnkit.plugins.loader import get_registry

    rows = [p.as_dict() for p in get_registry().plugins.values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(
        ["name", "version", "hooks", "status"],
        [{**r, "hooks": ", ".join(h.removeprefix("register_") for h in r["hooks"])} for r in rows],
    )


app.command()(profile)  # snnkit/cli/profile.py
app.add_typer(sweep_app, name="sweep")  # snnkit/cli/sweep.py


def _table(columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Print ``rows`` as a plain rich table; cells are text, never rich markup (``[int]`` and
    ``[default]`` stay as written)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*(escape(str(row.get(c, ""))) for c in columns))
    Console(width=max(120, Console().width), soft_wrap=False).print(table)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def main_entry() -> None:
    """The console script: like ``app()``, but usage mistakes (a mistyped option or command)
    are one ``error:`` line with exit code 2 instead of a multi-line panel."""
    # click's UsageError, as vendored by typer
    usage_error: Any = typer.BadParameter.__mro__[1]
    try:
        code = app(standalone_mode=False, prog_name="snnkit")
    except usage_error as err:
        hint = f" — see {err.ctx.command_path} --help" if err.ctx else ""
        typer.echo(f"error: {err.format_message()}{hint}", err=True)
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("error: aborted", err=True)
        code = 130
    sys.exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main_entry()
