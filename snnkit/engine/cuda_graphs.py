"""One training step's forward, loss and backward captured as a CUDA graph and replayed.

On a GPU a small network's step is bound by the host: each of its few dozen kernel launches
costs tens of microseconds of Python and driver time while the GPU idles. Captured once, the
whole forward + loss + backward replays as one launch. The optimizer step stays outside the
graph, so the engine reads the loss first and stops before a non-finite update exactly as in
eager mode.

:class:`GraphStep` is a :class:`~snnkit.engine.steps.TrainStep`: ``step(x, y)`` replays the
graph where it can and otherwise runs the batch eagerly (on the side stream during warm-up,
zeroing the graph's ``.grad`` tensors in place after capture), so the trainer's loop has one
call per batch whatever happens. Underneath:

- ``replay(x, y)`` returns ``(loss, correct)`` after the gradients of batch ``(x, y)`` are in the
  parameters' ``.grad`` (written, not accumulated), or None when the caller must run that batch
  eagerly: the first ``WARMUP`` full batches (they warm cuBLAS, Triton's compiler and autograd
  up, on a side stream, as CUDA graph capture requires), any batch of another shape (the last,
  partial one) and everything after a capture that failed (one warning; e.g. a layer that reads
  a value back to the host).
- After capture, the parameters' ``.grad`` tensors belong to the graph: eager steps must zero
  them in place (``zero_grad(set_to_none=False)``) — :attr:`captured` tells, and ``step``
  does so.
- Random numbers come from the CUDA generator inside the graph (graph-safe Philox offsets), so a
  run stays seeded and reproducible; a resumed run re-captures, so CUDA runs with graphs resume
  with the same distribution of draws, not bit for bit (CPU runs do).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from snnkit.engine.steps import EagerStep

WARMUP = 3


class GraphStep:
    """Captures ``loss_fn(forward(x), y).backward()`` on the first full batch after warm-up."""

    def __init__(
        self,
        forward: Callable[[Tensor], Tensor],
        loss: Any,
        predict: Callable[[Any, Tensor], Tensor],
        optimizer: torch.optim.Optimizer,
    ) -> None:
        self.forward, self.loss, self.predict, self.optimizer = forward, loss, predict, optimizer
        self.stream = torch.cuda.Stream()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.warm = 0
        self.replays = 0
        self.shapes: tuple[torch.Size, torch.Size] | None = None
        self._x: Tensor | None = None
        self._y: Tensor | None = None
        self._loss: Tensor | None = None
        self._correct: Tensor | None = None
        self._eager = EagerStep(forward, loss, optimizer)

    @property
    def captured(self) -> bool:
        """True once the graph owns the parameters' ``.grad`` tensors."""
        return self.graph is not None

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The gradients of ``(x, y)`` in ``.grad``: replayed, or computed eagerly."""
        replayed = self.replay(x, y)
        if replayed is not None:
            return replayed
        with self.eager():
            self._eager.set_to_none = self.graph is None
            return self._eager(x, y)

    def replay(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor] | None:
        """Replay the graph on ``(x, y)``: ``(loss, correct)``, or None (run it eagerly)."""
        if self.failed:
            return None
        if self.shapes is None:
            self.shapes = (x.shape, y.shape)
        if (x.shape, y.shape) != self.shapes:
            return None
        if self.graph is None:
            if self.warm < WARMUP:
                self.warm += 1
                return None
            if not self._capture(x, y):
                return None
        assert self._x is not None and self._y is not None
        self._x.copy_(x)
        self._y.copy_(y)
        self.graph.replay()  # type: ignore[union-attr]
        self.replays += 1
        assert self._loss is not None and self._correct is not None
        return self._loss, self._correct.clone()

    @contextmanager
    def eager(self) -> Iterator[None]:
        """Where an eager step runs: on the side stream during warm-up, else as usual."""
        if self.graph is not None or self.failed:
            yield
            return
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            yield
        torch.cuda.current_stream().wait_stream(self.stream)

    def _capture(self, x: Tensor, y: Tensor) -> bool:
        torch.cuda.current_stream().wait_stream(self.stream)
        self._x, self._y = static_x, static_y = x.clone(), y.clone()
        self.optimizer.zero_grad(set_to_none=True)  # backward in the graph creates the grads
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                out = self.forward(static_x)
                loss = self.loss(out.float(), static_y)
                loss.backward()
                with torch.no_grad():
                    correct = (self.predict(self.loss, out) == static_y).sum()
        except Exception as err:  # noqa: BLE001 - anything not capturable: run eagerly instead
            self.failed = True
            self.optimizer.zero_grad(set_to_none=True)
            self._x = self._y = None
            warnings.warn(
                f"snnkit: this model cannot be captured as a CUDA graph "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); training "
                "eagerly (set train.cuda_graphs: false to skip the attempt)",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        self.graph, self._loss, self._correct = graph, loss.detach(), correct
        return True
