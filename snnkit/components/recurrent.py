"""The recurrent layer: any neuron whose own spikes come back as input through learned weights.

Per step (:func:`snnkit.components.functional.recurrent_input` then the neuron's step)::

    I(t) = X(t) + W_rec S(t−1) + b_rec          S(0) = 0
    H(t) = f(V(t−1), I(t));  S(t) = Θ(H(t) − V_th);  V(t) = reset(H(t), S(t))

``mode: all_to_all`` learns ``W_rec [N, N]``; ``one_to_one`` a vector ``w_rec [N]`` (each neuron
feeds back only to itself). The neuron is built from a neuron spec by assembly (it gets its own
surrogate, like any neuron layer); its ``step`` is called directly, so the wrapped neuron's own
``kernel`` and ``step_mode`` are not used. Both step modes run the same step, so spikes and
gradients are identical; multi-step picks a kernel with ``kernel:`` like a neuron (``auto``,
``reference``, ``cpp``; :mod:`snnkit.kernels.recurrent`), the reference loop being the oracle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.components.functional import check_step_mode, recurrent_input
from snnkit.kernels import recurrent as recurrent_kernels

MODES = ("all_to_all", "one_to_one")


def is_neuron(module: Any) -> bool:
    """A neuron as a recurrent layer can wrap it: it has ``step(state, x)`` and
    ``initial_state(x)`` (every snnkit neuron, and a plugin's that follows the contract)."""
    return callable(getattr(module, "step", None)) and callable(
        getattr(module, "initial_state", None)
    )


class Recurrent(nn.Module):
    """Recurrent spiking layer: ``[T, B, features] -> [T, B, features]`` spikes.

    ``neuron``: a neuron spec (built by snnkit, with its surrogate) or a neuron module;
    ``features``: N, the width of input and output; ``mode``: ``all_to_all`` (W_rec [N, N],
    initialised U(−1/√N, 1/√N) like a Linear layer) or ``one_to_one`` (w_rec [N], U(−1, 1));
    ``bias``: learn b_rec [N] (initialised 0). Sources: Bellec et al. 2018 (LSNN), Yin et al.
    2021 (SRNN).
    """

    def __init__(
        self,
        features: int,
        neuron: Any = "lif",
        mode: str = "all_to_all",
        bias: bool = True,
        kernel: str = "auto",
        step_mode: str = "m",
        build: Callable[[Any, str], nn.Module] | None = None,
    ) -> None:
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be 'all_to_all' or 'one_to_one', got {mode!r}")
        if kernel not in recurrent_kernels.KERNEL_NAMES:
            raise ValueError(
                f"kernel must be one of {', '.join(map(repr, recurrent_kernels.KERNEL_NAMES))}, "
                f"got {kernel!r}"
            )
        super().__init__()
        if not isinstance(neuron, nn.Module):
            if build is None:
                raise ValueError("neuron must be a neuron module when no builder is given")
            neuron = build(neuron, "neuron")
        if not is_neuron(neuron):
            raise ValueError(
                f"neuron: {type(neuron).__name__} is not a neuron (it has no step / "
                "initial_state) — a recurrent layer wraps a neuron: name one of snnkit list neuron"
            )
        self.neuron = neuron
        self.features, self.mode, self.kernel = features, mode, kernel
        shape = (features, features) if mode == "all_to_all" else (features,)
        bound = 1.0 / math.sqrt(features) if mode == "all_to_all" else 1.0
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(features)) if bias else None
        self.state: Any = None
        self._step_mode = check_step_mode(step_mode)

    @property
    def surrogate(self) -> Any:
        """The wrapped neuron's surrogate (so the engine counts this layer's firing rate)."""
        return getattr(self.neuron, "surrogate", None)

    @property
    def step_mode(self) -> str:
        """'m' (``[T, B, N]``) or 's' (``[B, N]``); setting it resets the kept state."""
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        self._step_mode = check_step_mode(mode)
        self.reset()

    def reset(self) -> None:
        """Forget the single-step state (neuron state and last spikes)."""
        self.state = None

    def step(self, state: Any, x: Tensor) -> tuple[Tensor, Any]:
        """One step as a pure call: ``state = (neuron state, S(t−1))`` (None: the start)."""
        if state is None:
            state = (self.neuron.initial_state(x), torch.zeros_like(x))
        neuron_state, s_prev = state
        s, neuron_state = self.neuron.step(
            neuron_state, recurrent_input(x, s_prev, self.weight, self.bias)
        )
        return s, (neuron_state, s)

    def _check(self, x: Tensor, dims: int) -> None:
        if x.dim() < dims or x.shape[-1] != self.features:
            layout = "[T, B, ..., features]" if dims == 3 else "[B, ..., features]"
            raise ValueError(
                f"Recurrent(features={self.features}) expects {layout}, got shape "
                f"{tuple(x.shape)} — set features: {x.shape[-1] if x.dim() else '?'}"
            )

    def forward(self, x: Tensor) -> Tensor:
        if self._step_mode == "s":
            self._check(x, 2)
            out, self.state = self.step(self.state, x)
            return out
        self._check(x, 3)
        return recurrent_kernels.multi_step(self, x)

    def reference_multi_step(self, x_seq: Tensor) -> Tensor:
        """The oracle: :meth:`step` over the first axis of ``x_seq`` from S(0) = 0."""
        state, outs = None, []
        for x in x_seq:
            out, state = self.step(state, x)
            outs.append(out)
        return torch.stack(outs)

    def extra_repr(self) -> str:
        fields = [
            f"features={self.features}",
            f"mode={self.mode!r}",
            f"bias={self.bias is not None}",
        ]
        if self.kernel != "auto":
            fields.append(f"kernel={self.kernel!r}")
        return ", ".join([*fields, f"step_mode={self._step_mode!r}"])
