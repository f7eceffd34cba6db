"""One-line errors for CLI commands: snnkit's user-facing errors print as ``error: ...``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from snnkit.errors import SnnkitError


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print snnkit's user-facing errors as one line and exit with their code."""
    try:
        yield
    except SnnkitError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except OSError as err:  # faults: a full or read-only disk outside snnkit's own writes
        from snnkit.engine.storage import NO_SPACE, READ_ONLY, write_failure

        failure = write_failure(err) if err.errno in NO_SPACE | READ_ONLY else None
        if failure is None:
            raise
        typer.echo(f"error: {failure}", err=True)
        raise typer.Exit(failure.exit_code) from None
