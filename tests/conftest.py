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


def _kernel_isas() -> list[str]:
    """The x86 SIMD paths this CPU runs (AVX-512 and AVX2 on an AVX-512 machine), else the
    best one: every test that uses ``cpu_isa`` runs the C++ kernels once per path."""
    from snnkit.kernels.cpu.isa import runnable_isas

    isas = [isa for isa in runnable_isas() if isa in ("avx512", "avx2")]
    return isas or [runnable_isas()[0]]


@pytest.fixture(params=_kernel_isas())
def cpu_isa(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``SNNKIT_CPU_ISA`` set to each SIMD path in turn (its own build of the C++ kernels)."""
    monkeypatch.setenv("SNNKIT_CPU_ISA", request.param)
    return request.param
