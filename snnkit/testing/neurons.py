"""``check_neuron``: a neuron against the ``register_neurons`` contract.

Shape/dtype/device in multi-step mode, binary spikes, no state leaking between calls,
gradients to the input and parameters, single-step equal to multi-step (outputs and
gradients), and for factories: no shared submodules and the given surrogate is used.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.components.functional import reset_net, set_step_mode
from snnkit.testing.common import _TOLERANCES, DeviceLike, _close, _device, _fail, _generator


def _default_surrogate() -> nn.Module:
    from snnkit.components.surrogates import Sigmoid

    return Sigmoid()


def _takes(factory: Callable[..., Any], name: str) -> inspect.Parameter | bool | None:
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
    from snnkit.components.neurons import BaseNeuron, SpikingNeuron

    return not (isinstance(module, BaseNeuron) and not isinstance(module, SpikingNeuron))


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
    from snnkit.components.surrogates import Sigmoid

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
    ``surrogate=`` when its signature takes one (as snnkit does; ``surrogate`` is a
    zero-argument callable making them, default ``snnkit.components.surrogates.Sigmoid``), else
    with no arguments; pass ``functools.partial(Factory, tau=3.0)`` to set parameters. Checked:

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
            raise _fail(
                check, neuron, f"the factory returned {type(module).__name__}, not an nn.Module"
            )
        return module.to(device=dev, dtype=dtype)

    reference = build(new_surrogate())
    label = reference
    if not hasattr(reference, "step_mode"):
        raise _fail(check, label, "has no 'step_mode' attribute ('m' multi-step, 's' single-step)")
    set_step_mode(reference, "m")
    reset_net(reference)
    spiking = _is_spiking(reference) if spiking is None else spiking

    g = _generator(seed)
    samples = (
        [inputs.to(dev, dtype)]
        if inputs is not None
        else [
            (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 4 - 0.5).to(dev, dtype)
            for shape in shapes
        ]
    )
    for x in samples:
        if x.dim() < 2:
            raise ValueError(f"neuron inputs must be [T, B, *], got shape {tuple(x.shape)}")
        _check_neuron_sample(reference, x, spiking, atol, rtol, g)

    if is_factory:
        a, b = build(new_surrogate()), build(new_surrogate())
        shared = _shared(a, b)
        if shared:
            raise _fail(
                check,
                label,
                f"two instances share {', '.join(shared)} — build "
                "modules inside __init__, never as default arguments",
            )
        if (
            isinstance(surrogate_param, inspect.Parameter)
            and surrogate_param.default is not inspect.Parameter.empty
        ):
            a, b = build(None), build(None)
            shared = _shared(a, b)
            if shared:
                raise _fail(
                    check,
                    label,
                    f"two instances built without a surrogate share "
                    f"{', '.join(shared)} — a default surrogate must be built per "
                    "instance (surrogate=None, then Sigmoid() inside __init__)",
                )
        if spiking and surrogate_param:
            probe = _probe_surrogate()
            module = build(probe)
            x = samples[0].clone().requires_grad_(True)
            module(x).sum().backward()
            if probe.calls == 0:
                raise _fail(
                    check,
                    label,
                    "never used the surrogate it was given: spikes must "
                    "be surrogate(H - V_threshold) so the recipe's surrogate applies",
                )


def _check_neuron_sample(
    reference: nn.Module, x: Tensor, spiking: bool, atol: float, rtol: float, g: torch.Generator
) -> None:
    check, shape = "check_neuron", tuple(x.shape)
    module = copy.deepcopy(reference)
    out = module(x)
    if not isinstance(out, Tensor):
        raise _fail(check, reference, f"multi-step forward returned {type(out).__name__}")
    got = (tuple(out.shape), out.dtype, out.device)
    want = (shape, x.dtype, x.device)
    if got != want:
        raise _fail(
            check,
            reference,
            f"multi-step forward must map [T, B, *] to the same shape, "
            f"dtype and device: input {want}, output {got}",
        )
    values = out.detach()
    if not torch.isfinite(values).all():
        raise _fail(check, reference, f"output is not finite for input {shape}")
    if spiking:
        if not ((values == 0) | (values == 1)).all():
            odd = values[(values != 0) & (values != 1)][:5].tolist()
            raise _fail(
                check,
                reference,
                f"spikes must be 0 or 1, got values {odd} (a "
                "non-spiking readout declares spiking = False)",
            )
        if not values.any() or values.all():
            what = "never fires" if not values.any() else "fires at every step"
            raise _fail(
                check,
                reference,
                f"{what} on the test input {shape}, so spikes and "
                "gradients cannot be checked — pass inputs= that make it fire sometimes",
            )

    def same(a: Tensor, b: Tensor) -> bool:
        return torch.equal(a, b) if spiking else bool(_close(a, b, atol, rtol).all())

    again = module(x).detach()
    if not same(again, values):
        raise _fail(
            check,
            reference,
            f"state leaks between multi-step calls: the same input "
            f"{shape} twice gave different outputs ({_diff(values, again)})",
        )
    module(torch.rand(x.shape, generator=g, dtype=torch.float64).to(x.device, x.dtype) * 2)
    again = module(x).detach()
    if not same(again, values):
        raise _fail(
            check,
            reference,
            "state leaks between multi-step calls: an input in "
            f"between changed the output for {shape} ({_diff(values, again)})",
        )

    weights = (torch.rand(shape, generator=g, dtype=torch.float64) + 0.5).to(x.device, x.dtype)
    multi_out, multi_grads = _run_with_grads(copy.deepcopy(reference), x, weights, "m")
    x_grad = multi_grads["<input>"]
    if x_grad is None or not torch.isfinite(x_grad).all() or not x_grad.any():
        raise _fail(
            check,
            reference,
            "the gradient does not reach the input (None, not finite "
            "or all zero): spikes must come from the surrogate, with no detach on the "
            "input path",
        )
    for name, grad in multi_grads.items():
        if grad is None:
            raise _fail(check, reference, f"no gradient reaches parameter '{name}'")
        if not torch.isfinite(grad).all():
            raise _fail(check, reference, f"the gradient of '{name}' is not finite")

    single = copy.deepcopy(reference)
    for attempt in ("first", "second"):
        single_out, single_grads = _run_with_grads(single, x, weights, "s")
        if not same(single_out, multi_out):
            raise _fail(
                check,
                reference,
                f"single-step output differs from multi-step output "
                f"({attempt} sequence after reset_net, input {shape}): "
                f"{_diff(multi_out, single_out)}",
            )
        for name, grad in multi_grads.items():
            other = single_grads.get(name)
            if other is None or grad is None or not bool(_close(other, grad, atol, rtol).all()):
                raise _fail(
                    check,
                    reference,
                    f"single-step gradient of '{name}' differs from "
                    f"multi-step ({attempt} sequence, input {shape}): "
                    f"{_diff(grad, other)}",
                )


def _run_with_grads(
    module: nn.Module, x: Tensor, weights: Tensor, mode: str
) -> tuple[Tensor, dict[str, Tensor | None]]:
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


def _diff(a: Tensor | None, b: Tensor | None) -> str:
    if a is None or b is None:
        return "no gradient"
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    delta = (a - b).abs()
    return f"{int((delta > 0).sum())} elements differ, max |difference| {float(delta.max()):.3g}"
