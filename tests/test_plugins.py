"""Plugin wiring: built-ins load through the hooks, fake plugins per test, guarded loading."""

from __future__ import annotations

import snnkit
from snnkit.plugins.loader import build_registry
from snnkit.plugins.registry import Kind


class Triangle:
    """Triangle test surrogate."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha


class GoodPlugin:
    __name__ = "snnkit-good"
    __version__ = "0.3"

    @snnkit.hookimpl
    def register_surrogates(self, register):
        register("triangle_test", Triangle)

    @snnkit.hookimpl
    def register_losses(self, register):
        register("zero_loss", lambda: 0)


class ClashPlugin:
    __name__ = "snnkit-clash"

    @snnkit.hookimpl
    def register_surrogates(self, register):
        register("fine_one", Triangle)
        register("sigmoid", Triangle)


class TyposPlugin:
    __name__ = "snnkit-typo"

    @snnkit.hookimpl
    def register_surogates(self, register):
        register("x", Triangle)


class RaisingPlugin:
    __name__ = "snnkit-raises"

    @snnkit.hookimpl
    def register_neurons(self, register):
        raise RuntimeError("cannot find CUDA toolkit")


def test_builtins_register_every_kind_under_plugin_snnkit() -> None:
    reg = build_registry(entry_points=False)
    for kind in Kind:
        assert reg.list(kind), f"no built-in {kind}"
    assert {c.plugin for c in reg.list()} == {"snnkit"}
    assert reg.get("neuron", "lif").version == snnkit.__version__
    info = reg.plugins["snnkit"]
    assert info.status == "ok" and set(info.hooks) == {k.hook for k in Kind}


def test_a_plugin_adds_components_with_provenance() -> None:
    reg = build_registry(plugins=[GoodPlugin()], entry_points=False)
    c = reg.get("surrogate", "triangle_test")
    assert (c.plugin, c.version) == ("snnkit-good", "0.3")
    assert reg.plugins["snnkit-good"].hooks == ("register_losses", "register_surrogates")


def test_a_clash_skips_the_whole_plugin_and_names_both() -> None:
    reg = build_registry(plugins=[ClashPlugin()], entry_points=False)
    status = reg.plugins["snnkit-clash"].status
    assert status.startswith("failed:") and "'snnkit-clash'" in status and "'snnkit'" in status
    assert ("surrogate", "fine_one") not in reg
    assert reg.get("surrogate", "sigmoid").plugin == "snnkit"


def test_a_misspelled_hook_is_reported_with_the_right_name() -> None:
    reg = build_registry(plugins=[TyposPlugin(), GoodPlugin()], entry_points=False)
    status = reg.plugins["snnkit-typo"].status
    assert "unknown hook 'register_surogates'" in status
    assert "did you mean 'register_surrogates'" in status
    assert ("surrogate", "triangle_test") in reg


def test_a_raising_hook_fails_only_its_plugin() -> None:
    reg = build_registry(plugins=[RaisingPlugin()], entry_points=False)
    assert "RuntimeError: cannot find CUDA toolkit" in reg.plugins["snnkit-raises"].status
    assert reg.get("neuron", "lif").plugin == "snnkit"


def test_unknown_name_mentions_failed_plugins() -> None:
    reg = build_registry(plugins=[RaisingPlugin()], entry_points=False)
    try:
        reg.get("neuron", "fancy")
    except snnkit.SnnkitError as err:
        assert "plugin 'snnkit-raises' failed" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected an error")


def test_failures_are_warned_once_on_stderr(capsys) -> None:
    build_registry(plugins=[RaisingPlugin()], entry_points=False, warn=True)
    err = capsys.readouterr().err
    assert err.count("warning: plugin 'snnkit-raises' skipped") == 1


def test_each_build_is_a_fresh_registry() -> None:
    a = build_registry(plugins=[GoodPlugin()], entry_points=False)
    b = build_registry(entry_points=False)
    assert ("surrogate", "triangle_test") in a and ("surrogate", "triangle_test") not in b
