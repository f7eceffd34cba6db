"""Tests of the example plugin: conformance (snnkit.testing), hand values, discovery."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

import snnkit_triangle
from snnkit.plugins.loader import build_registry
from snnkit.plugins.registry import Kind
from snnkit.testing import check_loss, check_surrogate
from snnkit_triangle import RateHinge, Triangle


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("snnkit-triangle")
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_triangle_conforms(alpha: float) -> None:
    check_surrogate(Triangle(alpha=alpha))


def test_rate_hinge_conforms() -> None:
    check_loss(RateHinge())
    check_loss(RateHinge(margin=1.0))


def test_triangle_hand_values() -> None:
    s = Triangle(alpha=2.0)
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    # g'(x) = 2·max(0, 1 − |x|): 0, 0, 1, 2, 1, 0, 0
    assert torch.equal(
        s.derivative(x), torch.tensor([0.0, 0.0, 1.0, 2.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    )
    # g(−0.5) = 2·(0.5)²/2 = 0.25; g(0) = 2·1/2 = 1; g(0.5) = 2·(0.5 + 0.5 − 0.125) = 1.75;
    # g(±1 and beyond) = 0 and 2 (the triangle's area α = 2).
    assert torch.equal(
        s.primitive(x), torch.tensor([0.0, 0.0, 0.25, 1.0, 1.75, 2.0, 2.0], dtype=torch.float64)
    )
    # Forward is Θ: Θ(0) = 1.
    assert torch.equal(s(x), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64))


def test_triangle_primitive_is_the_integral_of_the_derivative() -> None:
    # Trapezoid rule on a fine grid: g(b) − g(a) = ∫_a^b g'(u) du (g' is piecewise linear, so
    # the rule is exact on grid-aligned pieces).
    s = Triangle(alpha=1.7)
    u = torch.linspace(-3.0, 3.0, 6001, dtype=torch.float64)
    area = torch.cumulative_trapezoid(s.derivative(u), u)
    assert torch.allclose(area, s.primitive(u[1:]) - s.primitive(u[:1]), atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")])
def test_triangle_rejects_bad_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match=r"alpha must be a finite number > 0"):
        Triangle(alpha=alpha)


def test_rate_hinge_hand_value() -> None:
    # T = 2, B = 1, C = 3, y = 0. Rates r = mean_t O = [0.5, 1.0, 0.0].
    # Violations max(0, 0.5 − (r_0 − r_c)) for c = 1, 2: max(0, 0.5 + 0.5) = 1.0, max(0, 0) = 0.
    # Loss = (1.0 + 0) / (C − 1) = 0.5.
    out = torch.tensor([[[1.0, 1.0, 0.0]], [[0.0, 1.0, 0.0]]])
    loss = RateHinge(margin=0.5)(out, torch.tensor([0]))
    assert loss.item() == pytest.approx(0.5)
    assert RateHinge().predict(out).tolist() == [1]


@pytest.mark.parametrize("margin", [0.0, 1.5])
def test_rate_hinge_rejects_bad_margin(margin: float) -> None:
    with pytest.raises(ValueError, match=r"margin must be in \(0, 1\]"):
        RateHinge(margin=margin)


def test_registers_through_the_hooks() -> None:
    # Works installed or not: the module is handed to the loader directly.
    registry = build_registry(plugins=[snnkit_triangle], entry_points=False)
    component = registry.get(Kind.SURROGATE, "triangle")
    assert (component.plugin, component.version) == ("snnkit_triangle", snnkit_triangle.__version__)
    assert registry.get(Kind.LOSS, "rate_hinge").factory is RateHinge
    built = registry.build(Kind.SURROGATE, {"name": "triangle", "alpha": "2"})  # coerced
    assert isinstance(built, Triangle) and built.alpha == 2.0


@pytest.mark.skipif(installed_version() is None, reason="snnkit-triangle is not installed")
def test_installed_plugin_is_discovered() -> None:
    from snnkit.plugins.loader import get_registry

    get_registry.cache_clear()
    try:
        registry = get_registry()
        component = registry.get(Kind.SURROGATE, "triangle")
        assert (component.plugin, component.version) == ("snnkit-triangle", installed_version())
        assert installed_version() == snnkit_triangle.__version__
        assert registry.plugins["snnkit-triangle"].status == "ok"
        assert registry.get(Kind.LOSS, "rate_hinge").plugin == "snnkit-triangle"
    finally:
        get_registry.cache_clear()
