"""How one training step computes its gradients: the step strategies the trainer chooses from.

Contract (:class:`TrainStep`): ``step(x, y)`` leaves the gradients of ``loss(forward(x), y)``
for batch ``(x, y)`` in the parameters' ``.grad`` (written, not accumulated) and returns
``(loss, correct)``: the loss as a 0-dim tensor (not read back, so the caller decides when the
host waits) and the number of correct predictions as a 0-dim tensor. The optimizer update is
the caller's, so a non-finite loss can stop the run before any weight changes.

- :class:`EagerStep`: ``zero_grad``, forward, loss, backward, one PyTorch call after another.
- :class:`AutocastStep`: the same under ``torch.autocast`` (bfloat16 on CUDA: ``train.amp``).
- :class:`~snnkit.engine.cuda_graphs.GraphStep`: the step captured as a CUDA graph and
  replayed, eager where it cannot replay.

:func:`is_overflow` tells the optimizer update that overflowed (a non-finite step, not a bug)
from other ``RuntimeError`` s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from snnkit.engine.evaluation import predict


class TrainStep(Protocol):
    """One batch's gradients: ``step(x, y) -> (loss, correct)``, both 0-dim tensors."""

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]: ...


class EagerStep:
    """``loss(forward(x), y).backward()`` after zeroing the gradients.

    ``set_to_none``: drop the ``.grad`` tensors (the default) or zero them in place (needed
    once a CUDA graph owns them).
    """

    def __init__(
        self, forward: Callable[[Tensor], Tensor], loss: Any, optimizer: torch.optim.Optimizer
    ) -> None:
        self.forward, self.loss, self.optimizer = forward, loss, optimizer
        self.set_to_none = True

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        self.optimizer.zero_grad(set_to_none=self.set_to_none)
        out, loss = self._forward_loss(x, y)
        loss.backward()
        with torch.no_grad():
            correct = (predict(self.loss, out) == y).sum()
        return loss, correct

    def _forward_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        out = self.forward(x)
        return out, self.loss(out.float(), y)


class AutocastStep(EagerStep):
    """:class:`EagerStep` with forward and loss under ``torch.autocast(device, dtype)``."""

    def __init__(
        self,
        forward: Callable[[Tensor], Tensor],
        loss: Any,
        optimizer: torch.optim.Optimizer,
        device_type: str = "cuda",
        dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        super().__init__(forward, loss, optimizer)
        self.device_type, self.dtype = device_type, dtype

    def _forward_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return super()._forward_loss(x, y)


def is_overflow(err: RuntimeError) -> bool:
    """torch refusing a Python number too large for a tensor's dtype, e.g. Adam's step size
    ``lr / (1 - β1^t)`` beyond float32's 3.4e38 (``value cannot be converted to type float
    without overflow``): the update is non-finite, not a bug."""
    return "without overflow" in str(err) and "cannot be converted to type" in str(err)
