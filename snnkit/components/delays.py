"""Synaptic delays: fixed per-channel integer delays, and learned per-synapse delays (DCLS).

``delay`` shifts each channel's spike train by a fixed number of steps::

    y[t, b, c, ...] = x[t − d_c, b, c, ...]      (0 for t < d_c)

``dcls_delay`` is a linear map whose every synapse has its own learned delay, after Hammouamri,
Khalfaoui-Hassani and Masquelier, "Learning Delays in Spiking Neural Networks using Dilated
Convolutions with Learnable Spacings" (ICLR 2024; arXiv 2306.17670, 2023). It is a temporal
convolution of kernel size K = max_delay + 1 whose taps are a Gaussian placed at a learned
position p_ij ∈ [0, max_delay] (:func:`dcls_kernel`)::

    y_j(t) = Σ_i Σ_k w_ij g_ij[k] x_i(t − k) + b_j,    g_ij[k] = N(k; p_ij, σ) / Σ_k' N(k'; p_ij, σ)

The width σ sharpens over training (:func:`dcls_sigma`, exponential from ``sigma_init`` at the
first epoch to ``sigma_final`` at the last): the trainer calls
:func:`~snnkit.components.functional.start_epoch` at every epoch start, which calls
``on_epoch_start(epoch, epochs)`` on each module that has it. σ is a buffer, so checkpoints and
evaluation keep the value training reached.

Both layers expose ``max_delay``; assembly refuses one that is not shorter than ``time_steps``.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from annotated_types import Ge, Gt
from torch import Tensor, nn

from snnkit.components.functional import check_step_mode

__all__ = ["DCLSDelay", "Delay", "dcls_kernel", "dcls_sigma", "delay_shift"]


def delay_shift(x: Tensor, delays: Tensor) -> Tensor:
    """``y[t, :, c] = x[t − d_c, :, c]`` (zeros before ``d_c``) for ``x`` of ``[T, B, C, *]``
    and integer ``delays`` of ``[C]``."""
    T, C = x.shape[0], x.shape[2]
    if delays.shape != (C,):
        raise ValueError(f"delays has shape {tuple(delays.shape)} but the input has {C} channels")
    D = int(delays.max()) if C else 0
    padded = nn.functional.pad(x, (0, 0) * (x.dim() - 1) + (D, 0))
    t = torch.arange(T, device=x.device).view(T, 1) + D - delays.to(x.device).view(1, C)
    index = t.view(T, 1, C, *([1] * (x.dim() - 3))).expand_as(x)
    return padded.gather(0, index)


def dcls_sigma(epoch: int, epochs: int, sigma_init: float, sigma_final: float) -> float:
    """σ at the start of ``epoch`` (1-based) of ``epochs``: σ_0 (σ_f / σ_0)^((e − 1)/(E − 1))."""
    progress = min(max(epoch - 1, 0) / max(epochs - 1, 1), 1.0)
    return float(sigma_init * (sigma_final / sigma_init) ** progress)


def dcls_kernel(weight: Tensor, positions: Tensor, sigma: Tensor | float, size: int) -> Tensor:
    """``[O, I, size]`` taps: ``w_ij · N(k; p_ij, σ) / Σ_k' N(k'; p_ij, σ)`` for k = 0..size−1."""
    k = torch.arange(size, device=weight.device, dtype=weight.dtype)
    g = torch.exp(-0.5 * ((k - positions.unsqueeze(-1)) / sigma) ** 2)
    g = g / (g.sum(-1, keepdim=True) + 1e-7)
    return weight.unsqueeze(-1) * g


class Delay(nn.Module):
    """Fixed per-channel delays: ``y[t, c] = x[t − d_c, c]`` (0 before); channels = the first
    per-step axis. ``delays`` is a list (one per channel) or one int for all channels."""

    delays: Tensor

    def __init__(
        self,
        delays: int | list[int],
        channels: int | None = None,
        step_mode: str = "m",
    ) -> None:
        super().__init__()
        values = [delays] * (channels or 1) if isinstance(delays, int) else list(delays)
        if isinstance(delays, list) and channels is not None and len(values) != channels:
            raise ValueError(f"delays lists {len(values)} values but channels is {channels}")
        if not values or any(not isinstance(d, int) or d < 0 for d in values):
            raise ValueError(f"delays must be ints >= 0 (steps), got {delays!r}")
        self._broadcast = isinstance(delays, int) and channels is None
        self.register_buffer("delays", torch.tensor(values, dtype=torch.long), persistent=False)
        self.max_delay = max(values)
        self.step_mode = check_step_mode(step_mode)
        self.reset()

    def reset(self) -> None:
        """Forget the single-step history."""
        self._buffer: Tensor | None = None

    def _delays_for(self, channels: int) -> Tensor:
        if self._broadcast:
            return self.delays.expand(channels)
        return self.delays

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "m":
            return delay_shift(x, self._delays_for(x.shape[2]))
        if self._buffer is None:
            self._buffer = x.new_zeros((self.max_delay + 1, *x.shape))
        self._buffer = torch.cat([self._buffer[1:], x.unsqueeze(0)])
        return delay_shift(self._buffer, self._delays_for(x.shape[1]))[-1]

    def extra_repr(self) -> str:
        return f"delays={self.delays.tolist()}, step_mode={self.step_mode!r}"


class DCLSDelay(nn.Module):
    """Linear map with a learned delay per synapse (DCLS, Hammouamri et al. 2023):
    ``[T, B, in_features] -> [T, B, out_features]``; see the module doc for the equation.

    Use it in place of a ``linear`` layer, e.g. after a neuron or after another linear layer
    (``in_features`` = that layer's ``out_features``). Delays reach ``max_delay`` steps.
    """

    sigma: Tensor

    def __init__(
        self,
        in_features: Annotated[int, Ge(1)],
        out_features: Annotated[int, Ge(1)],
        max_delay: Annotated[int, Ge(1)] = 25,
        sigma_init: float | None = None,
        sigma_final: Annotated[float, Gt(0)] = 0.5,
        bias: bool = False,
        step_mode: str = "m",
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.max_delay = max_delay
        if sigma_init is not None and not sigma_init > 0:
            raise ValueError(
                f"sigma_init must be > 0 (a Gaussian width in steps), got {sigma_init}"
            )
        self.sigma_init = float(sigma_init if sigma_init is not None else (max_delay + 1) / 2)
        self.sigma_final = float(sigma_final)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.positions = nn.Parameter(torch.rand(out_features, in_features) * max_delay)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("sigma", torch.tensor(self.sigma_init))
        self.step_mode = check_step_mode(step_mode)
        self.reset()

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Set σ for ``epoch`` of ``epochs`` (:func:`dcls_sigma`); the trainer calls this."""
        self.sigma.fill_(dcls_sigma(epoch, epochs, self.sigma_init, self.sigma_final))

    def kernel(self) -> Tensor:
        """The ``[out, in, max_delay + 1]`` taps, tap k acting on ``x(t − k)``."""
        positions = self.positions.clamp(0, self.max_delay)
        return dcls_kernel(self.weight, positions, self.sigma, self.max_delay + 1)

    def reset(self) -> None:
        """Forget the single-step history."""
        self._buffer: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        taps = self.kernel()
        if self.step_mode == "m":
            if x.dim() != 3:
                raise ValueError(f"dcls_delay expects [T, B, in_features], got {tuple(x.shape)}")
            seq = nn.functional.pad(x.permute(1, 2, 0), (self.max_delay, 0))
            y = nn.functional.conv1d(seq, taps.flip(-1), self.bias)
            return y.permute(2, 0, 1)
        if self._buffer is None:
            self._buffer = x.new_zeros((self.max_delay + 1, *x.shape))
        self._buffer = torch.cat([self._buffer[1:], x.unsqueeze(0)])
        y = torch.einsum("oik,kbi->bo", taps, self._buffer.flip(0))
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"max_delay={self.max_delay}, sigma={float(self.sigma):.3g}, "
            f"step_mode={self.step_mode!r}"
        )
