"""Multi-step kernels: how a neuron runs over T (reference loop, fused C++ on CPU, Triton on CUDA).

Every kernel computes the same equations as the neuron's step function (spikes bit-identical
to the reference, gradients equal to rounding). A neuron picks one with its ``kernel``
parameter:

- ``"auto"`` (default): the fastest correct kernel available for this neuron, surrogate,
  device and dtype: ``cpp`` on CPU float32/float64, ``triton`` on CUDA float32, else
  ``reference``.
- ``"reference"``: the autograd loop over :func:`step_fn` (any neuron, any surrogate).
- ``"cpp"`` / ``"triton"``: that kernel or an error saying why it cannot run. If the C++ build
  is impossible on this machine, ``cpp`` and ``auto`` warn once and use the reference loop.

Fused kernels exist for IF, LIF and PLIF with every built-in surrogate (their g' compiled in)
and any other ``Surrogate`` whose ``derivative`` is evaluated in PyTorch on the saved H − V_th.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.reference import reference_multi_step
from snnkit.kernels.forms import NeuronSpec, fusable_class, neuron_spec

KERNEL_NAMES = ("auto", "reference", "cpp", "triton")

__all__ = ["KERNEL_NAMES", "check_kernel", "kernel_names", "multi_step", "reference_only",
           "reference_forced", "select_kernel", "triton_available"]

_forced = 0  # > 0 inside reference_only()


@contextmanager
def reference_only() -> Iterator[None]:
    """Run every neuron with the reference loop and the Poisson encoder in plain PyTorch.

    Same results (the kernels match the reference), no compiling: for the recipe checks that
    push two samples through the model before anything runs, on any machine.
    """
    global _forced
    _forced += 1
    try:
        yield
    finally:
        _forced -= 1


def reference_forced() -> bool:
    """True inside :func:`reference_only`."""
    return _forced > 0


def kernel_names(cls: type) -> tuple[str, ...]:
    """The kernel names a neuron class accepts (``auto`` and ``reference`` for every class)."""
    return KERNEL_NAMES if fusable_class(cls) else ("auto", "reference")


def check_kernel(cls: type, name: str) -> str:
    """``name`` if ``cls`` accepts it, else ``ValueError`` listing the accepted names."""
    names = kernel_names(cls)
    if name not in names:
        raise ValueError(f"kernel must be one of {', '.join(repr(n) for n in names)} for "
                         f"{cls.__name__}, got {name!r}")
    return name


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when CUDA is present and triton is installed (checked once, without importing it)."""
    return torch.cuda.is_available() and importlib.util.find_spec("triton") is not None


def _triton_ok(x: Tensor) -> bool:
    return x.device.type == "cuda" and x.dtype == torch.float32 and triton_available()


def select_kernel(neuron: Any, x_seq: Tensor) -> tuple[str, NeuronSpec | None]:
    """The kernel that will run ``neuron`` on ``x_seq``: ``(name, spec)``.

    ``name`` is ``reference``, ``cpp`` or ``triton``; an explicit request that cannot run raises
    ``ValueError``; a failed C++ build degrades to ``reference`` (one warning).
    """
    name = getattr(neuron, "kernel", "auto")
    if name == "reference" or _forced:
        return "reference", None
    spec = neuron_spec(neuron)
    cpu_ok = x_seq.device.type == "cpu" and x_seq.dtype in (torch.float32, torch.float64)
    if name == "auto":
        if spec is None:
            return "reference", None
        if cpu_ok:
            from snnkit.kernels.cpu.build import cpu_extension

            return ("cpp", spec) if cpu_extension() is not None else ("reference", None)
        if _triton_ok(x_seq):
            return "triton", spec
        return "reference", None
    if spec is None:
        raise ValueError(f"kernel={name!r}: {type(neuron).__name__} with surrogate "
                         f"{type(neuron.surrogate).__name__} cannot be fused (not a spiking "
                         "Surrogate using the base forward); use kernel='reference'")
    if name == "cpp":
        if not cpu_ok:
            raise ValueError(f"kernel='cpp' runs on CPU float32/float64 input, got "
                             f"{x_seq.dtype} on {x_seq.device}; use kernel='auto'")
        from snnkit.kernels.cpu.build import cpu_extension

        return ("cpp", spec) if cpu_extension() is not None else ("reference", None)
    if name == "triton":
        if not _triton_ok(x_seq):
            raise ValueError(f"kernel='triton' needs CUDA float32 input and an importable "
                             f"triton, got {x_seq.dtype} on {x_seq.device}; use kernel='auto'")
        return "triton", spec
    raise ValueError(f"kernel must be one of {', '.join(repr(n) for n in KERNEL_NAMES)}, "
                     f"got {name!r}")


def multi_step(neuron: Any, x_seq: Tensor) -> tuple[Tensor, Tensor | None]:
    """Run ``neuron`` over ``x_seq [T, B, *]`` with its selected kernel: ``(out, V trace)``.

    The V trace (after reset, detached) is returned only when ``neuron.record_v`` is true.
    """
    record = bool(getattr(neuron, "record_v", False))
    name, spec = select_kernel(neuron, x_seq)
    if name == "cpp":
        from snnkit.kernels.cpu.build import cpu_extension
        from snnkit.kernels.cpu.neuron import cpp_multi_step

        ext = cpu_extension()
        assert spec is not None and ext is not None
        return cpp_multi_step(spec, ext, x_seq, record)
    if name == "triton":
        from snnkit.kernels.cuda.triton_neuron import triton_multi_step

        assert spec is not None
        return triton_multi_step(spec, x_seq, record)
    return reference_multi_step(neuron, x_seq, record)
