"""Conformance checks for components: run them in a plugin's tests before publishing it.

Each ``check_*`` function exercises one component against the contract of its hook (see
:mod:`snnkit.hookspecs`) on tiny synthetic tensors and raises :class:`AssertionError` with a
message naming the component, the rule broken and where, or returns ``None``. They need no
test framework; under pytest a failed check is an ordinary test failure::

    from snnkit.testing import check_surrogate, check_loss

    def test_triangle_conforms():
        check_surrogate(Triangle(alpha=2.0))

snnkit runs the same checks on every built-in (``tests/test_conformance.py``). All inputs are
drawn from a private, seeded generator, so a check gives the same verdict on every run and does
not touch torch's global random state (modules that draw random numbers themselves, such as a
Poisson encoder, still use it).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.functional import reset_net, set_step_mode

__all__ = ["check_encoder", "check_loss", "check_neuron", "check_surrogate"]

DeviceLike = str | torch.device | None

#: Absolute and relative tolerances for comparing two computations of the same quantity.
_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-6, 1e-5),
    torch.float16: (1e-3, 1e-2),
    torch.bfloat16: (1e-2, 2e-2),
}


# -- shared helpers ---------------------------------------------------------------------------
def _label(obj: Any) -> str:
    """A short name for messages: ``Sigmoid(alpha=4.0, spiking=True)`` or the type's name."""
    if isinstance(obj, nn.Module):
        extra = obj.extra_repr()
        if extra and "\n" not in extra and len(extra) < 80:
            return f"{type(obj).__name__}({extra})"
        return type(obj).__name__
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def _fail(check: str, obj: Any, message: str) -> AssertionError:
    return AssertionError(f"{check}({_label(obj)}): {message}")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _device(device: DeviceLike) -> torch.device:
    return torch.device("cpu" if device is None else device)


def _close(a: Tensor, b: Tensor, atol: float, rtol: float) -> Tensor:
    """Elementwise ``|a - b| <= atol + rtol |b|`` (NaN in either side is never close)."""
    return (a - b).abs() <= atol + rtol * b.abs()


def _worst(mask_bad: Tensor, x: Tensor, *values: tuple[str, Tensor]) -> str:
    """Describe the first failing element: its input and the compared values."""
    index = int(mask_bad.flatten().nonzero()[0])
    where = f"x={x.flatten()[index].item():.6g}"
    shown = ", ".join(f"{name}={v.flatten()[index].item():.9g}" for name, v in values)
    count = int(mask_bad.sum())
    return f"at {where}: {shown} ({count} of {mask_bad.numel()} points differ)"


def _as_dtypes(dtype: torch.dtype | Sequence[torch.dtype]) -> tuple[torch.dtype, ...]:
    return (dtype,) if isinstance(dtype, torch.dtype) else tuple(dtype)


# -- surrogates -------------------------------------------------------------------------------
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
    :class:`snnkit.surrogates.Surrogate`. Checked, for every ``dtype`` on ``device``:

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
        raise _fail(check, surrogate, "expected a built nn.Module (call the factory first), "
                    f"got {type(surrogate).__name__}")
    for attribute in ("primitive", "derivative"):
        if not callable(getattr(surrogate, attribute, None)):
            raise _fail(check, surrogate, f"has no method '{attribute}' — subclass "
                        "snnkit.surrogates.Surrogate and write primitive (and derivative)")
    if not hasattr(surrogate, "spiking"):
        raise _fail(check, surrogate, "has no 'spiking' attribute — subclass "
                    "snnkit.surrogates.Surrogate (spiking=False returns the primitive)")
    if not surrogate.spiking:
        raise _fail(check, surrogate, "pass the surrogate in spiking mode (spiking=True), as "
                    "neurons use it; the check covers spiking=False itself")
    dev = _device(device)
    base = torch.as_tensor(_default_points() if points is None else points, dtype=torch.float64)
    base = base.flatten()
    if base.numel() == 0:
        raise ValueError("points must not be empty")

    for dt in _as_dtypes(dtype):
        _check_surrogate_forward_backward(surrogate, base, dt, dev, seed)
    _check_surrogate_derivative(surrogate, base.to(dev), skip, detect_kinks, eps, atol, rtol)
    _check_surrogate_primitive_mode(surrogate, base.to(dev))


def _check_surrogate_forward_backward(surrogate: nn.Module, base: Tensor, dtype: torch.dtype,
                                      device: torch.device, seed: int) -> None:
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
            raise _fail(check, surrogate, f"forward must keep shape, dtype and device {tag}: "
                        f"input {want}, output {got}")
        theta = (sample >= 0).to(dtype)
        bad = y.detach() != theta
        if bad.any():
            raise _fail(check, surrogate, "forward must be Θ(x) = 1 where x >= 0 (Θ(0) = 1) "
                        f"else 0 {tag}, " + _worst(bad, sample, ("forward", y.detach()),
                                                   ("Θ", theta)))
        if not y.requires_grad:
            raise _fail(check, surrogate, f"forward output does not require grad {tag}: the "
                        "surrogate gradient must flow through the spike")
        grad_out = (torch.rand(sample.shape, generator=g, dtype=torch.float64) + 0.5).to(device, dtype)
        (grad,) = torch.autograd.grad(y, leaf, grad_out)
        with torch.no_grad():
            d = surrogate.derivative(sample)
        if not isinstance(d, Tensor) or (tuple(d.shape), d.dtype) != (tuple(sample.shape), dtype):
            shape = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
            raise _fail(check, surrogate, f"derivative(x) must return a tensor shaped and typed "
                        f"like x {tag}: got {shape} for input {tuple(sample.shape)}")
        expected = grad_out * d
        if not torch.isfinite(grad).all():
            raise _fail(check, surrogate, f"backward gradient is not finite {tag}, "
                        + _worst(~torch.isfinite(grad), sample, ("gradient", grad)))
        atol, rtol = _TOLERANCES.get(dtype, (1e-2, 2e-2))
        bad = ~_close(grad, expected, atol, rtol)
        if bad.any():
            raise _fail(check, surrogate, "backward must be grad_output · derivative(x) "
                        f"{tag}, " + _worst(bad, sample, ("backward", grad), ("expected", expected)))


def _check_surrogate_derivative(surrogate: nn.Module, x: Tensor,
                                skip: Iterable[float | tuple[float, float]], detect_kinks: bool,
                                eps: float, atol: float, rtol: float) -> None:
    check = "check_surrogate"
    with torch.no_grad():
        d = surrogate.derivative(x)
        g0, g_plus, g_minus = (surrogate.primitive(v) for v in (x, x + eps, x - eps))
    if not isinstance(g0, Tensor) or tuple(g0.shape) != tuple(x.shape):
        shape = tuple(g0.shape) if isinstance(g0, Tensor) else type(g0).__name__
        raise _fail(check, surrogate, f"primitive(x) must return a tensor shaped like x, got "
                    f"{shape} for input {tuple(x.shape)}")
    if g0.dtype != torch.float64:
        raise _fail(check, surrogate, f"primitive(x) must keep float64 (got {g0.dtype}): finite "
                    "differences need full precision")
    tolerance = atol + rtol * d.abs()
    skipped = _skip_mask(x, skip, eps)
    if detect_kinks:
        right, left = (g_plus - g0) / eps, (g0 - g_minus) / eps
        skipped |= ~((right - left).abs() <= tolerance)  # written so that NaN is skipped too
    if int(skipped.sum()) * 4 > x.numel():
        kinks = x[skipped][:8].tolist()
        raise _fail(check, surrogate, f"{int(skipped.sum())} of {x.numel()} points were skipped "
                    f"as kinks (first: {kinks}); primitive may be discontinuous or too steep for "
                    "eps — pass points= away from the kinks or a smaller eps")
    keep = ~skipped
    xs, ds = x[keep], d[keep]
    if not torch.isfinite(ds).all():
        raise _fail(check, surrogate, "derivative(x) is not finite (float64), "
                    + _worst(~torch.isfinite(ds), xs, ("derivative", ds)))

    with torch.enable_grad():
        leaf = xs.clone().requires_grad_(True)
        out = surrogate.primitive(leaf)
        if not out.requires_grad:
            raise _fail(check, surrogate, "primitive(x) is not differentiable by autograd (no "
                        "grad_fn): write it with torch operations on x")
        (auto,) = torch.autograd.grad(out.sum(), leaf)
    bad = ~_close(ds, auto, 1e-9, 1e-7)
    if bad.any():
        raise _fail(check, surrogate, "derivative(x) must equal d/dx primitive(x) (autograd, "
                    "float64) away from kinks, " + _worst(bad, xs, ("derivative", ds),
                                                          ("autograd", auto)))
    central = ((g_plus - g_minus) / (2 * eps))[keep]
    bad = ~((ds - central).abs() <= tolerance[keep])
    if bad.any():
        raise _fail(check, surrogate, f"derivative(x) must equal the central finite difference "
                    f"of primitive (eps={eps:g}, float64) away from kinks, "
                    + _worst(bad, xs, ("derivative", ds), ("finite difference", central)))


def _check_surrogate_primitive_mode(surrogate: nn.Module, x: Tensor) -> None:
    twin = copy.deepcopy(surrogate)
    twin.spiking = False
    leaf = x.clone().requires_grad_(True)
    out = twin(leaf)
    with torch.no_grad():
        expected = twin.primitive(x)
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(x.shape):
        raise _fail("check_surrogate", surrogate, "with spiking=False forward must return "
                    "primitive(x), shaped like x")
    bad = ~_close(out.detach(), expected, 1e-12, 1e-10)
    if bad.any():
        raise _fail("check_surrogate", surrogate, "with spiking=False forward must return "
                    "primitive(x), " + _worst(bad, x, ("forward", out.detach()),
                                              ("primitive", expected)))
    if not out.requires_grad:
        raise _fail("check_surrogate", surrogate, "with spiking=False forward must be "
                    "differentiable (the primitive's ordinary autograd gradient)")


# -- neurons ----------------------------------------------------------------------------------
def _default_surrogate() -> nn.Module:
    from snnkit.surrogates import Sigmoid

    return Sigmoid()


def _takes(factory: Callable[..., Any], name: str) -> inspect.Parameter | None | bool:
    """The factory's parameter ``name``; True if only ``**kwargs`` could take it; else None."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if name in params:
        return params[name]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return True
    return None


def _is_spiking(module: nn.Module) -> bool:
    """A neuron spikes unless it says ``spiking = False``; snnkit's BaseNeuron subclasses that
    are not SpikingNeuron (the LI readout) are non-spiking."""
    flag = getattr(module, "spiking", None)
    if isinstance(flag, bool):
        return flag
    from snnkit.neurons import BaseNeuron, SpikingNeuron

    if isinstance(module, BaseNeuron) and not isinstance(module, SpikingNeuron):
        return False
    return True


def _shared(a: nn.Module, b: nn.Module) -> list[str]:
    """Names of submodules, parameters and buffers that two instances hold in common."""
    seen: dict[int, str] = {}
    for name, module in a.named_modules():
        seen.setdefault(id(module), name or "<root>")
    for name, tensor in [*a.named_parameters(), *a.named_buffers()]:
        seen.setdefault(id(tensor), name)
    names = []
    for name, obj in [*b.named_modules(), *b.named_parameters(), *b.named_buffers()]:
        if id(obj) in seen:
            names.append(name or "<root>")
    return names


def _probe_surrogate() -> nn.Module:
    """snnkit's default surrogate (Sigmoid, alpha = 4), counting how often a neuron uses it."""
    from snnkit.surrogates import Sigmoid

    class ProbeSigmoid(Sigmoid):
        calls = 0

        def primitive(self, x: Tensor) -> Tensor:
            self.calls += 1
            return super().primitive(x)

        def derivative(self, x: Tensor) -> Tensor:
            self.calls += 1
            return super().derivative(x)

        def forward(self, x: Tensor) -> Tensor:
            self.calls += 1
            return super().forward(x)

    return ProbeSigmoid()


def check_neuron(
    neuron: nn.Module | Callable[..., nn.Module],
    *,
    surrogate: Callable[[], nn.Module] | None = None,
    shapes: Sequence[Sequence[int]] = ((6, 2, 3), (4, 2, 2, 3)),
    inputs: Tensor | None = None,
    spiking: bool | None = None,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Check a neuron against the ``register_neurons`` contract.

    ``neuron`` is a built module or a factory. A factory is called with a fresh surrogate as
    ``surrogate=`` when its signature takes one (as snnkit does; ``surrogate`` is a zero-argument
    callable making them, default ``snnkit.surrogates.Sigmoid``), else with no arguments; pass
    ``functools.partial(Factory, tau=3.0)`` to set parameters. Checked:

    1. it has ``step_mode``; in ``"m"`` mode input ``[T, B, *]`` maps to output of the same
       shape, dtype and device, for each of ``shapes`` (or for ``inputs``, default uniform in
       [-0.5, 3.5) from a seeded generator);
    2. spikes are binary (0 or 1) and the input makes the neuron both fire and stay silent
       somewhere (else pass other ``inputs``), unless the neuron is non-spiking: ``spiking``
       (default: the module's ``spiking`` attribute; snnkit's ``LI`` is non-spiking), whose
       output must only be finite;
    3. no state leaks between multi-step calls: the same input twice gives the same output,
       also after another input in between;
    4. gradients reach the input (finite, not all zero) and every parameter that requires grad
       (finite);
    5. single-step mode (``set_step_mode(m, "s")``, one ``[B, *]`` step per call, state cleared
       by ``reset_net``) gives the same output and the same gradients (input and parameters)
       as multi-step mode, twice in a row with ``reset_net`` in between;
    6. for a factory: two instances share no submodule, parameter or buffer (a module used as
       a default argument, ``surrogate=Sigmoid()``, is built once and shared), also when built
       without a surrogate if the factory's ``surrogate`` has a default; a spiking neuron uses
       the surrogate it is given (calls it in forward or backward).

    Tolerances for comparing outputs and gradients default to 1e-6 / 1e-5 (float32).
    """
    check = "check_neuron"
    dev = _device(device)
    default_atol, default_rtol = _TOLERANCES.get(dtype, (1e-2, 2e-2))
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    new_surrogate = surrogate or _default_surrogate
    is_factory = not isinstance(neuron, nn.Module)
    if is_factory and not callable(neuron):
        raise _fail(check, neuron, "expected an nn.Module or a factory returning one")
    surrogate_param = _takes(neuron, "surrogate") if is_factory else None

    def build(supplied: nn.Module | None) -> nn.Module:
        """A new instance; ``supplied`` goes in as ``surrogate=`` if the factory takes one."""
        if not is_factory:
            module = copy.deepcopy(neuron)
        elif surrogate_param and supplied is not None:
            module = neuron(surrogate=supplied)
        else:
            module = neuron()
        if not isinstance(module, nn.Module):
            raise _fail(check, neuron, f"the factory returned {type(module).__name__}, not an nn.Module")
        return module.to(device=dev, dtype=dtype)

    reference = build(new_surrogate())
    label = reference
    if not hasattr(reference, "step_mode"):
        raise _fail(check, label, "has no 'step_mode' attribute ('m' multi-step, 's' single-step)")
    set_step_mode(reference, "m")
    reset_net(reference)
    spiking = _is_spiking(reference) if spiking is None else spiking

    g = _generator(seed)
    samples = [inputs.to(dev, dtype)] if inputs is not None else [
        (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 4 - 0.5).to(dev, dtype)
        for shape in shapes
    ]
    for x in samples:
        if x.dim() < 2:
            raise ValueError(f"neuron inputs must be [T, B, *], got shape {tuple(x.shape)}")
        _check_neuron_sample(reference, x, spiking, atol, rtol, g)

    if is_factory:
        a, b = build(new_surrogate()), build(new_surrogate())
        shared = _shared(a, b)
        if shared:
            raise _fail(check, label, f"two instances share {', '.join(shared)} — build "
                        "modules inside __init__, never as default arguments")
        if isinstance(surrogate_param, inspect.Parameter) and \
                surrogate_param.default is not inspect.Parameter.empty:
            a, b = build(None), build(None)
            shared = _shared(a, b)
            if shared:
                raise _fail(check, label, f"two instances built without a surrogate share "
                            f"{', '.join(shared)} — a default surrogate must be built per "
                            "instance (surrogate=None, then Sigmoid() inside __init__)")
        if spiking and surrogate_param:
            probe = _probe_surrogate()
            module = build(probe)
            x = samples[0].clone().requires_grad_(True)
            module(x).sum().backward()
            if probe.calls == 0:
                raise _fail(check, label, "never used the surrogate it was given: spikes must "
                            "be surrogate(H - V_threshold) so the recipe's surrogate applies")


def _check_neuron_sample(reference: nn.Module, x: Tensor, spiking: bool, atol: float,
                         rtol: float, g: torch.Generator) -> None:
    check, shape = "check_neuron", tuple(x.shape)
    module = copy.deepcopy(reference)
    out = module(x)
    if not isinstance(out, Tensor):
        raise _fail(check, reference, f"multi-step forward returned {type(out).__name__}")
    got = (tuple(out.shape), out.dtype, out.device)
    want = (shape, x.dtype, x.device)
    if got != want:
        raise _fail(check, reference, f"multi-step forward must map [T, B, *] to the same shape, "
                    f"dtype and device: input {want}, output {got}")
    values = out.detach()
    if not torch.isfinite(values).all():
        raise _fail(check, reference, f"output is not finite for input {shape}")
    if spiking:
        if not ((values == 0) | (values == 1)).all():
            odd = values[(values != 0) & (values != 1)][:5].tolist()
            raise _fail(check, reference, f"spikes must be 0 or 1, got values {odd} (a "
                        "non-spiking readout declares spiking = False)")
        if not values.any() or values.all():
            what = "never fires" if not values.any() else "fires at every step"
            raise _fail(check, reference, f"{what} on the test input {shape}, so spikes and "
                        "gradients cannot be checked — pass inputs= that make it fire sometimes")

    def same(a: Tensor, b: Tensor) -> Tensor:
        return torch.equal(a, b) if spiking else bool(_close(a, b, atol, rtol).all())

    again = module(x).detach()
    if not same(again, values):
        raise _fail(check, reference, f"state leaks between multi-step calls: the same input "
                    f"{shape} twice gave different outputs ({_diff(values, again)})")
    module(torch.rand(x.shape, generator=g, dtype=torch.float64).to(x.device, x.dtype) * 2)
    again = module(x).detach()
    if not same(again, values):
        raise _fail(check, reference, "state leaks between multi-step calls: an input in "
                    f"between changed the output for {shape} ({_diff(values, again)})")

    weights = (torch.rand(shape, generator=g, dtype=torch.float64) + 0.5).to(x.device, x.dtype)
    multi_out, multi_grads = _run_with_grads(copy.deepcopy(reference), x, weights, "m")
    x_grad = multi_grads["<input>"]
    if x_grad is None or not torch.isfinite(x_grad).all() or not x_grad.any():
        raise _fail(check, reference, "the gradient does not reach the input (None, not finite "
                    "or all zero): spikes must come from the surrogate, with no detach on the "
                    "input path")
    for name, grad in multi_grads.items():
        if grad is None:
            raise _fail(check, reference, f"no gradient reaches parameter '{name}'")
        if not torch.isfinite(grad).all():
            raise _fail(check, reference, f"the gradient of '{name}' is not finite")

    single = copy.deepcopy(reference)
    for attempt in ("first", "second"):
        single_out, single_grads = _run_with_grads(single, x, weights, "s")
        if not same(single_out, multi_out):
            raise _fail(check, reference, f"single-step output differs from multi-step output "
                        f"({attempt} sequence after reset_net, input {shape}): "
                        f"{_diff(multi_out, single_out)}")
        for name, grad in multi_grads.items():
            other = single_grads.get(name)
            if other is None or not bool(_close(other, grad, atol, rtol).all()):
                raise _fail(check, reference, f"single-step gradient of '{name}' differs from "
                            f"multi-step ({attempt} sequence, input {shape}): "
                            f"{_diff(grad, other)}")


def _run_with_grads(module: nn.Module, x: Tensor, weights: Tensor,
                    mode: str) -> tuple[Tensor, dict[str, Tensor | None]]:
    """Output and gradients of ``sum(out · weights)`` in step mode ``mode`` from a reset state."""
    set_step_mode(module, mode)
    reset_net(module)
    module.zero_grad(set_to_none=True)
    leaf = x.clone().requires_grad_(True)
    out = module(leaf) if mode == "m" else torch.stack([module(step) for step in leaf])
    if out.requires_grad:  # else nothing reaches the input: reported by the caller
        (out * weights).sum().backward()
    reset_net(module)
    grads: dict[str, Tensor | None] = {"<input>": leaf.grad}
    for name, param in module.named_parameters():
        if param.requires_grad:
            grads[name] = None if param.grad is None else param.grad.detach().clone()
    return out.detach(), grads


def _diff(a: Tensor, b: Tensor | None) -> str:
    if b is None:
        return "no gradient"
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    delta = (a - b).abs()
    return f"{int((delta > 0).sum())} elements differ, max |difference| {float(delta.max()):.3g}"


# -- encoders ---------------------------------------------------------------------------------
def check_encoder(
    encoder: nn.Module | Callable[..., nn.Module],
    time_steps: int,
    *,
    shapes: Sequence[Sequence[int]] = ((3, 5), (2, 1, 4, 4)),
    inputs: Sequence[Tensor] | None = None,
    expected_shape: Callable[[Tensor, int], Sequence[int]] | None = None,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64, torch.uint8),
    device: DeviceLike = None,
    seed: int = 0,
) -> None:
    """Check an input encoder against the ``register_encoders`` contract.

    ``encoder`` is a module built with ``time_steps`` or a factory, then called as
    ``factory(time_steps=time_steps)`` (snnkit supplies ``time_steps``). For each batch of
    ``inputs`` (default: intensities uniform in [0, 1] of each of ``shapes``, in each of
    ``dtypes``; uint8 holds ``round(255 p)``, as datasets do), the output must be a floating
    tensor of shape ``[T, B, *]`` (``expected_shape(x, T)`` overrides that, e.g. for encoders
    that consume a sequence dimension), with finite values, on the input's device.
    """
    check = "check_encoder"
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps <= 0:
        raise ValueError(f"time_steps must be an int > 0, got {time_steps!r}")
    if not isinstance(encoder, nn.Module):
        if not callable(encoder):
            raise _fail(check, encoder, "expected an nn.Module or a factory returning one")
        encoder = encoder(time_steps=time_steps)
    dev = _device(device)
    encoder = encoder.to(dev)
    g = _generator(seed)
    if inputs is None:
        batches = []
        for shape in shapes:
            p = torch.rand(tuple(shape), generator=g, dtype=torch.float64)
            for dt in dtypes:
                batches.append((p * 255).round().to(dt) if dt == torch.uint8 else p.to(dt))
    else:
        batches = list(inputs)
    for x in batches:
        x = x.to(dev)
        out = encoder(x)
        tag = f"input {tuple(x.shape)} {x.dtype}"
        if not isinstance(out, Tensor):
            raise _fail(check, encoder, f"returned {type(out).__name__}, not a tensor ({tag})")
        want = tuple(expected_shape(x, time_steps)) if expected_shape else (time_steps, *x.shape)
        if tuple(out.shape) != want:
            raise _fail(check, encoder, f"output must be [T, B, *] = {list(want)} with T = "
                        f"time_steps = {time_steps}, got {list(out.shape)} ({tag})")
        if not out.is_floating_point():
            raise _fail(check, encoder, f"output must be a floating tensor, got {out.dtype} ({tag})")
        if out.device != x.device:
            raise _fail(check, encoder, f"output is on {out.device}, input on {x.device} ({tag})")
        if not torch.isfinite(out).all():
            raise _fail(check, encoder, f"output is not finite ({tag})")


# -- losses -----------------------------------------------------------------------------------
def check_loss(
    loss: nn.Module | Callable[..., nn.Module],
    *,
    time_steps: int = 4,
    batch: int = 3,
    classes: int = 5,
    gradcheck: bool = True,
    device: DeviceLike = None,
    seed: int = 0,
) -> None:
    """Check a loss against the ``register_losses`` contract.

    ``loss`` is a module or a factory called with no arguments. On a spike output (0/1 floats)
    and on a real-valued output ``[T, B, C]`` with int64 targets ``[B]``, ``loss(output,
    target)`` must be a 0-d tensor, finite, on the output's device, differentiable with respect
    to ``output`` (the gradient is finite and not all zero; with ``gradcheck``,
    ``torch.autograd.gradcheck`` agrees in float64 on the real-valued output). If the module
    has ``predict``, ``predict(output)`` must be an integer tensor ``[B]`` of classes in
    ``[0, C)``.
    """
    check = "check_loss"
    if not isinstance(loss, nn.Module):
        if not callable(loss):
            raise _fail(check, loss, "expected an nn.Module or a factory returning one")
        loss = loss()
    dev = _device(device)
    g = _generator(seed)
    shape = (time_steps, batch, classes)
    target = torch.randint(classes, (batch,), generator=g).to(dev)
    spikes = (torch.rand(shape, generator=g) < 0.4).float().to(dev)
    analog = torch.randn(shape, generator=g, dtype=torch.float64).to(dev)
    for kind, output in (("spike", spikes), ("real-valued", analog.float())):
        leaf = output.clone().requires_grad_(True)
        value = loss(leaf, target)
        tag = f"{kind} output {list(shape)}"
        if not isinstance(value, Tensor) or value.dim() != 0:
            got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise _fail(check, loss, f"must return a scalar (0-d) tensor, got {got} ({tag}) — "
                        "reduce over time, batch and classes")
        if not torch.isfinite(value):
            raise _fail(check, loss, f"is not finite ({value.item()}) on a {tag}")
        if value.device != leaf.device:
            raise _fail(check, loss, f"result is on {value.device}, output on {leaf.device}")
        if not value.requires_grad:
            raise _fail(check, loss, f"is not differentiable with respect to the output ({tag})")
        (grad,) = torch.autograd.grad(value, leaf)
        if not torch.isfinite(grad).all() or not grad.any():
            raise _fail(check, loss, f"gradient with respect to the output is not finite or all "
                        f"zero ({tag})")
        predict = getattr(loss, "predict", None)
        if callable(predict):
            with torch.no_grad():
                pred = predict(output)
            if not isinstance(pred, Tensor) or tuple(pred.shape) != (batch,):
                got = list(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
                raise _fail(check, loss, f"predict(output) must have shape [B] = [{batch}], got "
                            f"{got} ({tag})")
            if pred.is_floating_point() or pred.dtype == torch.bool:
                raise _fail(check, loss, f"predict(output) must hold integer classes, got {pred.dtype}")
            if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= classes):
                raise _fail(check, loss, f"predict(output) must lie in [0, {classes}), got "
                            f"{pred.tolist()}")
    if gradcheck:
        twin = copy.deepcopy(loss).double()
        leaf = analog.clone().requires_grad_(True)
        try:
            ok = torch.autograd.gradcheck(lambda o: twin(o, target), (leaf,), fast_mode=True,
                                          raise_exception=False)
        except RuntimeError as err:  # e.g. non-float64 internals
            raise _fail(check, loss, f"gradcheck (float64) raised: {err}") from None
        if not ok:
            raise _fail(check, loss, "analytical gradient disagrees with finite differences "
                        "(torch.autograd.gradcheck, float64, real-valued output)")
