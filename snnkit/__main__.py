"""``python -m snnkit`` (and ``torchrun -m snnkit``) runs the CLI."""

from snnkit.cli.app import main_entry

main_entry()
