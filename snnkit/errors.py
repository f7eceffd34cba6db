"""The error family for problems a *user* caused: one-line messages, each with an exit code.

Every message reads ``where: what — fix``. The CLI prints it after ``error:`` and exits with
``exit_code`` (2 for bad input, 1 for a failed run). Programming errors are ordinary exceptions
and keep their tracebacks.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SnnkitError(Exception):
    """A problem caused by the user's input; its message is one line: ``where: what — fix``."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split("\n")))


class RecipeError(SnnkitError):
    """The recipe (YAML, overrides or skeleton) is malformed."""


class UnknownComponentError(SnnkitError, LookupError):
    """A recipe or a caller names a component no plugin registered."""


class ParameterError(SnnkitError):
    """A component parameter is unknown, missing, of the wrong type or out of range."""


class ComponentBuildError(SnnkitError):
    """A factory raised while building a component from a recipe."""


class PluginError(SnnkitError):
    """A plugin broke the plugin API (bad name, clash, misspelled hook, failed import)."""


class DataError(SnnkitError):
    """Dataset files are missing, truncated or corrupt."""


class CheckpointError(SnnkitError):
    """A checkpoint is missing, unsafe, corrupt or of an incompatible format version."""


class DeviceError(SnnkitError):
    """The requested device is not present on this machine."""


class TrainingError(SnnkitError):
    """Training failed (e.g. the loss became NaN); the last good checkpoint is kept."""

    exit_code = 1


class StorageError(SnnkitError, OSError):
    """Writing to the run folder failed (disk full, read-only, I/O error) while running; what
    was saved before is kept. Also an :class:`OSError`, so callers that caught the raw write
    error keep working."""

    exit_code = 1


# -- message pieces shared by every error site ------------------------------------------------
def one_line(
    err: BaseException, limit: int | None = None, *, first_line: bool = False, typed: bool = False
) -> str:
    """The message of ``err`` fit for one line of an error message.

    Whitespace runs (newlines included) collapse to one space; with ``first_line`` only the
    first line is kept instead. A message longer than ``limit`` is cut to ``limit`` characters,
    the last one ``…``. An empty message reads as the exception's class name; with ``typed``
    the class name prefixes the text: ``ValueError: bad value``.
    """
    text = str(err).strip()
    text = (text.splitlines() or [""])[0] if first_line else " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    name = type(err).__name__
    if not text:
        return name
    return f"{name}: {text}" if typed else text


def close_matches(word: object, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``choices`` that look like ``word`` (difflib ratio >= 0.6), best first."""
    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=0.6)


def did_you_mean(word: object, choices: Iterable[str], n: int = 3) -> str:
    """``" — did you mean 'a' or 'b'?"`` for the close matches of ``word``; ``""`` if none."""
    close = close_matches(word, choices, n)
    return f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
