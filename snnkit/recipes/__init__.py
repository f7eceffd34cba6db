"""Recipes: YAML -> a validated :class:`~snnkit.recipes.loader.Recipe` (syntax, overrides,
sections, component names and parameters), and the rules for what a resumed run may change."""
