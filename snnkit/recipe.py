"""Public import path of :mod:`snnkit.recipes.loader` (where the code lives)."""

from snnkit.recipes.loader import Recipe, load_recipe

__all__ = ["Recipe", "load_recipe"]
