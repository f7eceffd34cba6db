"""Griffe extension: Sphinx-style roles in snnkit's docstrings become API-reference links.

snnkit's docstrings write cross-references the Sphinx way (:func:`lif_step`,
:class:`~snnkit.errors.SnnkitError`, :mod:`snnkit.kernels`). mkdocstrings reads docstrings as
Markdown, where such a role would show as ``:func:`` followed by code. This extension rewrites
every role once the package is loaded:

- the target is looked up like Sphinx does: a dotted path from ``snnkit``, else a name in the
  enclosing class, its module, or that module's package;
- a target that exists becomes ``<autoref identifier="path" optional>`` (mkdocs-autorefs turns
  it into a link when the object has a page, and into plain text otherwise, without a warning);
- a target that does not exist (a parameter, a method of a duck-typed object) becomes plain
  inline code.

The title is the text as written, or its last component with Sphinx's ``~`` prefix.
Used by mkdocs.yml (``extensions``); it changes only the rendered docs, never the package.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`(?P<tilde>~?)"
    r"(?P<target>[A-Za-z_][\w.]*)(?P<call>\(\))?`"
)


def _lookup(pkg: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    """The object at dotted ``path`` (starting with the package's name), or None."""
    head, _, rest = path.partition(".")
    if head != pkg.name:
        return None
    if not rest:
        return pkg
    try:
        return pkg[rest]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _scopes(obj: griffe.Object) -> list[str]:
    """Where a relative name in ``obj``'s docstring is looked up, innermost first."""
    scopes: list[str] = []
    node: griffe.Object | None = obj
    while node is not None:
        if node.is_module or node.is_class:
            scopes.append(node.path)
        node = node.parent  # type: ignore[assignment]
    return scopes


def _resolve(pkg: griffe.Module, obj: griffe.Object, target: str) -> str | None:
    candidates = [target] + [f"{scope}.{target}" for scope in _scopes(obj)]
    for path in candidates:
        found = _lookup(pkg, path)
        if found is not None:
            try:
                return str(found.canonical_path)
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return path
    return None


def rewrite(text: str, pkg: griffe.Module, obj: griffe.Object) -> str:
    """``text`` with every Sphinx role replaced by an optional autoref or inline code."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        title = (target.rsplit(".", 1)[-1] if match["tilde"] else target) + (match["call"] or "")
        path = _resolve(pkg, obj, target)
        if path is None:
            return f"`{title}`"
        return (
            f'<autoref identifier="{html.escape(path)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    return ROLE.sub(replace, text)


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = rewrite(obj.docstring.value, pkg, obj)
