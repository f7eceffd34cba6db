"""``python -m snnkit`` (and ``torchrun -m snnkit``) runs the CLI."""

from snnkit.cli import app

app(prog_name="snnkit")
