"""CLI: exit codes, one-line errors, --json output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import snnkit
from snnkit.cli.app import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("only_builtins")


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"snnkit {snnkit.__version__}"


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["validate"], ["eval"], ["list"], ["show"], ["plugins"], ["export"], ["plot"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_list_json_has_the_documented_keys() -> None:
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {"kind", "name", "plugin", "version", "summary"} <= set(rows[0])
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("neuron", "lif") in names and ("surrogate", "sigmoid") in names


def test_list_one_kind_with_a_glob() -> None:
    result = runner.invoke(app, ["list", "surrogate", "--pattern", "piecewise*", "--json"])
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows} == {
        "piecewise_quadratic",
        "piecewise_exp",
        "piecewise_leaky_relu",
    }


def test_list_table_shows_plugin_and_summary() -> None:
    result = runner.invoke(app, ["list", "neuron"])
    assert result.exit_code == 0
    assert "lif" in result.stdout and "snnkit" in result.stdout and "Leaky" in result.stdout


def test_show_gives_parameters_types_defaults_and_supplied() -> None:
    result = runner.invoke(app, ["show", "neuron", "lif", "--json"])
    info = json.loads(result.stdout)
    params = {p["name"]: p for p in info["parameters"]}
    assert params["tau"]["default"] == 2.0 and params["tau"]["type"] == "float"
    assert info["supplied_by_snnkit"] == ["surrogate"] and "surrogate" not in params
    text = runner.invoke(app, ["show", "neuron", "lif"]).stdout
    assert "tau" in text and "supplied by snnkit: surrogate" in text


def test_show_prints_declared_ranges() -> None:
    info = json.loads(runner.invoke(app, ["show", "neuron", "lif", "--json"]).stdout)
    params = {p["name"]: p for p in info["parameters"]}
    assert params["tau"]["range"] == "> 1" and params["decay_input"]["range"] is None
    text = runner.invoke(app, ["show", "neuron", "lif"]).stdout
    tau_row = next(line for line in text.splitlines() if line.startswith("tau "))
    assert tau_row.split() == ["tau", "float", ">", "1", "2.0"]


def test_tables_print_square_brackets_as_written() -> None:
    """Summaries and types are text, not rich markup: ``[h, w]`` must not vanish."""
    wide = {"COLUMNS": "200"}
    listed = runner.invoke(app, ["list", "layer"], env=wide).stdout
    conv = next(line for line in listed.splitlines() if " conv2d " in line)
    assert "sizes int or [h, w]" in conv
    pool = next(line for line in listed.splitlines() if "adaptive_avgpool2d" in line)
    assert "(int or [h, w])" in pool
    shown = runner.invoke(app, ["show", "layer", "conv2d"], env=wide).stdout
    assert "int | tuple[int, int]" in shown and "[C_in, H, W]" in shown


def test_plugins_json_lists_the_builtins() -> None:
    rows = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    builtin = next(r for r in rows if r["name"] == "snnkit")
    assert builtin["status"] == "ok" and "register_neurons" in builtin["hooks"]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["list", "neurone"], "unknown component kind 'neurone'"),
        (["show", "surrogate", "sigmoi"], "did you mean 'sigmoid'"),
        (["show", "blob", "x"], "unknown component kind 'blob'"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.output


def test_warnings_print_as_one_line_and_in_full_under_debug() -> None:
    """A Python warning during a command reads ``warning: <message>`` (no file position or
    source line); ``--debug`` restores the full form."""
    import warnings

    from snnkit.cli.errors import one_line_warnings, set_debug

    saved = warnings.formatwarning
    try:
        set_debug(False)
        one_line_warnings()
        line = warnings.formatwarning("layer 6: a note", UserWarning, "x.py", 3, "code()")
        assert line == "warning: layer 6: a note\n"
        set_debug(True)
        one_line_warnings()
        full = warnings.formatwarning("layer 6: a note", UserWarning, "x.py", 3, "code()")
        assert "x.py:3: UserWarning: layer 6: a note" in full
    finally:
        set_debug(False)
        warnings.formatwarning = saved
