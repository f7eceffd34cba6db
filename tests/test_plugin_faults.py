"""Third-party plugins as installed distributions: discovery, provenance, and every fault isolated.

Each test writes installed-looking distributions into a folder on sys.path
(``snnkit_fake-0.1.dist-info/METADATA`` + ``entry_points.txt`` + the module), exactly what pip
leaves behind, so importlib.metadata finds them like real plugins. A faulty plugin must be
reported (``snnkit plugins``: ``failed: <reason>``) and skipped as a whole, while the built-ins,
the other plugins and ``snnkit validate`` keep working; a recipe that names one of its
components is told about the failure.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.errors import ComponentBuildError, UnknownComponentError
from snnkit.plugins import loader as plugins_module
from snnkit.plugins.loader import build_registry
from snnkit.plugins.registry import Kind, Registry

HEADER = "import torch\nfrom snnkit import hookimpl\nfrom snnkit.components.surrogates import Surrogate\n"

# A correct surrogate class, available to every fake plugin's source.
SPIKE_CLASS = '''
class Spike(Surrogate):
    """Sigmoid-shaped surrogate of a fake plugin: g(x) = σ(αx)."""

    def __init__(self, alpha: float = 4.0, spiking: bool = True) -> None:
        super().__init__(spiking)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)
'''

GOOD_PLUGIN = (
    SPIKE_CLASS
    + """
@hookimpl
def register_surrogates(register):
    register("good_spike", Spike)
"""
)


def plugin_source(hooks: str) -> str:
    return HEADER + SPIKE_CLASS + textwrap.dedent(hooks)


class Site:
    """A folder on sys.path that receives installed-looking distributions."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.modules: list[str] = []

    def install(
        self,
        dist: str,
        source: str,
        *,
        version: str = "0.1",
        entry_point: str | None = None,
        target: str | None = None,
    ) -> None:
        """Write distribution ``dist`` (e.g. snnkit-fake) with module ``snnkit_fake``."""
        module = dist.replace("-", "_")
        info = self.root / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        ep_name = entry_point or module.removeprefix("snnkit_")
        (info / "entry_points.txt").write_text(f"[snnkit]\n{ep_name} = {target or module}\n")
        (self.root / f"{module}.py").write_text(source)
        self.modules.append(module)
        self.monkeypatch.delitem(sys.modules, module, raising=False)
        importlib.invalidate_caches()

    def registry(self) -> Registry:
        importlib.invalidate_caches()
        return build_registry()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("SNNKIT_LOAD_PLUGINS", raising=False)
    plugins_module.get_registry.cache_clear()
    handle = Site(root, monkeypatch)
    yield handle
    plugins_module.get_registry.cache_clear()
    for module in handle.modules:  # imported from a folder that is about to disappear
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def plugins_json() -> dict[str, dict[str, Any]]:
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def write_recipe(folder: Path, surrogate: Any = "sigmoid") -> Path:
    """A tiny recipe on synthetic data (no files, no downloads) with the given surrogate."""
    recipe = {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 8, "shape": [1, 4, 4], "num_classes": 3},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 3},
                {"name": "lif", "surrogate": surrogate},
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 1.0e-3},
        "train": {"epochs": 1, "batch_size": 4, "device": "cpu"},
    }
    path = folder / f"recipe_{abs(hash(str(surrogate)))}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# --------------------------------------------------------------------------- discovery
def test_installed_plugin_is_discovered_with_distribution_and_version(
    site: Site, tmp_path: Path
) -> None:
    site.install("snnkit-good", HEADER + GOOD_PLUGIN, version="1.2.3")
    registry = site.registry()
    component = registry.get(Kind.SURROGATE, "good_spike")
    assert (component.plugin, component.version) == ("snnkit-good", "1.2.3")
    assert registry.plugins["snnkit-good"].status == "ok"
    assert registry.get(Kind.SURROGATE, "sigmoid").plugin == "snnkit"  # built-ins untouched

    info = plugins_json()["snnkit-good"]
    assert info == {
        "name": "snnkit-good",
        "version": "1.2.3",
        "hooks": ["register_surrogates"],
        "status": "ok",
    }
    listed = json.loads(cli("list", "surrogate", "--json").stdout)
    row = next(r for r in listed if r["name"] == "good_spike")
    assert (row["plugin"], row["version"]) == ("snnkit-good", "1.2.3")
    assert row["summary"] == "Sigmoid-shaped surrogate of a fake plugin: g(x) = σ(αx)."
    shown = json.loads(cli("show", "surrogate", "good_spike", "--json").stdout)
    assert [p["name"] for p in shown["parameters"]] == ["alpha", "spiking"]

    result = cli("validate", str(write_recipe(tmp_path, {"name": "good_spike", "alpha": "2"})))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")


# --------------------------------------------------------------------------- faults
FAULTS: dict[str, tuple[str, str]] = {
    # id: (hooks of the faulty plugin, a phrase its failure must contain)
    "import_error": (
        "import snnkit_missing_dependency\n",
        "import failed: ModuleNotFoundError: No module named 'snnkit_missing_dependency'",
    ),
    "syntax_error": ("def broken(:\n", "import failed: SyntaxError"),
    "misspelled_hook": (
        """
        @hookimpl
        def register_surrogate(register):
            register("fake_spike", Spike)
        """,
        "implements unknown hook 'register_surrogate' — did you mean 'register_surrogates'?",
    ),
    "wrong_hook_argument": (
        """
        @hookimpl
        def register_surrogates(reg):
            reg("fake_spike", Spike)
        """,
        "PluginValidationError",
    ),
    "name_taken_by_builtin": (
        """
        @hookimpl
        def register_surrogates(register):
            register("sigmoid", Spike)
        """,
        "plugin 'snnkit-fake' registers surrogate 'sigmoid', already registered by 'snnkit'",
    ),
    "invalid_name": (
        """
        @hookimpl
        def register_surrogates(register):
            register("FakeSpike", Spike)
        """,
        "names must be lower_snake_case, e.g. 'fake_spike'",
    ),
    "non_callable_factory": (
        """
        @hookimpl
        def register_surrogates(register):
            register("fake_spike", 42)
        """,
        "the factory 42 is not callable",
    ),
    "uninspectable_signature": (
        """
        @hookimpl
        def register_surrogates(register):
            register("fake_spike", max)  # inspect.signature(max) raises ValueError
        """,
        "its signature cannot be inspected (no signature found for builtin",
    ),
    "hook_raises": (
        """
        @hookimpl
        def register_surrogates(register):
            raise RuntimeError("license server offline")
        """,
        "hook register_surrogates raised RuntimeError: license server offline",
    ),
    "same_name_twice": (
        """
        @hookimpl
        def register_surrogates(register):
            register("fake_spike", Spike)
            register("fake_spike", Spike)
        """,
        "plugin 'snnkit-fake' registers surrogate 'fake_spike' twice",
    ),
    "one_bad_name_rejects_all": (
        """
        @hookimpl
        def register_surrogates(register):
            register("fake_spike", Spike)   # fine on its own, but the plugin is all or nothing
            register("sigmoid", Spike)
        """,
        "already registered by 'snnkit'",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_faulty_plugin_is_reported_and_skipped(fault: str, site: Site, tmp_path: Path) -> None:
    hooks, reason = FAULTS[fault]
    site.install("snnkit-good", HEADER + GOOD_PLUGIN)
    site.install("snnkit-fake", plugin_source(hooks))

    registry = site.registry()
    status = registry.plugins["snnkit-fake"].status
    assert status.startswith("failed: ") and reason in status, status
    assert [c.name for c in registry.list() if c.plugin == "snnkit-fake"] == []  # all or nothing
    assert (
        registry.get(Kind.SURROGATE, "sigmoid").factory.__module__ == "snnkit.components.surrogates"
    )
    assert registry.get(Kind.SURROGATE, "good_spike").plugin == "snnkit-good"
    builtins = build_registry(entry_points=False)
    for kind in Kind:  # every built-in of every kind is still there
        assert set(builtins.names(kind)) <= set(registry.names(kind)), kind

    # The CLI: a warning once, the reason in `snnkit plugins`, the rest still listed.
    result = cli("plugins", "--json")
    assert "warning: plugin 'snnkit-fake' skipped" in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["snnkit-fake"]["status"] == status
    assert rows["snnkit-good"]["status"] == rows["snnkit"]["status"] == "ok"
    names = {row["name"] for row in json.loads(cli("list", "surrogate", "--json").stdout)}
    assert {"sigmoid", "atan", "good_spike"} <= names

    ok = cli("validate", str(write_recipe(tmp_path, "sigmoid")))
    assert ok.exit_code == 0, ok.output
    assert cli("validate", str(write_recipe(tmp_path, "good_spike"))).exit_code == 0

    missing = cli("validate", str(write_recipe(tmp_path, "fake_spike")))
    assert missing.exit_code == 2
    assert "unknown surrogate 'fake_spike'" in missing.stderr
    assert f"plugin 'snnkit-fake' {status}" in missing.stderr


def test_unknown_component_error_names_the_failed_plugin(site: Site) -> None:
    site.install("snnkit-fake", plugin_source("import snnkit_missing_dependency\n"))
    registry = site.registry()
    with pytest.raises(UnknownComponentError, match=r"plugin 'snnkit-fake' failed: import failed"):
        registry.build(Kind.SURROGATE, "fake_spike", at="model.layers[2].surrogate")


def test_entry_point_loading_none_is_a_failure(site: Site) -> None:
    site.install("snnkit-fake", plugin_source("NOTHING = None\n"), target="snnkit_fake:NOTHING")
    status = site.registry().plugins["snnkit-fake"].status
    assert status == "failed: the entry point loads None"


def test_name_taken_by_another_plugin_names_both_and_keeps_the_first(site: Site) -> None:
    hooks = """
        @hookimpl
        def register_surrogates(register):
            register("shared_spike", Spike)
        """
    # Entry points load sorted by name: fake_a first, so it keeps the name.
    site.install("snnkit-fake-a", plugin_source(hooks))
    site.install("snnkit-fake-b", plugin_source(hooks))
    registry = site.registry()
    owner = registry.get(Kind.SURROGATE, "shared_spike")
    assert owner.plugin == "snnkit-fake-a"
    assert owner.factory.__module__ == "snnkit_fake_a"  # never overwritten by the second
    assert registry.plugins["snnkit-fake-a"].status == "ok"
    assert registry.plugins["snnkit-fake-b"].status == (
        "failed: plugin 'snnkit-fake-b' registers surrogate 'shared_spike', already registered "
        "by 'snnkit-fake-a'; skipped — register it under another name"
    )


def test_factory_raising_at_build_is_a_component_build_error_naming_the_plugin(
    site: Site, tmp_path: Path
) -> None:
    site.install(
        "snnkit-fake",
        plugin_source('''
        class Exploding(Spike):
            """Builds only where its compiled kernels exist."""

            def __init__(self, alpha: float = 4.0) -> None:
                raise RuntimeError("compiled kernels not found")

        @hookimpl
        def register_surrogates(register):
            register("exploding_spike", Exploding)
        '''),
    )
    registry = site.registry()
    assert registry.plugins["snnkit-fake"].status == "ok"  # registering builds nothing
    with pytest.raises(ComponentBuildError) as caught:
        registry.build(Kind.SURROGATE, {"name": "exploding_spike", "alpha": 2}, at="surrogate")
    assert str(caught.value) == (
        "surrogate: building surrogate 'exploding_spike' (plugin "
        "'snnkit-fake') failed: RuntimeError: compiled kernels not found"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)

    result = cli("validate", str(write_recipe(tmp_path, "exploding_spike")))
    assert result.exit_code == 2
    assert (
        "model.layers[2].surrogate: building surrogate 'exploding_spike' (plugin "
        "'snnkit-fake') failed"
    ) in result.stderr
    assert "Traceback" not in result.output


def test_factory_rejecting_a_value_is_a_parameter_error(site: Site, tmp_path: Path) -> None:
    site.install("snnkit-good", HEADER + GOOD_PLUGIN)
    result = cli("validate", str(write_recipe(tmp_path, {"name": "good_spike", "alpha": -1.0})))
    assert result.exit_code == 2
    assert "surrogate 'good_spike': alpha must be > 0, got -1.0" in result.stderr


# --------------------------------------------------------------------------- SNNKIT_LOAD_PLUGINS
@pytest.mark.parametrize(
    ("wanted", "loaded"),
    [
        (None, {"snnkit-fake-a", "snnkit-fake-b"}),
        ("fake_a", {"snnkit-fake-a"}),  # an entry-point name
        ("snnkit-fake-b", {"snnkit-fake-b"}),  # a distribution name
        (" fake_a , snnkit-fake-b ", {"snnkit-fake-a", "snnkit-fake-b"}),
        ("", set()),  # set but empty: no installed plugin
    ],
)
def test_load_plugins_env_selects_installed_plugins(
    wanted: str | None, loaded: set[str], site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    for letter in "ab":
        site.install(
            f"snnkit-fake-{letter}",
            plugin_source(f"""
            @hookimpl
            def register_surrogates(register):
                register("spike_{letter}", Spike)
            """),
        )
    if wanted is not None:
        monkeypatch.setenv("SNNKIT_LOAD_PLUGINS", wanted)
    registry = site.registry()
    assert {name for name in registry.plugins if name.startswith("snnkit-fake")} == loaded
    assert {
        c.plugin for c in registry.list(Kind.SURROGATE) if c.name.startswith("spike_")
    } == loaded
    assert "snnkit" in registry.plugins and (Kind.SURROGATE, "sigmoid") in registry


def test_load_plugins_env_avoids_importing_a_broken_plugin(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install("snnkit-fake-a", HEADER + GOOD_PLUGIN)
    site.install("snnkit-fake-b", plugin_source("import snnkit_missing_dependency\n"))
    monkeypatch.setenv("SNNKIT_LOAD_PLUGINS", "fake_a")
    registry = site.registry()
    assert registry.failures == []
    assert "snnkit_fake_b" not in sys.modules
    assert plugins_json()["snnkit-fake-a"]["status"] == "ok"


# --------------------------------------------------------------------------- harder faults


def test_unresolvable_string_hint_does_not_break_loading(site: Site) -> None:
    site.install("snnkit-good", HEADER + GOOD_PLUGIN)
    site.install(
        "snnkit-fake",
        "from __future__ import annotations\n"
        + plugin_source('''
        class Typo(Spike):
            """A surrogate whose hint has a typo."""

            def __init__(self, alpha: float = 4.0, scale: torch.Tensr = None) -> None:
                super().__init__(alpha)

        @hookimpl
        def register_surrogates(register):
            register("typo_spike", Typo)
        '''),
    )
    registry = site.registry()
    assert registry.get(Kind.SURROGATE, "good_spike").plugin == "snnkit-good"
    assert "snnkit-fake" in registry.plugins  # loaded with raw hints, or reported as failed


def test_plugin_exiting_at_import_is_a_failure(site: Site) -> None:
    site.install("snnkit-fake", plugin_source("raise SystemExit(2)\n"))
    status = site.registry().plugins["snnkit-fake"].status
    assert status.startswith("failed: import failed: SystemExit")


def test_hook_without_hookimpl_marker_is_a_failure(site: Site) -> None:
    site.install(
        "snnkit-fake",
        plugin_source("""
        def register_surrogates(register):  # forgot @hookimpl
            register("fake_spike", Spike)
        """),
    )
    status = site.registry().plugins["snnkit-fake"].status
    assert status.startswith("failed: ") and "hookimpl" in status, status


def test_distribution_with_two_entry_points_loads_both(site: Site) -> None:
    for letter in "ab":
        (site.root / f"snnkit_multi_{letter}.py").write_text(
            plugin_source(f"""
            @hookimpl
            def register_surrogates(register):
                register("multi_{letter}", Spike)
            """)
        )
        site.modules.append(f"snnkit_multi_{letter}")
    info = site.root / "snnkit_multi-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: snnkit-multi\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[snnkit]\na = snnkit_multi_a\nb = snnkit_multi_b\n")
    registry = site.registry()
    assert registry.failures == []
    assert {(Kind.SURROGATE, "multi_a"), (Kind.SURROGATE, "multi_b")} <= {
        (c.kind, c.name) for c in registry.list(Kind.SURROGATE)
    }
