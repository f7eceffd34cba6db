"""``check_model``: a model (or any block of layers) against the ``register_models`` contract."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from snnkit.components.functional import reset_net, set_step_mode
from snnkit.testing.common import DeviceLike, _device, _fail, _generator


def check_model(
    model: nn.Module,
    input_shape: Sequence[int],
    num_classes: int | None = None,
    *,
    time_steps: int = 3,
    batch: int = 2,
    device: DeviceLike = None,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """Check a built model on seeded inputs ``[T, B, *input_shape]`` (values in [0, 1]).

    Rules: the multi-step output is a finite ``[T, B, num_classes]`` tensor (``[T, B, *]`` if
    ``num_classes`` is None); after ``reset_net`` a second call gives the same output (no state
    leaks between sequences); the single-step loop (``set_step_mode(model, "s")``, one step at a
    time) gives the multi-step output; a backward pass reaches every trainable parameter. The
    model is checked in eval mode and left in multi-step mode.
    """
    check = "check_model"
    dev = _device(device)
    model = model.to(dev).eval()
    g = _generator(seed)
    x = torch.rand((time_steps, batch, *input_shape), generator=g).to(dev)
    set_step_mode(model, "m")
    reset_net(model)
    with torch.no_grad():
        y = model(x)
        if not isinstance(y, torch.Tensor) or y.shape[:2] != (time_steps, batch):
            shown = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise _fail(
                check, model, f"output must be [T={time_steps}, B={batch}, ...], got {shown}"
            )
        if num_classes is not None and tuple(y.shape[2:]) != (num_classes,):
            raise _fail(check, model, f"output must be [T, B, {num_classes}], got {list(y.shape)}")
        if not torch.isfinite(y).all():
            raise _fail(check, model, "output holds inf or NaN")
        reset_net(model)
        again = model(x)
        if not torch.allclose(again, y, atol=atol, rtol=rtol):
            raise _fail(check, model, "a second sequence after reset_net differs: state leaks")
        reset_net(model)
        set_step_mode(model, "s")
        try:
            steps = torch.stack([model(x[t]) for t in range(time_steps)])
        finally:
            reset_net(model)
            set_step_mode(model, "m")
        if steps.shape != y.shape or not torch.allclose(steps, y, atol=atol, rtol=rtol):
            worst = (steps - y).abs().max().item() if steps.shape == y.shape else steps.shape
            raise _fail(check, model, f"single-step output differs from multi-step ({worst})")
    model(x).float().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    reset_net(model)
    if missing:
        raise _fail(check, model, f"no gradient reaches {missing[0]} ({len(missing)} parameters)")
