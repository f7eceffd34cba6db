"""The plugin system: the registry, the loader that fills it through pluggy, and the catalogue
of built-ins (registered through the same hooks as any third-party plugin).

The hook contract itself is :mod:`snnkit.hookspecs` (``import snnkit; @snnkit.hookimpl``).
"""

from snnkit.plugins.loader import build_registry, get_registry
from snnkit.plugins.registry import Component, Kind, Registry

__all__ = ["Component", "Kind", "Registry", "build_registry", "get_registry"]
