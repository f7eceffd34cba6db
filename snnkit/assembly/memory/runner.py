"""Run a model over one time segment ``[t0, t1)`` from handed-over neuron states.

A :class:`SegmentRunner` lets the memory modes (:mod:`snnkit.assembly.memory.segmented`) cut
a sequence into time segments and run the model on each in turn, exactly as one pass over all T
steps would:

- **Neuron state** is handed over between segments: every neuron (and recurrent layer) runs
  the segment from the state given for it (None: its initial state), and the state after the
  segment's last step is returned, with its autograd history. A neuron the fused CPU kernel
  runs in ``full`` runs it here too, from the state
  (:mod:`snnkit.assembly.memory.segment_kernels`); any other runs its pure ``step_fn`` step by
  step (:mod:`snnkit.assembly.memory.neuron_segment`: saves only the segment's input and start
  state), with one warning per layer when the mode is built (:func:`fallback_warnings`).
  :attr:`SegmentRunner.kernels` says which ran. The layers in between still run once over
  ``[T_seg * B, *]``.
- **Per-sequence randomness** is drawn once and reused by every segment: Dropout masks (one per
  sample, shared by all steps) and RandomShift offsets are drawn on the first segment with the
  same calls as the multi-step layers make (so the same RNG state gives the same mask as the full
  pass) and kept in :attr:`SegmentRunner.draws`.
- **Batch norm + neuron**: a batch norm directly followed by a neuron that runs fused keeps only
  its input for both (:mod:`snnkit.assembly.memory.norm_neuron`; the backward recomputes the
  normalisation), or the input of the convolution before it where recomputing that is cheap
  (as bits when it is spikes).
- **1-bit storage**: a Linear or Conv layer whose input comes from a spiking neuron (through
  Flatten or pooling by max only), and a 2-D max pooling right after a spiking neuron, save
  that input as bits (:mod:`snnkit.kernels.bitpack`).

Batch normalisation in multi-step mode pools its statistics over the ``T_seg * B`` samples of
a segment instead of all ``T * B``: the mode is then not exact, which the warnings say.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from snnkit.assembly.memory.norm_neuron import RECOMPUTE_MACS, norm_neuron_pairs
from snnkit.assembly.memory.segment_kernels import (
    run_neuron,
    run_norm_neuron_pair,
    run_recurrent,
    segment_kernel,
)
from snnkit.components.layers import Dropout, Dropout2d, Flatten, MaxPool2d, RandomShift, translate
from snnkit.components.neurons import BaseNeuron, SpikingNeuron
from snnkit.components.recurrent import Recurrent
from snnkit.kernels.bitpack import binary_conv, binary_linear, binary_maxpool

#: Layers that keep a {0, 1} input binary.
_KEEPS_BINARY = (Flatten, MaxPool2d, nn.Identity, nn.Flatten, nn.MaxPool1d, nn.MaxPool2d)

States = dict[str, Any]


def binary_input_layers(model: nn.Module) -> list[str]:
    """Names of the Linear / Conv / 2-D max-pooling layers of an ``nn.Sequential`` whose
    input is spikes."""
    if not isinstance(model, nn.Sequential):
        return []
    names, binary = [], False
    for name, module in model.named_children():
        if isinstance(module, (SpikingNeuron, Recurrent)):
            binary = True
        elif isinstance(module, nn.MaxPool2d) and not module.return_indices:
            if binary:
                names.append(name)
        elif isinstance(module, _KEEPS_BINARY) and not isinstance(module, nn.Dropout):
            continue
        elif binary and _bit_packable(module):
            names.append(name)
            binary = False
        else:
            binary = False
    return names


def _bit_packable(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return (
        isinstance(module, (nn.Conv1d, nn.Conv2d))
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def _stateful_layers(model: nn.Module) -> dict[str, Any]:
    """The multi-step neurons and recurrent layers whose state segments hand over, by name (a
    neuron inside a recurrent layer belongs to the layer)."""
    found: dict[str, Any] = {}
    for name, module in model.named_modules():
        inside = any(name.startswith(f"{outer}.") for outer in found)
        if not inside and isinstance(module, (BaseNeuron, Recurrent)):
            found[name] = module
    return found


def fallback_warnings(model: nn.Module, mode: str, probe: Tensor | None = None) -> list[str]:
    """One line per layer that cannot run ``mode`` as it runs in ``full``: neurons and
    recurrent layers without a kernel that runs fused from a given state (the step function step
    by step instead; not said for ``kernel: reference``, which runs that way in ``full`` too) and
    multi-step batch norm (statistics per segment). Stateful modules that are not snnkit neurons
    cannot hand state over: the mode is refused for them (:func:`unsupported_modules`)."""
    lines = []
    x = probe if probe is not None else torch.zeros(1, 1)
    for name, module in _stateful_layers(model).items():
        if module.step_mode != "m" or getattr(module, "kernel", "auto") == "reference":
            continue
        kernel = segment_kernel(module, x.expand(1, 1, getattr(module, "features", 1)))
        if kernel == "cpp":
            continue
        why = (
            f"the {kernel} kernel takes no initial state"
            if kernel != "reference"
            else "it has no fused kernel"
        )
        lines.append(
            f"layer {name} ({type(module).__name__}): {why}, so train.memory={mode} runs its "
            "step function step by step in each segment (same values, slower)"
        )
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.modules.batchnorm._BatchNorm)
            and getattr(module, "step_mode", "s") == "m"
        ):
            lines.append(
                f"layer {name} ({type(module).__name__}): under train.memory={mode} its batch "
                "statistics pool the steps of one segment, not all T (gradients differ "
                "slightly from full)"
            )
    return lines


def unsupported_modules(model: nn.Module) -> list[str]:
    """Modules with per-sequence state that a segment cannot hand over (not snnkit neurons,
    Dropout or RandomShift, but with a ``reset`` method)."""
    known = (BaseNeuron, Recurrent, Dropout, Dropout2d, RandomShift)
    return [
        f"{name} ({type(m).__name__})"
        for name, m in model.named_modules()
        if callable(getattr(m, "reset", None)) and not isinstance(m, known) and name
    ]


def warn_fallbacks(model: nn.Module, mode: str) -> None:
    """Issue :func:`fallback_warnings` as ``UserWarning`` s (one per layer), for input on the
    device of the model's parameters (on CUDA: the Triton kernels, which take no state)."""
    param = next(model.parameters(), None)
    probe = None if param is None else torch.zeros(1, 1, device=param.device)
    for line in fallback_warnings(model, mode, probe):
        warnings.warn(line, UserWarning, stacklevel=3)


class SegmentRunner:
    """``run(x_seg, states) -> (out_seg, states)`` for ``model`` over one time segment.

    ``states`` maps each neuron's (or recurrent layer's) module name to its state (a tuple of
    tensors) or None (the initial state). :attr:`draws` holds the per-sequence random draws;
    :meth:`new_sequence` clears them. :attr:`kernels` maps each of those layers to the kernel
    that ran its last segment (``cpp``: fused from the state; ``reference``: step by step).
    """

    def __init__(
        self, model: nn.Module, *, bits: bool = True, recompute_macs: int = RECOMPUTE_MACS
    ) -> None:
        self.model = model
        self.neurons = _stateful_layers(model)
        self.kernels: dict[str, str] = {}
        self.random = {
            n: m
            for n, m in model.named_modules()
            if isinstance(m, (Dropout, Dropout2d, RandomShift))
        }
        layers = dict(model.named_modules())
        self.binary = {n: layers[n] for n in binary_input_layers(model)} if bits else {}
        self.norm_pairs = norm_neuron_pairs(model, self.binary, recompute_macs)
        self.draws: dict[str, tuple[Tensor, ...]] = {}

    def new_sequence(self) -> None:
        """Forget the random draws: the next segment starts a new sequence."""
        self.draws = {}

    def run(self, x_seg: Tensor, states: States) -> tuple[Tensor, States]:
        """The model's output on ``x_seg [T_seg, B, *]`` and the neuron states after it."""
        for name, neuron in self.neurons.items():
            state = states.get(name)
            neuron.state = state
        with self._patched():
            if getattr(self.model, "step_mode", "m") == "s":
                out = torch.stack([self.model(x) for x in x_seg])
            else:
                out = self.model(x_seg)
        end = {name: n.state for name, n in self.neurons.items()}
        for neuron in self.neurons.values():
            neuron.state = None
        return out, end

    @contextmanager
    def _patched(self) -> Iterator[None]:
        saved: list[nn.Module] = []
        try:
            for name, neuron in self.neurons.items():
                if neuron.step_mode == "m":
                    neuron.forward = _stepped(neuron, name, self.kernels)
                    saved.append(neuron)
            joined: set[int] = set()
            for name, (_, bn, neuron, conv) in self.norm_pairs.items():
                if not bn.training or _hooked(bn):
                    continue
                if conv is not None and _hooked(conv):
                    conv = None
                bn.forward = _passed_on
                saved.append(bn)
                bits = False
                if conv is not None:
                    conv.forward = _passed_on
                    saved.append(conv)
                    joined.add(id(conv))
                    bits = any(conv is m for m in self.binary.values())
                neuron.forward = _normalized_stepped(bn, conv, neuron, name, self.kernels, bits)
            for name, module in self.random.items():
                if module.training and getattr(module, "step_mode", "m") == "m":
                    module.forward = _drawn_once(module, name, self.draws)  # type: ignore[method-assign]
                    saved.append(module)
            for module in self.binary.values():
                if getattr(module, "step_mode", "m") == "m" and id(module) not in joined:
                    module.forward = _bit_stored(module)
                    saved.append(module)
            yield
        finally:
            for patched in saved:
                del patched.forward


def _stepped(neuron: Any, name: str, kernels: dict[str, str]) -> Any:
    """The multi-step forward of a neuron or recurrent layer over one segment from
    ``.state`` (left in ``.state`` after it), recording the kernel that ran."""
    run = run_recurrent if isinstance(neuron, Recurrent) else run_neuron

    def forward(x_seq: Tensor) -> Tensor:
        out, neuron.state, kernels[name] = run(neuron, x_seq, neuron.state)
        return out

    return forward


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _passed_on(x: Tensor) -> Tensor:
    """A paired batch norm's (and convolution's) forward: the neuron after them computes them
    (``_normalized_stepped``)."""
    return x


def _normalized_stepped(
    bn: Any, conv: Any, neuron: Any, name: str, kernels: dict[str, str], bits: bool
) -> Any:
    """:func:`_stepped` for a neuron whose batch norm (and convolution, on spikes when
    ``bits``) pass their input on."""

    def forward(x_seq: Tensor) -> Tensor:
        out, neuron.state, kernels[name] = run_norm_neuron_pair(
            bn, conv, neuron, x_seq, neuron.state, bits
        )
        return out

    return forward


def _drawn_once(module: nn.Module, name: str, draws: dict[str, tuple[Tensor, ...]]) -> Any:
    """The multi-step forward of Dropout / RandomShift with the draw kept in ``draws``."""

    def forward(x: Tensor) -> Tensor:
        if isinstance(module, RandomShift):
            if module.max_shift == 0:
                return x
            if name not in draws:
                k = module.max_shift
                dy, dx = torch.randint(-k, k + 1, (2, x.shape[1]), device=x.device)
                draws[name] = (dy, dx)
            return translate(x, *draws[name])
        if module.p == 0:
            return x
        if name not in draws:
            shape = (1, *module._mask_shape(x.shape[1:]))  # type: ignore[operator]
            draws[name] = (module._new_mask(shape, x),)  # type: ignore[operator]
        return x * draws[name][0]

    return forward


def _bit_stored(module: nn.Module) -> Any:
    def forward(x: Tensor) -> Tensor:
        flat = x.flatten(0, 1)
        if isinstance(module, nn.Linear):
            y = binary_linear(flat, module.weight, module.bias)
        elif isinstance(module, nn.MaxPool2d):
            y = binary_maxpool(flat, module)
        else:
            y = binary_conv(flat, module)
        return y.unflatten(0, x.shape[:2])

    return forward
