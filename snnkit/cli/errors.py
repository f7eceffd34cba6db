"""One-line errors for CLI commands: snnkit's user-facing errors print as ``error: ...``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from snnkit.errors import SnnkitError


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print an :class:`SnnkitError` as one ``error:`` line on stderr and exit with its code."""
    try:
        yield
    except SnnkitError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
