"""Shared fixtures."""

from __future__ import annotations

import pytest

from snnkit.plugins.loader import get_registry


@pytest.fixture
def only_builtins(monkeypatch: pytest.MonkeyPatch):
    """The process registry holds the built-ins only (no installed plugins), rebuilt fresh."""
    monkeypatch.setenv("SNNKIT_LOAD_PLUGINS", "")
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()
