"""Public import path of :mod:`snnkit.plugins.registry` (where the code lives)."""

from snnkit.plugins.registry import Component, Kind, Parameter, PluginInfo, Registry

__all__ = ["Component", "Kind", "Parameter", "PluginInfo", "Registry"]
