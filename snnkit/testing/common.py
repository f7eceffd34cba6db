"""Shared helpers of the conformance checks: failure messages, tolerances, seeded inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

DeviceLike = str | torch.device | None

#: Absolute and relative tolerances for comparing two computations of the same quantity.
_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-6, 1e-5),
    torch.float16: (1e-3, 1e-2),
    torch.bfloat16: (1e-2, 2e-2),
}


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
