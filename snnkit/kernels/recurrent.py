"""Multi-step kernels of a recurrent layer (``I(t) = X(t) + W_rec S(t−1) + b_rec`` into a neuron).

Read by duck typing (this package imports no component): the layer has ``kernel``, ``neuron``,
``weight`` (``[N, N]`` or ``[N]``), ``bias`` (``[N]`` or None) and ``reference_multi_step(x)``.

- ``"reference"``: the layer's autograd loop (any neuron, any surrogate, any device): the oracle.
- ``"cpp"``: the fused CPU kernel (:mod:`snnkit.kernels.cpu.recurrent`): one compiled forward
  and one backward pass through time, the per-step product by ``at::matmul``; for neurons whose
  ``kernel_form()`` is IF, LIF or PLIF, on CPU float32/float64.
- ``"triton"``: on CUDA float32 (:mod:`snnkit.kernels.cuda.triton_recurrent`): per step one
  cuBLAS product and one Triton launch for the neuron; same neurons as ``cpp``.
- ``"auto"``: ``cpp`` or ``triton`` where one can run, else ``reference``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snnkit.kernels.forms import NeuronForm, form_of
from snnkit.kernels.switches import reference_forced, triton_available

KERNEL_NAMES = ("auto", "reference", "cpp", "triton")


def select_kernel(layer: Any, x_seq: Tensor) -> tuple[str, NeuronForm | None]:
    """``(name, form)``: ``cpp`` or ``triton`` with the neuron's form, or ``reference``; an
    explicit ``cpp`` / ``triton`` that cannot run raises ``ValueError`` (a failed C++ build
    degrades to ``reference``)."""
    name = getattr(layer, "kernel", "auto")
    if name not in KERNEL_NAMES:
        raise ValueError(f"recurrent kernel must be one of {KERNEL_NAMES}, got {name!r}")
    if name == "reference" or reference_forced():
        return "reference", None
    form = form_of(layer.neuron)
    cpu_ok = x_seq.device.type == "cpu" and x_seq.dtype in (torch.float32, torch.float64)
    cuda_ok = x_seq.device.type == "cuda" and x_seq.dtype == torch.float32 and triton_available()
    if name != "auto" and (form is None or not (cpu_ok if name == "cpp" else cuda_ok)):
        where = "CPU float32/float64" if name == "cpp" else "CUDA float32 with triton"
        why = (
            f"{type(layer.neuron).__name__} has no fused form (IF, LIF or PLIF with a fusable "
            "surrogate)"
            if form is None
            else f"it runs on {where} input, got {x_seq.dtype} on {x_seq.device}"
        )
        raise ValueError(f"recurrent kernel={name!r}: {why}; use kernel='auto'")
    if form is None:
        return "reference", None
    if cuda_ok:
        return "triton", form
    if not cpu_ok:
        return "reference", None
    from snnkit.kernels.cpu.build import recurrent_extension

    return ("cpp", form) if recurrent_extension() is not None else ("reference", None)


def multi_step(layer: Any, x_seq: Tensor) -> Tensor:
    """Spikes ``[T, B, ..., N]`` of ``layer`` over ``x_seq`` with its selected kernel."""
    name, form = select_kernel(layer, x_seq)
    if name == "cpp":
        from snnkit.kernels.cpu.build import recurrent_extension
        from snnkit.kernels.cpu.recurrent import cpp_recurrent

        ext = recurrent_extension()
        assert form is not None and ext is not None
        return cpp_recurrent(form, ext, x_seq, layer.weight, layer.bias)
    if name == "triton":
        from snnkit.kernels.cuda.triton_recurrent import triton_recurrent

        assert form is not None
        return triton_recurrent(form, x_seq, layer.weight, layer.bias)
    return layer.reference_multi_step(x_seq)
