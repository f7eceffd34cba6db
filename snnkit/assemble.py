"""Public import path of :mod:`snnkit.assembly.assemble` (where the code lives)."""

from snnkit.assembly.assemble import Experiment, assemble, on_device

__all__ = ["Experiment", "assemble", "on_device"]
