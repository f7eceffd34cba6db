"""What may run: the :func:`reference_only` switch and whether Triton is available.

``reference_only`` is a ``contextvars.ContextVar`` (not a global counter), so a thread or an
asyncio task that enters it does not force the reference path on the others.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_REFERENCE_DEPTH: ContextVar[int] = ContextVar("snnkit_reference_only", default=0)
"""How many :func:`reference_only` blocks enclose the current context (> 0: forced)."""


@contextmanager
def reference_only() -> Iterator[None]:
    """Run every neuron with the reference loop and the Poisson encoder in plain PyTorch.

    Same results (the kernels match the reference), no compiling: for the recipe checks that
    push two samples through the model before anything runs, on any machine. Nests.
    """
    token = _REFERENCE_DEPTH.set(_REFERENCE_DEPTH.get() + 1)
    try:
        yield
    finally:
        _REFERENCE_DEPTH.reset(token)


def reference_forced() -> bool:
    """True inside :func:`reference_only` (in this context)."""
    return _REFERENCE_DEPTH.get() > 0


@functools.cache
def triton_available() -> bool:
    """True when CUDA is present and triton is installed (checked once, without importing it)."""
    return torch.cuda.is_available() and importlib.util.find_spec("triton") is not None
