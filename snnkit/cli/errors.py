"""One-line errors for CLI commands: snnkit's user-facing errors print as ``error: ...``."""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from snnkit.errors import SnnkitError

#: Set by ``--debug`` for the command being run (``SNNKIT_DEBUG=1`` does the same).
_debug = False


_default_formatwarning = warnings.formatwarning


def set_debug(flag: bool) -> None:
    """Turn ``--debug`` on or off for this process."""
    global _debug
    _debug = flag


def debugging() -> bool:
    """``--debug`` was given, or ``SNNKIT_DEBUG`` is set to something other than 0 / false."""
    return _debug or os.environ.get("SNNKIT_DEBUG", "").strip().lower() not in ("", "0", "false")


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print snnkit's user-facing errors as one line and exit with their code."""
    try:
        yield
    except SnnkitError as err:
        cause = err.__cause__
        if cause is not None and debugging():
            typer.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except OSError as err:  # faults: a full or read-only disk outside snnkit's own writes
        from snnkit.engine.storage import NO_SPACE, READ_ONLY, write_failure

        failure = write_failure(err) if err.errno in NO_SPACE | READ_ONLY else None
        if failure is None:
            raise
        typer.echo(f"error: {failure}", err=True)
        raise typer.Exit(failure.exit_code) from None


def one_line_warnings() -> None:
    """Show Python warnings as ``warning: <message>`` (one line, no source line or file
    position) unless ``--debug`` / ``SNNKIT_DEBUG`` asks for the full form."""
    if debugging():
        warnings.formatwarning = _default_formatwarning
        return

    def fmt(message: Warning | str, *_: object, **__: object) -> str:
        return f"warning: {message}\n"

    warnings.formatwarning = fmt
