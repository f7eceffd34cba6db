"""``check_loss``: a loss against the ``register_losses`` contract."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from snnkit.testing.common import DeviceLike, _device, _fail, _generator


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
            raise _fail(
                check,
                loss,
                f"must return a scalar (0-d) tensor, got {got} ({tag}) — "
                "reduce over time, batch and classes",
            )
        if not torch.isfinite(value):
            raise _fail(check, loss, f"is not finite ({value.item()}) on a {tag}")
        if value.device != leaf.device:
            raise _fail(check, loss, f"result is on {value.device}, output on {leaf.device}")
        if not value.requires_grad:
            raise _fail(check, loss, f"is not differentiable with respect to the output ({tag})")
        (grad,) = torch.autograd.grad(value, leaf)
        if not torch.isfinite(grad).all() or not grad.any():
            raise _fail(
                check,
                loss,
                f"gradient with respect to the output is not finite or all zero ({tag})",
            )
        predict = getattr(loss, "predict", None)
        if callable(predict):
            with torch.no_grad():
                pred = predict(output)
            if not isinstance(pred, Tensor) or tuple(pred.shape) != (batch,):
                got = list(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
                raise _fail(
                    check,
                    loss,
                    f"predict(output) must have shape [B] = [{batch}], got {got} ({tag})",
                )
            if pred.is_floating_point() or pred.dtype == torch.bool:
                raise _fail(
                    check, loss, f"predict(output) must hold integer classes, got {pred.dtype}"
                )
            if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= classes):
                raise _fail(
                    check, loss, f"predict(output) must lie in [0, {classes}), got {pred.tolist()}"
                )
    if gradcheck:
        twin = copy.deepcopy(loss).double()
        leaf = analog.clone().requires_grad_(True)
        try:
            ok = torch.autograd.gradcheck(
                lambda o: twin(o, target), (leaf,), fast_mode=True, raise_exception=False
            )
        except RuntimeError as err:  # e.g. non-float64 internals
            raise _fail(check, loss, f"gradcheck (float64) raised: {err}") from None
        if not ok:
            raise _fail(
                check,
                loss,
                "analytical gradient disagrees with finite differences "
                "(torch.autograd.gradcheck, float64, real-valued output)",
            )
