"""The API reference (mkdocs.yml, docs/api/) covers every sub-package, and the docs build
helpers in docs/_ext/ do what their docstrings say. CI builds the site with
``mkdocs build --strict``; these checks catch a missing page without building it."""

from __future__ import annotations

import importlib.util
import pkgutil
import re
import sys
from pathlib import Path

import pytest
import yaml

import snnkit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def nav_pages(nav: list) -> list[str]:
    """Every page path named in the mkdocs nav, depth first."""
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(nav_pages(value) if isinstance(value, list) else [value])
    return pages


def subpackages() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(snnkit.__path__) if m.ispkg)


def directives() -> dict[str, list[str]]:
    """``::: object`` directives of each docs/api page."""
    return {
        p.name: re.findall(r"^::: ([\w.]+)$", p.read_text(encoding="utf-8"), flags=re.M)
        for p in sorted((DOCS / "api").glob("*.md"))
    }


def test_every_nav_page_exists_and_every_page_is_in_the_nav() -> None:
    pages = nav_pages(CONFIG["nav"])
    for page in pages:
        assert (DOCS / page).is_file(), f"mkdocs.yml nav names a missing page: docs/{page}"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk <= set(pages), f"pages missing from the nav: {sorted(on_disk - set(pages))}"
    assert {"plugins.md", "nir.md"} <= set(pages)


@pytest.mark.parametrize("package", subpackages())
def test_every_subpackage_has_a_reference_page(package: str) -> None:
    documented = {d for ds in directives().values() for d in ds}
    assert f"snnkit.{package}" in documented, (
        f"snnkit.{package} has no API page: add docs/api/{package}.md with "
        f"'::: snnkit.{package}' and list it in mkdocs.yml's nav"
    )


# Top-level modules without a page of their own: the public re-export modules (their code is
# documented where it lives), the version string and ``python -m snnkit``.
REEXPORTS = {"assemble", "functional", "neurons", "recipe", "registry", "surrogates"}
NO_PAGE = REEXPORTS | {"version", "__main__"}


@pytest.mark.parametrize(
    "module",
    sorted(
        m.name
        for m in pkgutil.iter_modules(snnkit.__path__)
        if not m.ispkg and m.name not in NO_PAGE
    ),
)
def test_every_top_level_module_is_documented(module: str) -> None:
    documented = {d for ds in directives().values() for d in ds}
    assert f"snnkit.{module}" in documented, (
        f"snnkit.{module} is not in the API reference: add '::: snnkit.{module}' to a page of "
        "docs/api/ (top-level modules go in docs/api/index.md)"
    )


def test_the_hook_contract_is_documented() -> None:
    assert "snnkit.hookspecs" in directives()["plugins.md"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / "_ext" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_sphinx_roles_become_optional_autorefs_or_code() -> None:
    griffe = pytest.importorskip("griffe")
    roles = _load("griffe_roles")
    pkg = griffe.load("snnkit", search_paths=[str(ROOT)], allow_inspection=False)
    obj = pkg["kernels"]
    text = (
        "See :func:`reference_only`, :class:`~snnkit.errors.SnnkitError`, "
        ":mod:`snnkit.kernels.forms` and :func:`step_fn`."
    )
    out = roles.rewrite(text, pkg, obj)
    assert (
        '<autoref identifier="snnkit.kernels.switches.reference_only" optional>'
        "<code>reference_only</code></autoref>"
    ) in out
    assert (
        '<autoref identifier="snnkit.errors.SnnkitError" optional>'
        "<code>SnnkitError</code></autoref>"
    ) in out
    assert '<autoref identifier="snnkit.kernels.forms" optional>' in out
    assert "`step_fn`" in out and ":func:" not in out


def test_links_out_of_docs_become_paths_only_when_the_target_exists() -> None:
    hooks = _load("mkdocs_hooks")

    class File:
        src_path = "plugins.md"

    class Page:
        file = File()

    text = (
        "the example [`plugins/snnkit-triangle`](../plugins/snnkit-triangle), "
        "[the recipe](../recipes/lif_mnist_triangle.yaml), [gone](../no/such/file.md), "
        "[nir](nir.md)"
    )
    out = hooks.on_page_markdown(text, page=Page(), config={"docs_dir": str(DOCS)}, files=None)
    assert "the example `plugins/snnkit-triangle`," in out
    assert "the recipe (`recipes/lif_mnist_triangle.yaml`)" in out
    assert "[gone](../no/such/file.md)" in out  # left for mkdocs --strict to report
    assert "[nir](nir.md)" in out
