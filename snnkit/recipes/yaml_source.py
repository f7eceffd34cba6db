"""Reading recipe YAML and applying ``--set`` overrides: the first two layers of
:mod:`snnkit.recipes.loader`.

YAML is read with a ``yaml.SafeLoader`` subclass that also refuses duplicate keys and non-string
keys (no Python object tags, ever); a syntax error is one line ``file:line:col: ...``. An
override ``a.b=c`` parses ``c`` as YAML and walks mappings by key and lists by index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from snnkit.errors import RecipeError, one_line

#: Keys whose string value is a component name (shorthand for ``{name: ...}``).
SPEC_KEYS = ("dataset", "encoder", "model", "loss", "optimizer", "scheduler", "surrogate", "neuron")


def a_noun(noun: str) -> str:
    """``"an int"`` / ``"a list"``."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only) that also refuses duplicate and non-string keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"keys must be names, got {key!r} (quote it if it is meant "
                    "as text: YAML reads yes/no/on/off as booleans)",
                    mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first at line {seen[key]}) — keep one",
                    mark,
                )
            seen[key] = mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Load the file with the safe loader; every failure is a one-line RecipeError."""
    if not path.exists():
        raise RecipeError(f"{path}: no such file — check the path (recipes live in recipes/)")
    if path.is_dir():
        raise RecipeError(
            f"{path}: is a directory — pass a recipe file such as {path / 'lif_mnist.yaml'}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(
            f"{path}: cannot read the file ({err.__class__.__name__}: "
            f"{one_line(err)}) — pass a UTF-8 text file"
        ) from None
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as err:
        pos = _position(path, err.problem_mark)
        problem = err.problem or ""
        if "could not determine a constructor" in problem:
            tag = problem.rpartition("tag ")[2].strip("'")
            raise RecipeError(
                f"{pos}: YAML tag {tag.replace('tag:yaml.org,2002:', '!!')} is not "
                "allowed — recipes are read with yaml.safe_load and hold plain data "
                "only (no tags); remove the tag"
            ) from None
        raise RecipeError(f"{pos}: {problem}") from None
    except yaml.YAMLError as err:
        pos = _position(path, getattr(err, "problem_mark", None))
        problem = getattr(err, "problem", None) or one_line(err)
        raise RecipeError(
            f"{pos}: invalid YAML: {problem} — fix the syntax at that position"
        ) from None
    if data is None:
        raise RecipeError(f"{path}: the recipe is empty — start from recipes/lif_mnist.yaml")
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe must be a mapping of sections (seed, dataset, model, "
            f"...), got {a_noun(type(data).__name__)} — start from "
            "recipes/lif_mnist.yaml"
        )
    return data


def apply_override(raw: dict[str, Any], text: str) -> None:
    """Apply one ``a.b.c=value`` override in place; ``value`` is parsed as YAML."""
    key, sep, value_text = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or any(not p.strip() for p in parts):
        raise RecipeError(
            f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. --set train.epochs=1"
        )
    parts = [p.strip() for p in parts]
    try:
        value = yaml.load(value_text, Loader=_SafeLoader) if value_text.strip() else None  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise RecipeError(
            f"--set {text!r}: the value is not valid YAML ({problem}) — quote it, "
            "e.g. --set 'dataset.root=\"my folder\"'"
        ) from None
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            index = _index(part, node, where, text)
            if isinstance(node[index], str):  # a layer given by name: `lif` -> {name: lif}
                node[index] = {"name": node[index]}
            node = node[index]
        else:
            if isinstance(node.get(part), str) and part in SPEC_KEYS:
                node[part] = {"name": node[part]}
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if not isinstance(node, (dict, list)):
            raise RecipeError(
                f"--set {text!r}: '{where}' holds the value {node!r}, not a "
                f"section — set it directly: --set {where}=..."
            )
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key.strip(), text)] = value
    else:
        node[last] = value


def _index(part: str, node: list[Any], where: str, text: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"--set {text!r}: '{where}' must be a list index 0..{len(node) - 1}")
    return int(part)


def _position(path: Path, mark: Any) -> str:
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
