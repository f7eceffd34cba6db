"""The plugin guide (docs/plugins.md) stays true to the code it documents."""

from __future__ import annotations

import inspect
import re
import sys
import types
from pathlib import Path

import pytest
import tomllib
import torch
import yaml

from snnkit import hookspecs, testing
from snnkit.plugins.loader import ENTRY_POINT_GROUP, build_registry
from snnkit.plugins.registry import SUPPLIED, Kind

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
PLUGIN = ROOT / "plugins" / "snnkit-triangle"
BUILTINS = build_registry(entry_points=False)


def hookspec_functions() -> dict[str, types.FunctionType]:
    """Every function hookspecs.py marks as a hook specification."""
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, "snnkit_spec")
    }


def signature_line(fn: types.FunctionType) -> str:
    """The ``def ...:`` line exactly as written in hookspecs.py."""
    return next(
        line.strip()
        for line in inspect.getsource(fn).splitlines()
        if line.lstrip().startswith("def ")
    )


def section(hook: str) -> str:
    """The guide's section for ``hook``: from its heading to the next heading."""
    match = re.search(rf"^### `{hook}`\n(.*?)(?=^#)", GUIDE, flags=re.S | re.M)
    assert match, f"docs/plugins.md has no section '### `{hook}`'"
    return match.group(1)


def test_every_kind_has_a_hookspec() -> None:
    assert set(hookspec_functions()) == {kind.hook for kind in Kind}


@pytest.mark.parametrize("hook", sorted(hookspec_functions()))
def test_guide_shows_each_hook_with_its_exact_signature(hook: str) -> None:
    line = signature_line(hookspec_functions()[hook])
    assert line == f"def {hook}(register: Register) -> None:"  # what plugins must write
    assert f"```python\n{line}\n```" in section(hook)


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_guide_lists_what_snnkit_supplies_for_each_kind(kind: Kind) -> None:
    bullet = re.search(r"snnkit supplies (.*?)(?=\n- |\Z)", section(kind.hook), flags=re.S)
    assert bullet, f"the {kind.hook} section does not say what snnkit supplies"
    if SUPPLIED[kind]:
        for name in SUPPLIED[kind]:
            assert re.search(rf"`{name}[`(]", bullet.group(1)), (kind, name)
    else:
        assert bullet.group(1).startswith("nothing"), kind


@pytest.mark.parametrize("component", BUILTINS.list(), ids=lambda c: f"{c.kind}:{c.name}")
def test_every_builtin_has_a_summary(component) -> None:
    # `snnkit list` shows the first docstring line; it must say something on its own.
    assert component.summary, f"{component.kind} '{component.name}' has no docstring summary"
    assert len(component.summary) > 10


def test_guide_names_every_conformance_check() -> None:
    for name in testing.__all__:
        assert f"`{name}(" in GUIDE, name


def test_guide_and_example_plugin_use_the_entry_point_group() -> None:
    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in GUIDE
    assert "SNNKIT_LOAD_PLUGINS" in GUIDE
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert (project["name"], project["version"]) == ("snnkit-triangle", "0.1.0")
    assert project["dependencies"] == ["snnkit"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == {"triangle": "snnkit_triangle"}
    assert (PLUGIN / "snnkit_triangle.py").is_file() and (PLUGIN / "README.md").is_file()


def test_guide_example_module_works_as_a_plugin() -> None:
    # The first python block of section 1 is the plugin module of the walkthrough: load it as a
    # module, hand it to the loader and run the conformance check on what it registers.
    code = re.search(r"`snnkit_triangle\.py`.*?```python\n(.*?)```", GUIDE, flags=re.S).group(1)
    module = types.ModuleType("snnkit_guide_example")
    sys.modules[module.__name__] = module  # so that inspect can resolve the factory's hints
    try:
        exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
        registry = build_registry(plugins=[module], entry_points=False)
        assert registry.plugins["snnkit_guide_example"].status == "ok"
        surrogate = registry.build(Kind.SURROGATE, {"name": "triangle", "alpha": "0.5"})
        testing.check_surrogate(surrogate, dtype=torch.float64)
    finally:
        del sys.modules[module.__name__]


def test_triangle_recipe_is_the_default_with_another_surrogate() -> None:
    text = (ROOT / "recipes" / "lif_mnist_triangle.yaml").read_text(encoding="utf-8")
    assert text.startswith("# ")  # a header comment says what it is and what it needs
    triangle = yaml.safe_load(text)
    default = yaml.safe_load((ROOT / "recipes" / "lif_mnist.yaml").read_text(encoding="utf-8"))
    neuron = triangle["model"]["layers"][-1]
    assert neuron.pop("surrogate") == {"name": "triangle", "alpha": 1.0}
    default["model"]["layers"][-1].pop("surrogate")
    assert triangle == default
