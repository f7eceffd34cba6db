"""``check_recurrent`` and ``check_recurrent_model``: recurrent layers and models against their
contract (a layer registered under ``register_layers`` that feeds its spikes back, e.g.
``recurrent``; a model that holds such layers, e.g. ``rsnn``).

A recurrent layer is checked like a neuron (:func:`~snnkit.testing.check_neuron`: shapes,
binary spikes, no state leaking between calls, gradients, single-step equal to multi-step)
and also: causality (the output up to step t ignores later inputs), the recurrence is wired
(every parameter, the recurrent weights included, receives a non-zero gradient), and every
kernel it offers (``kernel`` attribute: ``reference``, ``cpp``, ...) gives the reference loop's
spikes exactly and its gradients to tolerance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.components.functional import reset_net, set_step_mode
from snnkit.testing.common import _TOLERANCES, DeviceLike, _close, _device, _fail, _generator
from snnkit.testing.neurons import _check_neuron_sample, _diff, _run_with_grads


def _built(module: nn.Module | Callable[[], nn.Module], check: str) -> nn.Module:
    built = copy.deepcopy(module) if isinstance(module, nn.Module) else module()
    if not isinstance(built, nn.Module) or not hasattr(built, "step_mode"):
        raise _fail(check, module, "expected an nn.Module with a step_mode (or a factory of one)")
    return built


def _causal(check: str, module: nn.Module, x: Tensor, g: torch.Generator, exact: bool) -> None:
    """Changing the input from step t on leaves the output before t unchanged."""
    t = x.shape[0] // 2
    later = x.clone()
    later[t:] = torch.rand(later[t:].shape, generator=g, dtype=torch.float64).to(x) * 3
    set_step_mode(module, "m")
    reset_net(module)
    with torch.no_grad():
        a, b = module(x)[:t], module(later)[:t]
    same = torch.equal(a, b) if exact else bool(_close(a, b, 1e-6, 1e-5).all())
    if not same:
        raise _fail(check, module, f"not causal: the output before step {t} depends on later input")


def _wired(check: str, module: nn.Module, grads: dict[str, Tensor | None]) -> None:
    for name, grad in grads.items():
        if name != "<input>" and (grad is None or not grad.any()):
            raise _fail(
                check,
                module,
                f"parameter '{name}' gets no gradient (None or all zero): the spikes must feed "
                "back through it (I(t) = X(t) + W_rec S(t-1) + b_rec)",
            )


def _kernels(check: str, module: nn.Module, x: Tensor, atol: float, rtol: float) -> None:
    """Every kernel the layer offers against its ``reference`` kernel."""
    from snnkit.kernels.recurrent import KERNEL_NAMES, select_kernel

    if not hasattr(module, "kernel"):
        return
    weights = torch.ones_like(x)
    ref: Any = copy.deepcopy(module)  # a layer with a kernel attribute
    ref.kernel = "reference"
    ref_out, ref_grads = _run_with_grads(ref, x, weights, "m")
    for name in KERNEL_NAMES:
        other: Any = copy.deepcopy(module)
        other.kernel = name
        try:
            if select_kernel(other, x)[0] == "reference":
                continue
        except ValueError:
            continue  # the kernel cannot run this neuron or input: nothing to compare
        out, grads = _run_with_grads(other, x, weights, "m")
        if not torch.equal(out, ref_out):
            raise _fail(check, module, f"kernel {name!r} spikes differ: {_diff(ref_out, out)}")
        for key, grad in ref_grads.items():
            got = grads.get(key)
            if grad is None or got is None or not bool(_close(got, grad, atol, rtol).all()):
                what = "is missing" if grad is None else _diff(grad, got)
                raise _fail(check, module, f"kernel {name!r}: gradient of '{key}': {what}")


def check_recurrent(
    layer: nn.Module | Callable[[], nn.Module],
    *,
    features: int | None = None,
    shapes: Sequence[Sequence[int]] | None = None,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
    seed: int = 0,
) -> None:
    """Check a recurrent layer (a module or a zero-argument factory) against the contract.

    Inputs are uniform in [-0.5, 3.5) of ``shapes`` (default ``[(8, 3, N), (5, 2, 2, N)]`` with
    N = ``features`` or the layer's ``features`` attribute). Checked: everything
    :func:`~snnkit.testing.check_neuron` checks on a module (shape, dtype, device, binary spikes
    that both fire and stay silent, no state leak, gradients, single-step = multi-step), then
    causality, a non-zero gradient for every parameter, and each kernel against the reference.
    """
    check = "check_recurrent"
    dev = _device(device)
    atol, rtol = _TOLERANCES.get(dtype, (1e-2, 2e-2))
    module = _built(layer, check).to(device=dev, dtype=dtype)
    n = features if features is not None else getattr(module, "features", None)
    if shapes is None:
        if not isinstance(n, int):
            raise _fail(check, module, "pass features= (the layer has no 'features' attribute)")
        shapes = ((8, 3, n), (5, 2, 2, n))
    g = _generator(seed)
    for shape in shapes:
        x = (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 4 - 0.5).to(dev, dtype)
        try:
            _check_neuron_sample(module, x, True, atol, rtol, g)
        except AssertionError as err:
            raise AssertionError(str(err).replace("check_neuron(", f"{check}(", 1)) from None
        _causal(check, copy.deepcopy(module), x, g, exact=True)
        _, grads = _run_with_grads(copy.deepcopy(module), x, torch.ones_like(x), "m")
        _wired(check, module, grads)
        _kernels(check, module, x, atol, rtol)


def check_recurrent_model(
    model: nn.Module | Callable[[], nn.Module],
    input_shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
    seed: int = 0,
) -> None:
    """Check a recurrent model: input ``[T, B, *]`` of ``input_shape`` to ``[T, B, C]``.

    Checked: the output shape, dtype and device and finite values; no state leak between calls;
    causality; gradients reach the input and every parameter (finite, none all zero, so each
    recurrent weight is in use); single-step equal to multi-step (outputs and gradients).
    """
    check = "check_recurrent_model"
    dev = _device(device)
    atol, rtol = _TOLERANCES.get(dtype, (1e-2, 2e-2))
    module = _built(model, check).to(device=dev, dtype=dtype)
    g = _generator(seed)
    x = (torch.rand(tuple(input_shape), generator=g, dtype=torch.float64) * 4 - 0.5).to(dev, dtype)
    set_step_mode(module, "m")
    reset_net(module)
    with torch.no_grad():
        out = module(x)
        again = module(x)
    steps, batch = x.shape[:2]
    if out.dim() != 3 or tuple(out.shape[:2]) != (steps, batch) or out.dtype != dtype:
        raise _fail(check, module, f"must map {tuple(x.shape)} to [T, B, C], got {out.shape}")
    if not torch.isfinite(out).all():
        raise _fail(check, module, "the output is not finite")
    if not bool(_close(again, out, atol, rtol).all()):
        raise _fail(check, module, f"state leaks between calls: {_diff(out, again)}")
    _causal(check, copy.deepcopy(module), x, g, exact=False)
    weights = torch.rand(out.shape, generator=g, dtype=torch.float64).to(dev, dtype) + 0.5
    multi_out, multi = _run_with_grads_out(copy.deepcopy(module), x, weights, "m")
    _wired(check, module, multi)
    single_out, single = _run_with_grads_out(copy.deepcopy(module), x, weights, "s")
    if not bool(_close(single_out, multi_out, atol, rtol).all()):
        raise _fail(check, module, f"single-step output differs: {_diff(multi_out, single_out)}")
    for name, grad in multi.items():
        other = single.get(name)
        if grad is None or other is None or not bool(_close(other, grad, atol, rtol).all()):
            what = "is missing" if grad is None else _diff(grad, other)
            raise _fail(check, module, f"single-step gradient of '{name}': {what}")


def _run_with_grads_out(
    module: nn.Module, x: Tensor, weights: Tensor, mode: str
) -> tuple[Tensor, dict[str, Tensor | None]]:
    """As :func:`~snnkit.testing.neurons._run_with_grads` for an output shaped unlike x."""
    set_step_mode(module, mode)
    reset_net(module)
    leaf = x.clone().requires_grad_(True)
    out = module(leaf) if mode == "m" else torch.stack([module(step) for step in leaf])
    (out * weights).sum().backward()
    reset_net(module)
    grads: dict[str, Tensor | None] = {"<input>": leaf.grad}
    for name, param in module.named_parameters():
        if param.requires_grad:
            grads[name] = None if param.grad is None else param.grad.detach().clone()
    return out.detach(), grads
