"""Find plugins and collect their components into a Registry (the only module that calls pluggy).

Order: snnkit's built-ins (plugin ``snnkit``) first, then installed distributions that declare an
entry point in the group ``snnkit`` (sorted by entry-point name), then plugins passed in by the
caller (tests). A fault in a third-party plugin — an import error, a misspelled hook, a hook
that raises, a bad or taken name, a non-callable factory — is recorded as that plugin's failure,
warned about once on stderr, and the whole plugin is skipped; a fault in the built-ins raises.

``SNNKIT_LOAD_PLUGINS=a,b`` loads only the named installed plugins (entry-point or distribution
names); set but empty loads none. Built-ins always load.
"""

from __future__ import annotations

import collections
import functools
import importlib.metadata
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from snnkit import hookspecs
from snnkit.errors import PluginError, did_you_mean, one_line
from snnkit.plugins.registry import Kind, PluginInfo, Registry

ENTRY_POINT_GROUP = "snnkit"
BUILTIN_PLUGIN = "snnkit"


def build_registry(
    *, plugins: Iterable[object] = (), entry_points: bool = True, warn: bool = False
) -> Registry:
    """Collect components from the built-ins, installed plugins and ``plugins`` into a Registry."""
    from snnkit.plugins import catalogue as builtins
    from snnkit.version import __version__

    registry = Registry()
    pm = pluggy.PluginManager("snnkit")
    pm.add_hookspecs(hookspecs)
    _collect(registry, pm, builtins, BUILTIN_PLUGIN, __version__)  # faults here raise
    candidates: list[tuple[str, str, Callable[[], object]]] = []
    if entry_points:
        candidates += _installed_plugins()
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        candidates.append((name, str(getattr(plugin, "__version__", "")), _returning(plugin)))
    for name, version, load in candidates:
        try:
            try:
                plugin = load()
            except (Exception, SystemExit) as err:  # a failed import is skipped
                raise PluginError(f"import failed: {one_line(err, typed=True)}") from err
            _collect(registry, pm, plugin, name, version)
        except PluginError as err:
            registry.note_plugin(PluginInfo(name, version, (), f"failed: {err}"))
            if warn:
                print(
                    f"warning: plugin '{name}' skipped: {err} (see: snnkit plugins)",
                    file=sys.stderr,
                )
    return registry


@functools.cache
def get_registry() -> Registry:
    """The registry of this process: built-ins plus installed plugins, built on first use."""
    return build_registry(warn=True)


def _installed_plugins() -> list[tuple[str, str, Callable[[], object]]]:
    wanted = os.environ.get("SNNKIT_LOAD_PLUGINS")
    allow = None if wanted is None else {_canonical(w) for w in wanted.split(",") if w.strip()}
    eps = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    per_dist = collections.Counter(_dist_name(ep) for ep in eps)
    found = []
    for ep in eps:
        dist = getattr(ep, "dist", None)
        dist_name = _dist_name(ep)
        version = dist.version if dist is not None else ""
        if dist_name == BUILTIN_PLUGIN:
            continue
        if allow is not None and not ({_canonical(ep.name), _canonical(dist_name)} & allow):
            continue
        name = dist_name if per_dist[dist_name] == 1 else f"{dist_name}:{ep.name}"
        found.append((name, version, ep.load))
    return found


def _collect(
    registry: Registry, pm: pluggy.PluginManager, plugin: Any, name: str, version: str
) -> None:
    """Register ``plugin`` with pluggy and add its components; all or nothing."""
    try:
        if plugin is None:
            raise PluginError("the entry point loads None")
        pm.register(plugin, name=name)
    except PluginError:
        raise
    except (Exception, SystemExit) as err:  # import and pluggy validation errors
        raise PluginError(one_line(err, typed=True)) from err
    try:
        hooks = _check_hooks(pm, plugin)
        staged: list[tuple[Kind, str, Any]] = []
        for kind in Kind:
            for impl in getattr(pm.hook, kind.hook).get_hookimpls():
                if impl.plugin is plugin:
                    _call_hook(impl.function, kind, staged)
        taken: set[tuple[Kind, str]] = set()
        for kind, comp_name, _factory in staged:
            if (kind, comp_name) in taken:
                raise PluginError(f"plugin '{name}' registers {kind} '{comp_name}' twice")
            taken.add((kind, comp_name))
        scratch = Registry()
        for kind, comp_name, factory in staged:  # validate every name before adding any
            if (kind, comp_name) in registry:
                owner = registry.get(kind, comp_name).plugin
                raise PluginError(
                    f"plugin '{name}' registers {kind} '{comp_name}', already "
                    f"registered by '{owner}'; skipped — register it under another name"
                )
            scratch.add(kind, comp_name, factory, plugin=name, version=version)
        for kind, comp_name, factory in staged:
            registry.add(kind, comp_name, factory, plugin=name, version=version)
    except PluginError:
        pm.unregister(plugin)
        raise
    except (Exception, SystemExit) as err:  # whatever a plugin's factories trigger
        pm.unregister(plugin)
        raise PluginError(one_line(err, typed=True)) from err
    registry.note_plugin(PluginInfo(name, version, tuple(hooks)))


def _check_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The hooks ``plugin`` implements; an unknown (misspelled) hook name is a PluginError."""
    hooks = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            known = [k.hook for k in Kind]
            hint = did_you_mean(caller.name, known, n=1) or f" — hooks are: {', '.join(known)}"
            raise PluginError(f"implements unknown hook '{caller.name}'{hint}")
        hooks.append(caller.name)
    for kind in Kind:  # pluggy silently ignores functions that lack the marker
        if kind.hook not in hooks and callable(getattr(plugin, kind.hook, None)):
            raise PluginError(
                f"defines {kind.hook} without @snnkit.hookimpl — decorate it so snnkit calls it"
            )
    return sorted(hooks)


def _call_hook(
    function: Callable[..., Any], kind: Kind, staged: list[tuple[Kind, str, Any]]
) -> None:
    def register(name: str, factory: Any) -> None:
        staged.append((kind, name, factory))

    try:
        function(register=register)
    except PluginError:
        raise
    except (Exception, SystemExit) as err:  # a raising hook fails its plugin
        raise PluginError(f"hook {kind.hook} raised {one_line(err, typed=True)}") from err


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.name


def _canonical(name: str) -> str:
    """Distribution-name normalisation (PEP 503): ``Snnkit_Triangle`` == ``snnkit-triangle``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _returning(plugin: object) -> Callable[[], object]:
    """A loader for a plugin object given directly (no entry point to import)."""
    return lambda: plugin
