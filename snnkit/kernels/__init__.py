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

Which neurons fuse is their own declaration, read by duck typing (this package imports no
neuron or surrogate): a neuron class with ``kernel_fusable()`` true accepts ``cpp`` and
``triton``, and an instance's ``kernel_form()`` returns its
:class:`~snnkit.kernels.forms.NeuronForm` (None: the reference loop). snnkit's IF, LIF and PLIF
declare one, with every built-in surrogate's g' compiled in and any other spiking
``Surrogate``'s ``derivative`` evaluated in PyTorch on the saved H − V_th.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.forms import NeuronForm, form_of
from snnkit.kernels.reference import reference_multi_step
from snnkit.kernels.switches import reference_forced, reference_only, triton_available

KERNEL_NAMES = ("auto", "reference", "cpp", "triton")

__all__ = [
    "KERNEL_NAMES",
    "channels_last_steps",
    "check_kernel",
    "kernel_names",
    "multi_step",
    "multi_step_repeated",
    "reference_forced",
    "reference_only",
    "repeat_steps",
    "select_kernel",
    "triton_available",
]


def kernel_names(cls: type) -> tuple[str, ...]:
    """The kernel names a neuron class accepts (``auto`` and ``reference`` for every class;
    also ``cpp`` and ``triton`` when its ``kernel_fusable()`` says so)."""
    fusable = getattr(cls, "kernel_fusable", None)
    return KERNEL_NAMES if callable(fusable) and fusable() else ("auto", "reference")


def check_kernel(cls: type, name: str) -> str:
    """``name`` if ``cls`` accepts it, else ``ValueError`` listing the accepted names."""
    names = kernel_names(cls)
    if name not in names:
        raise ValueError(
            f"kernel must be one of {', '.join(repr(n) for n in names)} for "
            f"{cls.__name__}, got {name!r}"
        )
    return name


def _triton_ok(x: Tensor) -> bool:
    return x.device.type == "cuda" and x.dtype == torch.float32 and triton_available()


def _cpp_or_reference(form: NeuronForm) -> tuple[str, NeuronForm | None]:
    from snnkit.kernels.cpu.build import cpu_extension

    return ("cpp", form) if cpu_extension() is not None else ("reference", None)


def select_kernel(neuron: Any, x_seq: Tensor) -> tuple[str, NeuronForm | None]:
    """The kernel that will run ``neuron`` on ``x_seq``: ``(name, form)``.

    ``name`` is ``reference``, ``cpp`` or ``triton``; an explicit request that cannot run raises
    ``ValueError``; a failed C++ build degrades to ``reference`` (one warning).
    """
    name = getattr(neuron, "kernel", "auto")
    if name == "reference" or reference_forced():
        return "reference", None
    form = form_of(neuron)
    cpu_ok = x_seq.device.type == "cpu" and x_seq.dtype in (torch.float32, torch.float64)
    if name == "auto":
        if form is None:
            return "reference", None
        if cpu_ok:
            return _cpp_or_reference(form)
        if _triton_ok(x_seq):
            return "triton", form
        return "reference", None
    if form is None:
        raise ValueError(
            f"kernel={name!r}: {type(neuron).__name__} with surrogate "
            f"{type(getattr(neuron, 'surrogate', None)).__name__} cannot be fused "
            "(not a spiking Surrogate using the base forward); use "
            "kernel='reference'"
        )
    if name == "cpp":
        if not cpu_ok:
            raise ValueError(
                f"kernel='cpp' runs on CPU float32/float64 input, got "
                f"{x_seq.dtype} on {x_seq.device}; use kernel='auto'"
            )
        return _cpp_or_reference(form)
    if name == "triton":
        if not _triton_ok(x_seq):
            raise ValueError(
                f"kernel='triton' needs CUDA float32 input and an importable "
                f"triton, got {x_seq.dtype} on {x_seq.device}; use kernel='auto'"
            )
        return "triton", form
    raise ValueError(
        f"kernel must be one of {', '.join(repr(n) for n in KERNEL_NAMES)}, got {name!r}"
    )


def multi_step(neuron: Any, x_seq: Tensor) -> tuple[Tensor, Tensor | None]:
    """Run ``neuron`` over ``x_seq [T, B, *]`` with its selected kernel: ``(out, V trace)``.

    The V trace (after reset, detached) is returned only when ``neuron.record_v`` is true.
    """
    record = bool(getattr(neuron, "record_v", False))
    name, form = select_kernel(neuron, x_seq)
    if name != "reference" and channels_last_steps(x_seq):
        # The fused kernels run over the flat memory of a contiguous [T, *] tensor, element by
        # element through T: the [T, B, H, W, C] view of a channels-last sequence is one, so the
        # kernel runs on it and the result is viewed back (no layout copy either way).
        out, v = multi_step(neuron, x_seq.permute(0, 1, 3, 4, 2))
        back = (0, 1, 4, 2, 3)
        return out.permute(back), (None if v is None else v.permute(back))
    if name == "cpp":
        from snnkit.kernels.cpu.build import cpu_extension
        from snnkit.kernels.cpu.neuron import cpp_multi_step

        ext = cpu_extension()
        assert form is not None and ext is not None
        return cpp_multi_step(form, ext, x_seq, record)
    if name == "triton":
        from snnkit.kernels.cuda.triton_neuron import triton_multi_step

        assert form is not None
        return triton_multi_step(form, x_seq, record)
    return reference_multi_step(neuron, x_seq, record)


def multi_step_repeated(neuron: Any, x_step: Tensor, steps: int) -> tuple[Tensor, Tensor | None]:
    """:func:`multi_step` of ``neuron`` over ``x_step [1, B, *]`` repeated ``steps`` times.

    The fused C++ kernel reads the one step at every t (no ``[T, B, *]`` copy of the input) and
    its backward hands back ``Σ_t dL/dX(t)``, what the repetition's gradient is; other kernels
    run on the broadcast view (:func:`repeat_steps`).
    """
    x_seq = repeat_steps(x_step, steps)
    name, form = select_kernel(neuron, x_seq)
    if name != "cpp" or form is None:
        return multi_step(neuron, x_seq)
    from snnkit.kernels.cpu.build import cpu_extension
    from snnkit.kernels.cpu.neuron import cpp_multi_step_repeated

    ext = cpu_extension()
    assert ext is not None
    record = bool(getattr(neuron, "record_v", False))
    step = x_step.squeeze(0)  # a view both ways (indexing would copy the gradient back NCHW)
    if channels_last_steps(x_seq):  # run on the NHWC view, as multi_step does
        out, v = cpp_multi_step_repeated(form, ext, step.permute(0, 2, 3, 1), steps, record)
        back = (0, 1, 4, 2, 3)
        return out.permute(back), (None if v is None else v.permute(back))
    return cpp_multi_step_repeated(form, ext, step, steps, record)


def repeat_steps(x: Tensor, steps: int) -> Tensor:
    """``x [1, B, *]`` broadcast to ``[steps, B, *]`` (a view); a channels-last ``x`` is
    broadcast in its NHWC order, so the backward's sum over T stays channels-last too."""
    if channels_last_steps(x):
        nhwc = x.permute(0, 1, 3, 4, 2)
        return nhwc.expand(steps, *nhwc.shape[1:]).permute(0, 1, 4, 2, 3)
    return x.expand(steps, *x.shape[1:])


def channels_last_steps(x_seq: Tensor) -> bool:
    """Whether ``x_seq [T, B, C, H, W]`` holds each step channels-last (and not plain contiguous).

    True for the output of a channels-last convolution or batch norm run over ``[T*B, ...]``
    and for such a step broadcast over T (``expand``).
    """
    if x_seq.dim() != 5:
        return False
    step = x_seq[0]
    return step.is_contiguous(memory_format=torch.channels_last) and not step.is_contiguous()
