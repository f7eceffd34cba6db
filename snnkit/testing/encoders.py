"""``check_encoder``: an input encoder against the ``register_encoders`` contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from snnkit.testing.common import DeviceLike, _device, _fail, _generator


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
            raise _fail(
                check,
                encoder,
                f"output must be [T, B, *] = {list(want)} with T = "
                f"time_steps = {time_steps}, got {list(out.shape)} ({tag})",
            )
        if not out.is_floating_point():
            raise _fail(
                check, encoder, f"output must be a floating tensor, got {out.dtype} ({tag})"
            )
        if out.device != x.device:
            raise _fail(check, encoder, f"output is on {out.device}, input on {x.device} ({tag})")
        if not torch.isfinite(out).all():
            raise _fail(check, encoder, f"output is not finite ({tag})")
