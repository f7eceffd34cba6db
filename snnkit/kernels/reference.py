"""Reference kernel: the autograd loop over T through the neuron's own step function.

It is the oracle every fused kernel is tested against and the fallback for every neuron,
surrogate, dtype and device.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def reference_multi_step(neuron: Any, x_seq: Tensor, record: bool) -> tuple[Tensor, Tensor | None]:
    """Run ``step_fn`` over the first axis of ``x_seq`` ``[T, B, *]`` from the initial state.

    Returns the stacked outputs and, if ``record``, the detached V(t) trace ``[T, B, *]``.
    """
    step_fn, kwargs = type(neuron).step_fn, neuron.step_kwargs()
    state = neuron.initial_state(x_seq[0])
    outs: list[Tensor] = []
    voltages: list[Tensor] = []
    for x in x_seq:
        out, state = step_fn(state, x, **kwargs)
        outs.append(out)
        if record:
            voltages.append(state[0].detach())
    return torch.stack(outs), (torch.stack(voltages) if record else None)
