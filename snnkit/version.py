"""The package version (one place: pyproject.toml reads nothing from here; keep both equal)."""

__version__ = "0.1.0"
