"""The optional ``nir`` package, imported on first use (snnkit runs without it)."""

from __future__ import annotations

from typing import Any

from snnkit.errors import SnnkitError


def _nir() -> Any:
    try:
        import nir
    except ImportError:  # pragma: no cover - depends on the environment
        raise SnnkitError(
            "nir: the package 'nir' is not installed — pip install 'snnkit[nir]' "
            "(or pip install nir)"
        ) from None
    return nir
