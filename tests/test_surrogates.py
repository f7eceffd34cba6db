"""Tests for snnkit.components.surrogates: Θ forward, g' backward, g' == d/dx g, normalisation, validation."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from snnkit.components import surrogates as S
from snnkit.components.surrogates import Surrogate, heaviside
from snnkit.plugins.loader import build_registry

# the catalogue registered by snnkit/builtins.py, sorted by name
BUILTIN_SURROGATES = [
    (c.name, c.factory) for c in build_registry(entry_points=False).list("surrogate")
]

BUILTINS = dict(BUILTIN_SURROGATES)
NAMES = [name for name, _ in BUILTIN_SURROGATES]

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


def kinks(surrogate: Surrogate) -> list[float]:
    """Points where g' (or g'') jumps: derivative checks stay away from them."""
    if isinstance(surrogate, S.Rect):
        return [-0.5 / surrogate.alpha, 0.5 / surrogate.alpha]
    if isinstance(surrogate, S.PiecewiseLeakyReLU):
        return [-surrogate.w, surrogate.w]
    if isinstance(surrogate, S.PiecewiseQuadratic):
        return [-1 / surrogate.alpha, 0.0, 1 / surrogate.alpha]
    if isinstance(surrogate, (S.PiecewiseExp, S.SoftSign, S.SuperSpike, S.FastSigmoid)):
        return [0.0]
    if isinstance(surrogate, S.QPseudoSpike):
        return [0.0]
    return []


def smooth_points(surrogate: Surrogate, margin: float = 1e-3) -> torch.Tensor:
    """float64 points in [-3, 3] at least ``margin`` away from every kink."""
    x = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64) + 0.0037
    keep = torch.ones_like(x, dtype=torch.bool)
    for k in kinks(surrogate):
        keep &= (x - k).abs() > margin
    return x[keep]


# Instances with non-default shapes as well as the defaults, so the parameters really matter.
VARIANTS = [cls() for cls in BUILTINS.values()] + [
    S.Sigmoid(alpha=1.5),
    S.ATan(alpha=0.7),
    S.PiecewiseQuadratic(alpha=2.5),
    S.PiecewiseExp(alpha=3.0),
    S.SoftSign(alpha=0.5),
    S.Erf(alpha=0.8),
    S.SuperSpike(alpha=3.0),
    S.FastSigmoid(slope=2.0),
    S.PiecewiseLeakyReLU(w=0.4, c=0.2),
    S.PiecewiseLeakyReLU(w=2.0, c=0.0),
    S.Rect(alpha=0.3),
    S.QPseudoSpike(alpha=4.5),
]
VARIANT_IDS = [repr(s) for s in VARIANTS]


# --------------------------------------------------------------------------- forward = Θ


def test_heaviside_is_one_at_and_above_zero() -> None:
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    # Θ(-0.0) = 1 as well: -0.0 >= 0 in IEEE arithmetic.
    assert torch.equal(heaviside(x), torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside_and_keeps_dtype_device_shape(name, dtype, device) -> None:
    surrogate = BUILTINS[name]()
    values = torch.tensor([-5.0, -0.25, -1e-7, 0.0, 1e-7, 0.25, 5.0, 0.0], dtype=dtype)
    expected = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=dtype)
    for shape in [(8,), (2, 4), (2, 2, 1, 2)]:
        x = values.reshape(shape).to(device).requires_grad_(True)
        y = surrogate(x)
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert torch.equal(y.detach().cpu(), expected.reshape(shape))
        y.sum().backward()
        assert x.grad is not None
        assert x.grad.dtype == dtype and x.grad.device == x.device and x.grad.shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_forward_on_a_zero_dim_tensor(name) -> None:
    y = BUILTINS[name]()(torch.tensor(0.0))
    assert y.shape == () and y.item() == 1.0


# --------------------------------------------------------------------------- golden g'

# (surrogate, x, g'(x)) computed by hand from the closed forms in the brief.
GOLDEN = {
    "sigmoid": [
        (S.Sigmoid(), 0.0, 1.0),  # 4·σ(0)(1−σ(0)) = 4·½·½ = 1
        # 4σ(2)(1−σ(2)) = 4e^-2/(1+e^-2)^2 = 0.541341/1.288986 = 0.4199743
        (S.Sigmoid(), 0.5, 0.419974341614026),
        (S.Sigmoid(alpha=1.0), 0.0, 0.25),  # 1·½·½
    ],
    "atan": [
        (S.ATan(), 0.0, 1.0),  # 2 / (2(1 + 0)) = 1
        (S.ATan(), 1 / math.pi, 0.5),  # π/2·2·(1/π) = 1 → 2 / (2(1 + 1)) = ½
        (S.ATan(alpha=4.0), -1 / (2 * math.pi), 1.0),  # π/2·4·(−1/2π) = −1 → 4/(2·2) = 1
    ],
    "piecewise_quadratic": [
        (S.PiecewiseQuadratic(), 0.0, 1.0),  # α − α²·0 = 1
        (S.PiecewiseQuadratic(), 0.5, 0.5),  # 1 − 1·0.5
        (S.PiecewiseQuadratic(), -0.25, 0.75),  # 1 − 1·0.25
        (S.PiecewiseQuadratic(), 1.5, 0.0),  # |x| > 1/α
        (S.PiecewiseQuadratic(), -2.0, 0.0),  # |x| > 1/α
        (S.PiecewiseQuadratic(alpha=2.0), 0.25, 1.0),  # 2 − 4·0.25
        (S.PiecewiseQuadratic(alpha=2.0), -0.75, 0.0),  # |x| > ½
    ],
    "piecewise_exp": [
        (S.PiecewiseExp(), 0.0, 0.5),  # (1/2)·e^0
        (S.PiecewiseExp(), math.log(2), 0.25),  # (1/2)·e^(−ln 2) = ¼
        (S.PiecewiseExp(), -math.log(2), 0.25),  # symmetric
        (S.PiecewiseExp(alpha=2.0), math.log(2), 0.25),  # (2/2)·e^(−2 ln 2) = ¼
    ],
    "soft_sign": [
        (S.SoftSign(), 0.0, 1.0),  # 2 / (2·1²)
        (S.SoftSign(), 0.5, 0.25),  # 2 / (2·(1+1)²) = ¼
        (S.SoftSign(), -1.5, 1 / 16),  # 2 / (2·(1+3)²) = 1/16
    ],
    "erf": [
        (S.Erf(), 0.0, 1.1283791670955126),  # 2/√π = 2/1.7724539 = 1.1283792
        (S.Erf(), 0.5, 0.4151074974205947),  # 2/√π · e^(−4·¼) = 1.1283792·0.3678794
        (S.Erf(alpha=1.0), -1.0, 0.20755374871029736),  # 1/√π · e^(−1) = 0.5641896·0.3678794
    ],
    "super_spike": [
        (S.SuperSpike(), 0.0, 1.0),  # 1 / 1²
        (S.SuperSpike(), 1.0, 0.25),  # 1 / 2²
        (S.SuperSpike(alpha=3.0), -2.0, 1 / 3),  # 3 / 3²
    ],
    "fast_sigmoid": [
        (S.FastSigmoid(), 0.0, 1.0),  # 1 / 1²
        (S.FastSigmoid(), 0.04, 0.25),  # 1 / (25·0.04 + 1)² = 1/4
        (S.FastSigmoid(), -0.12, 1 / 16),  # 1 / (25·0.12 + 1)² = 1/16
    ],
    "piecewise_leaky_relu": [
        (S.PiecewiseLeakyReLU(), 0.0, 0.5),  # 1/(2·1)
        (S.PiecewiseLeakyReLU(), 0.99, 0.5),  # still inside |x| < 1
        (S.PiecewiseLeakyReLU(), -0.5, 0.5),
        (S.PiecewiseLeakyReLU(), 1.0, 0.01),  # |x| = w is outside (strict <): c
        (S.PiecewiseLeakyReLU(), -3.0, 0.01),
        (S.PiecewiseLeakyReLU(w=0.25, c=0.0), 0.2, 2.0),  # 1/(2·0.25)
        (S.PiecewiseLeakyReLU(w=0.25, c=0.0), 0.3, 0.0),  # outside, c = 0
    ],
    "rect": [
        (S.Rect(), 0.0, 1.0),  # α inside |x| < ½
        (S.Rect(), 0.49, 1.0),
        (S.Rect(), 0.5, 0.0),  # |x| = 1/(2α) is outside (strict <)
        (S.Rect(), -0.6, 0.0),
        (S.Rect(alpha=2.0), 0.2, 2.0),  # inside |x| < ¼
        (S.Rect(alpha=2.0), -0.3, 0.0),
    ],
    "q_pseudo_spike": [
        (S.QPseudoSpike(), 0.0, 1.0),  # (1 + 0)^−2
        (S.QPseudoSpike(), 0.5, 0.25),  # (1 + 2·0.5/1)^−2 = 2^−2
        (S.QPseudoSpike(), -1.5, 1 / 16),  # (1 + 3)^−2
        (S.QPseudoSpike(alpha=3.0), 1.0, 0.125),  # (1 + 2·1/2)^−3 = 2^−3
    ],
    "straight_through": [
        (S.StraightThrough(), 0.0, 1.0),
        (S.StraightThrough(), -7.5, 1.0),
        (S.StraightThrough(), 123.0, 1.0),
    ],
}
GOLDEN_CASES = [
    pytest.param(s, x, g, id=f"{name}-{s.extra_repr()}-x={x:.4g}")
    for name, cases in GOLDEN.items()
    for s, x, g in cases
]


def test_every_builtin_has_golden_cases() -> None:
    assert set(GOLDEN) == set(NAMES)
    for name, cases in GOLDEN.items():
        assert all(type(s) is BUILTINS[name] for s, _, _ in cases), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("surrogate", "x", "expected"), GOLDEN_CASES)
def test_backward_equals_hand_computed_derivative(surrogate, x, expected, dtype) -> None:
    point = torch.tensor([x], dtype=dtype, requires_grad=True)
    surrogate(point).sum().backward()
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert point.grad.item() == pytest.approx(expected, rel=tol, abs=tol)
    # derivative() is the same closed form, callable on plain tensors outside autograd.
    assert surrogate.derivative(point.detach()).item() == pytest.approx(expected, rel=tol, abs=tol)


@pytest.mark.parametrize("name", NAMES)
def test_backward_multiplies_the_incoming_gradient(name) -> None:
    surrogate = BUILTINS[name]()
    x = torch.tensor([-0.3, 0.0, 0.2, 1.7], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    surrogate(x).backward(upstream)
    torch.testing.assert_close(x.grad, upstream * surrogate.derivative(x.detach()))


# --------------------------------------------------------------------------- g' == d/dx g


@pytest.mark.parametrize("surrogate", VARIANTS, ids=VARIANT_IDS)
def test_derivative_equals_autograd_of_primitive(surrogate) -> None:
    # Includes x = 0 for every surrogate whose g' is continuous there.
    x = torch.cat([smooth_points(surrogate), torch.zeros(1, dtype=torch.float64)])
    leaf = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(surrogate.primitive(leaf).sum(), leaf)
    torch.testing.assert_close(surrogate.derivative(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("surrogate", VARIANTS, ids=VARIANT_IDS)
def test_derivative_equals_central_finite_difference(surrogate) -> None:
    x = smooth_points(surrogate)
    h = 1e-6
    numeric = (surrogate.primitive(x + h) - surrogate.primitive(x - h)) / (2 * h)
    torch.testing.assert_close(surrogate.derivative(x), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("surrogate", VARIANTS, ids=VARIANT_IDS)
def test_non_spiking_primitive_passes_gradcheck(surrogate) -> None:
    surrogate = type(surrogate)(**_params(surrogate), spiking=False)
    x = smooth_points(surrogate)[::8].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(surrogate, (x,), eps=1e-6, atol=1e-6)


def _params(surrogate: Surrogate) -> dict[str, float]:
    names = [p for p in inspect.signature(type(surrogate)).parameters if p != "spiking"]
    return {p: getattr(surrogate, p) for p in names}


@pytest.mark.parametrize("name", NAMES)
def test_non_spiking_returns_primitive_and_is_differentiable(name) -> None:
    surrogate = BUILTINS[name](spiking=False)
    x = torch.tensor([-2.0, -0.1, 0.0, 0.3, 2.5], dtype=torch.float64, requires_grad=True)
    y = surrogate(x)
    torch.testing.assert_close(y, surrogate.primitive(x))
    assert not torch.equal(y.detach(), heaviside(x.detach()))  # really the smooth g, not Θ
    y.sum().backward()
    torch.testing.assert_close(x.grad, surrogate.derivative(x.detach()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("surrogate", VARIANTS, ids=VARIANT_IDS)
def test_gradients_stay_finite_far_from_threshold(surrogate, dtype) -> None:
    # Piecewise primitives must not leak inf/NaN from the branch that is not selected.
    x = torch.tensor([-1e4, -60.0, 60.0, 1e4], dtype=dtype, requires_grad=True)
    (through_primitive,) = torch.autograd.grad(surrogate.primitive(x).sum(), x)
    assert torch.isfinite(through_primitive).all()
    assert torch.isfinite(surrogate.derivative(x.detach())).all()


# --------------------------------------------------------------------------- normalisation

# Surrogates whose g' integrates to a finite total, and that total by hand.
TOTALS = [
    (S.Sigmoid(), 1.0),
    (S.ATan(), 1.0),
    (S.PiecewiseQuadratic(), 1.0),
    (S.PiecewiseExp(), 1.0),
    (S.SoftSign(), 1.0),
    (S.Erf(), 1.0),
    (S.Rect(), 1.0),
    (S.Rect(alpha=3.0), 1.0),
    (S.QPseudoSpike(), 1.0),  # 2·∫₀^∞ (1 + 2x)^−2 dx = 2·½ = 1
    (S.SuperSpike(alpha=2.0), 4.0),  # 2α: α only scales
    (S.FastSigmoid(), 0.08),  # 2/slope = 2/25
]


@pytest.mark.parametrize(("surrogate", "total"), TOTALS, ids=[repr(s) for s, _ in TOTALS])
def test_derivative_integrates_to_its_total(surrogate, total) -> None:
    # x = sinh(t) on a uniform t grid: fine near 0 (spacing ~6e-5), reaching ±1e5 so the
    # algebraic tails of atan / q_pseudo_spike / super_spike leave less than 1e-5 out.
    t = torch.linspace(-math.asinh(1e5), math.asinh(1e5), 400_001, dtype=torch.float64)
    x = torch.sinh(t)
    integral = torch.trapezoid(surrogate.derivative(x), x).item()
    assert integral == pytest.approx(total, rel=2e-4, abs=2e-4)


@pytest.mark.parametrize("surrogate", [s for s, total in TOTALS if total == 1.0])
def test_bounded_primitive_goes_from_zero_to_one_through_a_half(surrogate) -> None:
    g = surrogate.primitive(torch.tensor([-1e9, 0.0, 1e9], dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))


def test_unbounded_primitives_are_the_documented_ones() -> None:
    x = torch.tensor([-3.0, -1.0, 0.0, 0.5, 2.0], dtype=torch.float64)
    # piecewise_leaky_relu w=1, c=0.01: c(x+w) | x/2 + ½ | 1 + c(x−w)
    plr = S.PiecewiseLeakyReLU().primitive(x)
    torch.testing.assert_close(plr, torch.tensor([-0.02, 0.0, 0.5, 0.75, 1.01], dtype=x.dtype))
    # straight_through: x + ½
    torch.testing.assert_close(S.StraightThrough().primitive(x), x + 0.5)
    # super_spike α=1: 1 + x/(1+|x|) → 1 − ¾, 1 − ½, 1, 1 + ⅓, 1 + ⅔
    ss = S.SuperSpike().primitive(x)
    torch.testing.assert_close(ss, torch.tensor([0.25, 0.5, 1.0, 4 / 3, 5 / 3], dtype=x.dtype))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("factory", "kwargs", "parameter"),
    [
        (S.Sigmoid, {"alpha": 0.0}, "alpha"),
        (S.ATan, {"alpha": -1.0}, "alpha"),
        (S.PiecewiseQuadratic, {"alpha": float("nan")}, "alpha"),
        (S.PiecewiseExp, {"alpha": float("inf")}, "alpha"),
        (S.SoftSign, {"alpha": -0.5}, "alpha"),
        (S.Erf, {"alpha": 0}, "alpha"),
        (S.SuperSpike, {"alpha": -2.0}, "alpha"),
        (S.FastSigmoid, {"slope": 0.0}, "slope"),
        (S.FastSigmoid, {"slope": -25.0}, "slope"),
        (S.PiecewiseLeakyReLU, {"w": 0.0}, "w"),
        (S.PiecewiseLeakyReLU, {"c": -0.01}, "c"),
        (S.Rect, {"alpha": -1.0}, "alpha"),
        (S.QPseudoSpike, {"alpha": 1.0}, "alpha"),
        (S.QPseudoSpike, {"alpha": 0.5}, "alpha"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_rule_and_value(
    factory, kwargs, parameter
) -> None:
    with pytest.raises(ValueError) as info:
        factory(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{parameter} must be")
    assert ">" in message and repr(float(kwargs[parameter])) in message


def test_boundary_values_are_accepted() -> None:
    assert S.PiecewiseLeakyReLU(c=0.0).c == 0.0
    assert S.QPseudoSpike(alpha=1.001).alpha == 1.001


# --------------------------------------------------------------------------- instances


def test_instances_are_independent() -> None:
    first, second = S.Sigmoid(), S.Sigmoid()
    first.alpha = 1.0
    second.spiking = False
    assert second.alpha == 4.0 and first.spiking is True
    x = torch.tensor([0.0])
    assert first.derivative(x).item() == 0.25 and second.derivative(x).item() == 1.0
    assert torch.equal(first(x), torch.ones(1)) and second(x).item() == 0.5


@pytest.mark.parametrize("name", NAMES)
def test_shape_parameters_are_plain_floats_and_shown_in_repr(name) -> None:
    factory = BUILTINS[name]
    params = [p for p in inspect.signature(factory).parameters.values() if p.name != "spiking"]
    surrogate = factory(**{p.name: int(p.default) + 1 for p in params})  # ints are coerced
    assert list(surrogate.parameters()) == [] and list(surrogate.buffers()) == []
    for p in params:
        value = getattr(surrogate, p.name)
        assert type(value) is float and value == int(p.default) + 1
        assert f"{p.name}={value!r}" in repr(surrogate)
    assert "spiking=True" in repr(surrogate)


def test_builtin_catalogue_order_and_schemas() -> None:
    assert sorted([
        "sigmoid", "atan", "piecewise_quadratic", "piecewise_exp", "soft_sign", "erf",
        "super_spike", "fast_sigmoid", "piecewise_leaky_relu", "rect", "q_pseudo_spike",
        "straight_through",
    ]) == NAMES  # fmt: skip
    for name, factory in BUILTIN_SURROGATES:
        assert issubclass(factory, Surrogate), name
        assert factory.__doc__ and factory.__doc__.splitlines()[0].endswith("."), name
        assert "Reference" in factory.__doc__, name
        signature = inspect.signature(factory, eval_str=True)
        params = list(signature.parameters.values())
        assert params[-1].name == "spiking" and params[-1].default is True, name
        assert params[-1].annotation is bool, name
        for p in params[:-1]:
            assert p.annotation is float and isinstance(p.default, float), (name, p.name)


# --------------------------------------------------------------------------- base class


class _Cubic(Surrogate):
    """A user surrogate with only a primitive: smoothstep g = 3y² − 2y³, y = clamp(x + ½, 0, 1)."""

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        y = (x + 0.5).clamp(0.0, 1.0)
        return 3 * y**2 - 2 * y**3


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        Surrogate()  # type: ignore[abstract]


def test_default_derivative_is_autograd_of_primitive() -> None:
    surrogate = _Cubic()
    x = torch.tensor([-1.0, -0.25, 0.0, 0.25, 1.0], dtype=torch.float64)
    # g'(x) = 6y(1 − y) with y = x + ½ inside [−½, ½]: y = ¼ → 6·¼·¾ = 1.125; y = ½ → 1.5
    expected = torch.tensor([0.0, 1.125, 1.5, 1.125, 0.0], dtype=torch.float64)
    torch.testing.assert_close(surrogate.derivative(x), expected)
    with torch.no_grad():
        torch.testing.assert_close(surrogate.derivative(x), expected)
    with torch.inference_mode():
        inference_x = x.clone()
        torch.testing.assert_close(surrogate.derivative(inference_x), expected)
    leaf = x.clone().requires_grad_(True)
    y = surrogate(leaf)  # spiking: Θ forward, autograd-derived g' backward
    assert torch.equal(y.detach(), heaviside(x))
    y.sum().backward()
    torch.testing.assert_close(leaf.grad, expected)
    assert surrogate.derivative(x).requires_grad is False
