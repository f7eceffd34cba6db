"""The ``snnkit`` command line (typer); each command is a thin shell over one library call.

The console script is ``snnkit = snnkit.cli:main_entry``; commands live in
:mod:`snnkit.cli.app`.
"""

from snnkit.cli.app import app, main_entry

__all__ = ["app", "main_entry"]
