"""``check_surrogate``: a surrogate spike function against the ``register_surrogates`` contract.

Forward is Θ(x) exactly, backward is grad_output · g'(x), g' agrees with autograd and with
finite differences of the primitive g away from kinks, and ``spiking = False`` returns g.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.testing.common import (
    _TOLERANCES,
    DeviceLike,
    _as_dtypes,
    _close,
    _device,
    _fail,
    _generator,
    _worst,
)


def _default_points() -> Tensor:
    """x = k/100 for k in -400..400 (exact 0, ±1/2, ±1, ...) in float64."""
    return torch.arange(-400, 401, dtype=torch.float64) / 100


#: Extra points for the forward/backward checks only: signed zeros, tiny and huge magnitudes.
_EDGE_POINTS = (0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 50.0, -50.0, 1e4, -1e4)


def _skip_mask(x: Tensor, skip: Iterable[float | tuple[float, float]], eps: float) -> Tensor:
    mask = torch.zeros_like(x, dtype=torch.bool)
    for item in skip:
        if isinstance(item, (tuple, list)):
            lo, hi = (float(v) for v in item)
            mask |= (x >= lo - eps) & (x <= hi + eps)
        else:
            mask |= (x - float(item)).abs() <= 2 * eps
    return mask


def check_surrogate(
    surrogate: nn.Module,
    *,
    points: Tensor | Sequence[float] | None = None,
    dtype: torch.dtype | Sequence[torch.dtype] = (torch.float32, torch.float64),
    skip: Iterable[float | tuple[float, float]] = (),
    detect_kinks: bool = True,
    device: DeviceLike = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> None:
    """Check a surrogate spike function against the ``register_surrogates`` contract.

    ``surrogate`` is a built module (spiking mode, as snnkit uses it) with ``primitive(x)``
    (g), ``derivative(x)`` (g') and a ``spiking`` attribute, e.g. a subclass of
    :class:`snnkit.components.surrogates.Surrogate`. Checked, for every ``dtype`` on ``device``:

    1. forward is Θ(x) exactly: 1 where ``x >= 0`` (so Θ(0) = Θ(-0.0) = 1), else 0; output
       dtype, device and shape equal the input's (0-d, 1-d and ``[T, B, C]`` inputs);
    2. backward multiplies the incoming gradient by ``derivative(x)``, with finite values even
       at |x| = 1e4;
    3. in float64, at ``points`` (default: x = k/100 for k in -400..400), ``derivative(x)``
       equals the autograd derivative of ``primitive`` (to round-off) **and** the central
       finite difference ``(g(x+eps) - g(x-eps)) / (2 eps)`` (within ``atol + rtol·|g'|``,
       the tolerances of ``torch.autograd.gradcheck``), except near kinks of g: points listed
       in ``skip`` (a number skips that point, a ``(lo, hi)`` pair that interval) and, with
       ``detect_kinks``, points where the one-sided differences from the left and the right
       disagree by more than that tolerance (g' jumps within ``eps`` of them). At most a
       quarter of the points may be skipped;
    4. with ``spiking = False`` the module returns ``primitive(x)`` (checked on a copy; the
       argument is not modified).

    Raises AssertionError naming the rule and the first point that breaks it.
    """
    check = "check_surrogate"
    if not isinstance(surrogate, nn.Module):
        raise _fail(
            check,
            surrogate,
            f"expected a built nn.Module (call the factory first), got {type(surrogate).__name__}",
        )
    for attribute in ("primitive", "derivative"):
        if not callable(getattr(surrogate, attribute, None)):
            raise _fail(
                check,
                surrogate,
                f"has no method '{attribute}' — subclass "
                "snnkit.components.surrogates.Surrogate and write primitive "
                "(and derivative)",
            )
    if not hasattr(surrogate, "spiking"):
        raise _fail(
            check,
            surrogate,
            "has no 'spiking' attribute — subclass "
            "snnkit.components.surrogates.Surrogate (spiking=False returns the primitive)",
        )
    if not surrogate.spiking:
        raise _fail(
            check,
            surrogate,
            "pass the surrogate in spiking mode (spiking=True), as "
            "neurons use it; the check covers spiking=False itself",
        )
    dev = _device(device)
    base = torch.as_tensor(_default_points() if points is None else points, dtype=torch.float64)
    base = base.flatten()
    if base.numel() == 0:
        raise ValueError("points must not be empty")

    for dt in _as_dtypes(dtype):
        _check_surrogate_forward_backward(surrogate, base, dt, dev, seed)
    _check_surrogate_derivative(surrogate, base.to(dev), skip, detect_kinks, eps, atol, rtol)
    _check_surrogate_primitive_mode(surrogate, base.to(dev))


def _check_surrogate_forward_backward(
    surrogate: Any, base: Tensor, dtype: torch.dtype, device: torch.device, seed: int
) -> None:
    check, tag = "check_surrogate", f"({dtype}, {device.type})"
    edge = torch.tensor(_EDGE_POINTS, dtype=torch.float64)
    x = torch.cat([base, edge]).to(device=device, dtype=dtype)
    g = _generator(seed)
    shaped = (torch.rand((3, 2, 4), generator=g, dtype=torch.float64) * 4 - 2).to(device, dtype)
    for sample in (x, shaped, torch.zeros((), dtype=dtype, device=device)):
        leaf = sample.clone().requires_grad_(True)
        y = surrogate(leaf)
        if not isinstance(y, Tensor):
            raise _fail(check, surrogate, f"forward returned {type(y).__name__}, not a tensor")
        got = (tuple(y.shape), y.dtype, y.device)
        want = (tuple(leaf.shape), leaf.dtype, leaf.device)
        if got != want:
            raise _fail(
                check,
                surrogate,
                f"forward must keep shape, dtype and device {tag}: input {want}, output {got}",
            )
        theta = (sample >= 0).to(dtype)
        bad = y.detach() != theta
        if bad.any():
            raise _fail(
                check,
                surrogate,
                "forward must be Θ(x) = 1 where x >= 0 (Θ(0) = 1) "
                f"else 0 {tag}, " + _worst(bad, sample, ("forward", y.detach()), ("Θ", theta)),
            )
        if not y.requires_grad:
            raise _fail(
                check,
                surrogate,
                f"forward output does not require grad {tag}: the "
                "surrogate gradient must flow through the spike",
            )
        grad_out = torch.rand(sample.shape, generator=g, dtype=torch.float64) + 0.5
        grad_out = grad_out.to(device, dtype)
        (grad,) = torch.autograd.grad(y, leaf, grad_out)
        with torch.no_grad():
            d = surrogate.derivative(sample)
        if not isinstance(d, Tensor) or (tuple(d.shape), d.dtype) != (tuple(sample.shape), dtype):
            shape = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
            raise _fail(
                check,
                surrogate,
                f"derivative(x) must return a tensor shaped and typed "
                f"like x {tag}: got {shape} for input {tuple(sample.shape)}",
            )
        expected = grad_out * d
        if not torch.isfinite(grad).all():
            raise _fail(
                check,
                surrogate,
                f"backward gradient is not finite {tag}, "
                + _worst(~torch.isfinite(grad), sample, ("gradient", grad)),
            )
        atol, rtol = _TOLERANCES.get(dtype, (1e-2, 2e-2))
        bad = ~_close(grad, expected, atol, rtol)
        if bad.any():
            worst = _worst(bad, sample, ("backward", grad), ("expected", expected))
            raise _fail(
                check, surrogate, f"backward must be grad_output · derivative(x) {tag}, " + worst
            )


def _check_surrogate_derivative(
    surrogate: Any,
    x: Tensor,
    skip: Iterable[float | tuple[float, float]],
    detect_kinks: bool,
    eps: float,
    atol: float,
    rtol: float,
) -> None:
    check = "check_surrogate"
    with torch.no_grad():
        d = surrogate.derivative(x)
        g0, g_plus, g_minus = (surrogate.primitive(v) for v in (x, x + eps, x - eps))
    if not isinstance(g0, Tensor) or tuple(g0.shape) != tuple(x.shape):
        shape = tuple(g0.shape) if isinstance(g0, Tensor) else type(g0).__name__
        raise _fail(
            check,
            surrogate,
            f"primitive(x) must return a tensor shaped like x, got "
            f"{shape} for input {tuple(x.shape)}",
        )
    if g0.dtype != torch.float64:
        raise _fail(
            check,
            surrogate,
            f"primitive(x) must keep float64 (got {g0.dtype}): finite "
            "differences need full precision",
        )
    tolerance = atol + rtol * d.abs()
    skipped = _skip_mask(x, skip, eps)
    if detect_kinks:
        right, left = (g_plus - g0) / eps, (g0 - g_minus) / eps
        skipped |= ~((right - left).abs() <= tolerance)  # written so that NaN is skipped too
    if int(skipped.sum()) * 4 > x.numel():
        kinks = x[skipped][:8].tolist()
        raise _fail(
            check,
            surrogate,
            f"{int(skipped.sum())} of {x.numel()} points were skipped "
            f"as kinks (first: {kinks}); primitive may be discontinuous or too steep for "
            "eps — pass points= away from the kinks or a smaller eps",
        )
    keep = ~skipped
    xs, ds = x[keep], d[keep]
    if not torch.isfinite(ds).all():
        raise _fail(
            check,
            surrogate,
            "derivative(x) is not finite (float64), "
            + _worst(~torch.isfinite(ds), xs, ("derivative", ds)),
        )

    with torch.enable_grad():
        leaf = xs.clone().requires_grad_(True)
        out = surrogate.primitive(leaf)
        if not out.requires_grad:
            raise _fail(
                check,
                surrogate,
                "primitive(x) is not differentiable by autograd (no "
                "grad_fn): write it with torch operations on x",
            )
        (auto,) = torch.autograd.grad(out.sum(), leaf)
    bad = ~_close(ds, auto, 1e-9, 1e-7)
    if bad.any():
        raise _fail(
            check,
            surrogate,
            "derivative(x) must equal d/dx primitive(x) (autograd, "
            "float64) away from kinks, " + _worst(bad, xs, ("derivative", ds), ("autograd", auto)),
        )
    central = ((g_plus - g_minus) / (2 * eps))[keep]
    bad = ~((ds - central).abs() <= tolerance[keep])
    if bad.any():
        raise _fail(
            check,
            surrogate,
            f"derivative(x) must equal the central finite difference "
            f"of primitive (eps={eps:g}, float64) away from kinks, "
            + _worst(bad, xs, ("derivative", ds), ("finite difference", central)),
        )


def _check_surrogate_primitive_mode(surrogate: Any, x: Tensor) -> None:
    twin = copy.deepcopy(surrogate)
    twin.spiking = False
    leaf = x.clone().requires_grad_(True)
    out = twin(leaf)
    with torch.no_grad():
        expected = twin.primitive(x)
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(x.shape):
        raise _fail(
            "check_surrogate",
            surrogate,
            "with spiking=False forward must return primitive(x), shaped like x",
        )
    bad = ~_close(out.detach(), expected, 1e-12, 1e-10)
    if bad.any():
        raise _fail(
            "check_surrogate",
            surrogate,
            "with spiking=False forward must return "
            "primitive(x), " + _worst(bad, x, ("forward", out.detach()), ("primitive", expected)),
        )
    if not out.requires_grad:
        raise _fail(
            "check_surrogate",
            surrogate,
            "with spiking=False forward must be "
            "differentiable (the primitive's ordinary autograd gradient)",
        )
