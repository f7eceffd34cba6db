"""The error family for problems a *user* caused: one-line messages, each with an exit code.

Every message reads ``where: what — fix``. The CLI prints it after ``error:`` and exits with
``exit_code`` (2 for bad input, 1 for a failed run). Programming errors are ordinary exceptions
and keep their tracebacks.
"""

from __future__ import annotations


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
