"""``python -m snnkit`` (and ``torchrun -m snnkit``) runs the CLI."""

from snnkit.cli import main_entry

main_entry()
