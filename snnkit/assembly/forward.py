"""An Experiment's forward module: a raw batch ``x [B, *]`` in, the output ``[T, B, C]`` out.

:class:`TimeLoop` turns a model into one module mapping a sequence ``[T, B, *]`` to
``[T, B, C]`` whatever its step mode: multi-step models take the sequence at once, single-step
models are called once per step. Neuron state is cleared after every sequence (``reset_net``),
as in the reference's training loop. :class:`EncodedForward` puts the encoder in front:
``out = TimeLoop(model)(encoder(x))``, the dense path every recipe can take (the fast input
path of :mod:`snnkit.assembly.fast_input` replaces it where it fits).
"""

from __future__ import annotations

import torch
from torch import nn

from snnkit.components.functional import reset_net


class TimeLoop(nn.Module):
    """``[T, B, *] -> [T, B, C]`` through ``model`` in its own step mode, state cleared after."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        model = self.model
        if getattr(model, "step_mode", "m") == "s":
            out = torch.stack([model(seq[t]) for t in range(seq.shape[0])])
        else:
            out = model(seq)
        reset_net(model)
        return out


class EncodedForward(nn.Module):
    """``x [B, *] -> loop(encoder(x))``: ``[T, B, C]``.

    ``loop`` is the model's :class:`TimeLoop`, or a wrapper of it (the engine wraps it in
    DistributedDataParallel, leaving the encoder outside); :meth:`dense` builds the usual one.
    """

    def __init__(self, encoder: nn.Module, loop: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.loop = loop

    @classmethod
    def dense(cls, encoder: nn.Module, model: nn.Module) -> EncodedForward:
        """``TimeLoop(model)(encoder(x))``."""
        return cls(encoder, TimeLoop(model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.loop(self.encoder(x))
