"""Batch norm followed by a fused neuron, over one time segment, keeping only batch norm's input.

In a segment, ``y = BN(x)`` feeds a neuron that the fused CPU kernel runs from the handed-over
state. Run as two layers, autograd keeps ``x`` for batch norm's backward and ``y`` for the
neuron's: two float32 values per element, most of a segment step's memory in a conv net. Run
as one (:func:`run_norm_neuron`), only ``x`` is kept; the backward recomputes
``y = BN(x)`` with the same operation and batch statistics (``aten.native_batch_norm`` in
training mode, the operator the layer's own call reaches, on copies of the running statistics:
the same ``y``, bit for bit), then runs the neuron's fused backward pass on it (no forward
recompute of the neuron: the kernel's backward recomputes H itself) and batch norm's backward
(``aten.native_batch_norm_backward``, then ``aten.convolution_backward`` for a joined
convolution: the operators autograd would call, here without building a graph, so the
recomputed values are working memory of this one backward step, freed as soon as used, not
activations kept)::

    forward:  y = BN_train(x) (running statistics updated once);  S, V_end = neuron(y; V_init)
    backward: y = BN_train(x) again;  (dL/dy, dL/dV_init) = neuron backward;
              (dL/dx, dL/dγ, dL/dβ) = BN backward(dL/dy)

The gradients are those of the two layers run apart (tested equal). It costs one more batch
norm forward per segment. Pairs are a training-mode ``BatchNorm1d/2d`` in step mode ``'m'``
without hooks directly followed, in an ``nn.Sequential``, by a neuron the fused kernel runs with
no learnable parameter of its own (:func:`norm_neuron_pairs`); others run as two layers. A
convolution before the batch norm with fewer input than output channels whose input is not
spikes (the first layer of a conv net on direct input: 3 channels in, 64 out) joins the pair:
its input, which it keeps anyway for its weight gradient, is then all that is kept, and the
backward recomputes the convolution too (cheap for so few input channels). A convolution whose
input is spikes joins when recomputing it costs at most ``train.recompute_macs`` multiply-adds
per float32 value it saves (default :data:`RECOMPUTE_MACS`, ``C_in · k_h · k_w ≤ 1152``: 3×3
kernels on up to 128 channels); its input is then kept as bits (:mod:`snnkit.kernels.bitpack`),
as it would be apart, and its float32 output is not kept at all. Only convolutions padded with
zeros by a number join (the backward calls the convolution operator itself). In a VGG-11 at
width 64 these are the second and third convolutions: a quarter of the network's
multiply-adds, recomputed once, for 57 % of the float32 values a segment step would keep.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from typing import Any, TypeGuard

import torch
from torch import Tensor, nn

from snnkit.components.neuron_base import BaseNeuron
from snnkit.kernels.bitpack import pack_bits, unpack_bits

#: The most multiply-adds per float32 value saved at which a convolution on spikes joins its
#: batch norm + neuron pair (recomputed in backward from its 1-bit input): ``C_in · k_h · k_w``;
#: the default of ``train.recompute_macs``.
RECOMPUTE_MACS = 1152

Pair = tuple[str, Any, Any, Any]
"""``(batch norm name, batch norm, neuron, convolution before the batch norm or None)``."""


def norm_neuron_pairs(
    model: nn.Module, binary: Iterable[str] = (), recompute_macs: int = RECOMPUTE_MACS
) -> dict[str, Pair]:
    """``{neuron name: Pair}`` for each batch norm directly followed by a neuron among the
    children of an ``nn.Sequential`` ``model``, with the convolution before the batch norm when
    keeping its input costs less than keeping its output: fewer input than output channels when
    its input is not spikes, ``C_in · k_h · k_w ≤ recompute_macs`` when it is (one of the layers
    in ``binary``, whose input is then kept as bits)."""
    if not isinstance(model, nn.Sequential):
        return {}
    binary = set(binary)
    pairs: dict[str, Pair] = {}
    children = list(model.named_children())
    for i, ((bn_name, bn), (name, neuron)) in enumerate(itertools.pairwise(children)):
        if (
            isinstance(bn, nn.modules.batchnorm._BatchNorm)
            and getattr(bn, "step_mode", "s") == "m"
            and isinstance(neuron, BaseNeuron)
            and getattr(neuron, "step_mode", "s") == "m"
            and not any(True for _ in neuron.parameters())
        ):
            conv = None
            if i > 0:
                conv_name, before = children[i - 1]
                if _joins(before, conv_name in binary, recompute_macs):
                    conv = before
            pairs[name] = (bn_name, bn, neuron, conv)
    return pairs


def _joins(conv: nn.Module, spikes_in: bool, recompute_macs: int) -> bool:
    """Whether ``conv`` is recomputed in its pair's backward rather than keeping its output
    (only a convolution :func:`_conv_backward` runs: numeric padding with zeros)."""
    if not _direct_conv(conv) or getattr(conv, "step_mode", "s") != "m":
        return False
    if not spikes_in:
        return conv.in_channels < conv.out_channels
    return conv.in_channels * math.prod(conv.kernel_size) <= recompute_macs


class _NormNeuron(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x_seq: Tensor,
        v_init: Tensor | None,
        weight: Tensor | None,
        bias: Tensor | None,
        conv_weight: Tensor | None,
        conv_bias: Tensor | None,
        bn: Any,
        conv: Any,
        segment: Any,
        bits: bool,
    ) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            z = x_seq if conv is None else type(conv).forward(conv, x_seq)
            y = type(bn).forward(bn, z)  # the layer's own call: running statistics updated
            out, v_end = segment.forward(y, v_init)
        kept = pack_bits(x_seq) if bits else x_seq
        ctx.save_for_backward(kept, v_init, weight, bias)
        ctx.bn, ctx.conv, ctx.segment = bn, conv, segment
        ctx.input_form = (x_seq.shape, x_seq.dtype) if bits else None
        return out, v_end

    @staticmethod
    def backward(ctx: Any, g_out: Tensor | None, g_vend: Tensor | None) -> tuple[Any, ...]:
        kept, v_init, weight, bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        conv = ctx.conv
        x_seq = kept if ctx.input_form is None else unpack_bits(kept, *ctx.input_form)
        bn = ctx.bn
        with torch.no_grad():
            z = x_seq if conv is None else type(conv).forward(conv, x_seq)
            flat = z.flatten(0, 1)
            rm, rv = _statistics_copies(bn)
            momentum = 0.0 if bn.momentum is None else bn.momentum
            y, mean, invstd = torch.ops.aten.native_batch_norm(
                flat, weight, bias, rm, rv, True, momentum, bn.eps
            )
            gy, gv0 = ctx.segment.backward(y.unflatten(0, z.shape[:2]), v_init, g_out, g_vend)
            del y
            want_z = need[0] or conv is not None
            gz, gw, gb = torch.ops.aten.native_batch_norm_backward(
                gy.flatten(0, 1).contiguous(memory_format=_layout(flat)),
                flat,
                weight,
                rm,
                rv,
                mean,
                invstd,
                True,
                bn.eps,
                [want_z, weight is not None and need[2], bias is not None and need[3]],
            )
            del gy, flat, z
            gx = gcw = gcb = None
            if conv is not None and gz is not None:
                gx, gcw, gcb = _conv_backward(
                    conv, x_seq.flatten(0, 1), gz, need[0], need[4], need[5]
                )
            elif conv is None:
                gx = gz
            if gx is not None:
                gx = gx.unflatten(0, x_seq.shape[:2])
        gv0 = gv0 if need[1] and v_init is not None else None
        return gx, gv0, gw, gb, gcw, gcb, *(None,) * 4


def _statistics_copies(bn: Any) -> tuple[Tensor | None, Tensor | None]:
    """Copies of ``bn``'s running statistics: the normalisation takes the code path of the
    layer's own call without updating the layer."""
    rm = None if bn.running_mean is None else bn.running_mean.clone()
    rv = None if bn.running_var is None else bn.running_var.clone()
    return rm, rv


def _layout(t: Tensor) -> torch.memory_format:
    if (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    ):
        return torch.channels_last
    return torch.contiguous_format


def _direct_conv(conv: nn.Module) -> TypeGuard[nn.Conv1d | nn.Conv2d]:
    """Whether :func:`_conv_backward` runs ``conv``'s backward (numeric padding, zeros)."""
    return (
        isinstance(conv, (nn.Conv1d, nn.Conv2d))
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
    )


def _conv_backward(
    conv: Any, x: Tensor, gz: Tensor, want_x: bool, want_w: bool, want_b: bool
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(dL/dx, dL/dW, dL/db)`` of ``z = conv(x)`` over ``[N, C, *]`` given ``dL/dz``: the
    operator autograd's convolution backward calls, in the layout the forward ran in."""
    if getattr(conv, "channels_last", False) and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
        gz = gz.contiguous(memory_format=torch.channels_last)
    bias = None if conv.bias is None else list(conv.bias.shape)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        gz,
        x,
        conv.weight,
        bias,
        list(conv.stride),
        list(conv.padding),
        list(conv.dilation),
        False,
        [0] * len(conv.stride),
        conv.groups,
        [want_x, want_w, want_b and conv.bias is not None],
    )
    return gx, gw, gb


def run_norm_neuron(
    bn: Any,
    conv: Any,
    x_seq: Tensor,
    v_init: Tensor | None,
    segment: Any,
    bits: bool = False,
) -> tuple[Tensor, Tensor]:
    """``segment.forward(BN(conv(x_seq)), v_init) -> (spikes, V_end)`` (``conv`` None: no
    convolution; ``v_init`` None: v0 everywhere, the neuron's start), keeping only ``x_seq``
    (as bits when ``bits``: spikes into ``conv``) and ``v_init`` for the backward pass, which
    calls ``segment.backward(y, v_init or None, dL/dS, dL/dV_end) -> (dL/dy, dL/dV_init)``, the
    neuron's fused backward, between the recomputed normalisation (and convolution) and their
    backward."""
    conv_w = None if conv is None else conv.weight
    conv_b = None if conv is None else conv.bias
    return _NormNeuron.apply(
        x_seq,
        v_init,
        bn.weight,
        bn.bias,
        conv_w,
        conv_b,
        bn,
        conv,
        segment,
        bits and conv is not None,
    )
