"""1-bit storage of spikes: pack a {0, 1} tensor 8 values per byte, and Linear / Conv layers
that save their binary input packed for the weight gradient.

Packing: ``packed[i] = Σ_{j<8} x[8i + j] · 2^j`` (uint8; the tail padded with zeros), so
``unpack_bits(pack_bits(x), x.shape, x.dtype) == x`` exactly for every x with values in {0, 1}.
On the CPU, float32 and float64 tensors are packed and unpacked by the C++ kernel
(``csrc/bitpack.cpp``: one pass each way); elsewhere, and without the kernels, by PyTorch ops
(the same bytes).

:func:`binary_linear` and :func:`binary_conv` compute the same forward and the same gradients
as ``F.linear`` / ``F.conv{1,2}d`` (y = x W^T + b; dL/dx = dL/dy W, dL/dW = dL/dy^T x,
dL/db = Σ dL/dy) but keep x for the backward pass as bits: 1/32 of float32's bytes.
:func:`binary_maxpool` is ``F.max_pool2d`` keeping x as bits instead of x and the int64
indices of the maxima (1/96 of the bytes for a 2×2 pool): backward recomputes the indices from
x (the same input, so the same first maximum of each window) and routes dL/dy to them. They are
exact only for input whose values are all 0 or 1 (spikes): callers use them where the input is
known to come from a spiking neuron.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_SHIFTS = (1, 2, 4, 8, 16, 32, 64, 128)


_MAGIC = 0x0102040810204080
"""(8 bytes b_0..b_7 ∈ {0, 1} of a little-endian int64 v) · _MAGIC >> 56 = Σ b_j 2^j (mod 2^64)."""
_LUTS: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def _pack_slow(flat: Tensor) -> Tensor:
    weights = torch.tensor(_SHIFTS, dtype=torch.uint8, device=flat.device)
    return (flat.to(torch.uint8).view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def _cpu_kernels(t: Tensor, dtype: torch.dtype) -> Any:
    """The C++ kernels when ``t`` is on the CPU and ``dtype`` is float32/float64, else None."""
    if t.device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return None
    from snnkit.kernels.cpu.build import cpu_extension

    return cpu_extension()


def pack_bits(x: Tensor) -> Tensor:
    """``x`` with values in {0, 1} as a flat uint8 tensor of ⌈numel / 8⌉ bytes."""
    ext = _cpu_kernels(x, x.dtype)
    if ext is not None:
        return ext.pack_bits(x.detach().reshape(-1).contiguous())
    flat = x.detach().reshape(-1).ne(0)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    if sys.byteorder != "little":
        return _pack_slow(flat)
    words = flat.view(torch.uint8).view(torch.int64)  # 8 values per word, value j in byte j
    return torch.bitwise_right_shift(words * _MAGIC, 56).to(torch.uint8)


def unpack_bits(packed: Tensor, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """The tensor of ``shape`` and ``dtype`` that :func:`pack_bits` packed."""
    ext = _cpu_kernels(packed, dtype)
    if ext is not None:
        numel = 1
        for size in shape:
            numel *= size
        return ext.unpack_bits(packed, numel, dtype == torch.float64).reshape(shape)
    key = (dtype, packed.device)
    lut = _LUTS.get(key)
    if lut is None:  # row p: the 8 bits of p, least significant first
        codes = torch.arange(256, device=packed.device).unsqueeze(1)
        lut = _LUTS[key] = (codes >> torch.arange(8, device=packed.device) & 1).to(dtype)
    numel = 1
    for size in shape:
        numel *= size
    return lut[packed.long()].reshape(-1)[:numel].reshape(shape)


class _BinaryLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(pack_bits(x), weight)
        ctx.shape, ctx.dtype, ctx.has_bias = x.shape, x.dtype, bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        packed, weight = ctx.saved_tensors
        gx = grad @ weight if ctx.needs_input_grad[0] else None
        gw = gb = None
        if ctx.needs_input_grad[1]:
            x = unpack_bits(packed, ctx.shape, ctx.dtype)
            gw = grad.reshape(-1, grad.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.reshape(-1, grad.shape[-1]).sum(0)
        return gx, gw, gb


class _BinaryConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, conv: torch.nn.Module
    ) -> Tensor:
        ctx.save_for_backward(pack_bits(x), weight)
        ctx.shape, ctx.dtype, ctx.has_bias = x.shape, x.dtype, bias is not None
        ctx.args = (conv.stride, conv.padding, conv.dilation, conv.groups)
        return conv._conv_forward(x, weight, bias)  # type: ignore[operator]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        packed, weight = ctx.saved_tensors
        x = unpack_bits(packed, ctx.shape, ctx.dtype)
        stride, padding, dilation, groups = ctx.args
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad.contiguous(),
            x,
            weight,
            [weight.shape[0]] if ctx.has_bias else None,
            list(stride),
            list(padding),
            list(dilation),
            False,
            [0] * len(stride),
            groups,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias],
        )
        return gx, gw, (gb if ctx.has_bias else None), None


def binary_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)`` saving x as bits (x must hold only 0 and 1)."""
    return _BinaryLinear.apply(x, weight, bias)


def binary_conv(x: Tensor, conv: torch.nn.Module) -> Tensor:
    """``conv(x)`` for an ``nn.Conv1d``/``nn.Conv2d`` with zero padding mode, saving x as bits
    (x must hold only 0 and 1)."""
    return _BinaryConv.apply(x, conv.weight, conv.bias, conv)


_POPCOUNT: dict[torch.device, Tensor] = {}


def popcount(words: Tensor) -> Tensor:
    """The number of set bits in ``words`` (any integer dtype) as a 0-dim int64 tensor.

    On the CPU NumPy's ``bitwise_count`` (one instruction per word); elsewhere
    ``Σ_bytes popcount(byte)``: a histogram of the bytes (``bincount``, 256 bins) dotted with
    the popcount of each byte value — one pass over the data, no host sync.
    """
    if words.device.type == "cpu" and hasattr(np, "bitwise_count"):
        array = words.detach().contiguous().numpy()
        array = array.view(f"u{array.itemsize}")  # unsigned: every bit counts, sign included
        return torch.tensor(int(np.bitwise_count(array).sum(dtype=np.int64)))
    table = _POPCOUNT.get(words.device)
    if table is None:
        table = torch.tensor([bin(i).count("1") for i in range(256)], device=words.device)
        _POPCOUNT[words.device] = table
    data = words.contiguous().view(torch.uint8).reshape(-1)
    return torch.dot(torch.bincount(data, minlength=256), table)


class _BinaryMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, pool: torch.nn.Module) -> Tensor:
        ctx.save_for_backward(pack_bits(x))
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.args = (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)
        return F.max_pool2d(x, *ctx.args)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        (packed,) = ctx.saved_tensors
        x = unpack_bits(packed, ctx.shape, ctx.dtype)
        kernel, stride, padding, dilation, ceil = ctx.args
        _, indices = F.max_pool2d(x, kernel, stride, padding, dilation, ceil, return_indices=True)
        gx = torch.ops.aten.max_pool2d_with_indices_backward(
            grad.contiguous(),
            x,
            _pair(kernel),
            _pair(stride or kernel),
            _pair(padding),
            _pair(dilation),
            ceil,
            indices,
        )
        return gx, None


def _pair(value: Any) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [int(value)] * 2


def binary_maxpool(x: Tensor, pool: torch.nn.Module) -> Tensor:
    """``pool(x)`` for an ``nn.MaxPool2d`` (no ``return_indices``), saving x as bits (x must
    hold only 0 and 1); a 2×2 pool on the CPU runs the C++ pooling kernel instead
    (:mod:`snnkit.kernels.pool`), which saves one byte per output (2 bits per input) and needs no
    recomputation in backward."""
    from snnkit.kernels import pool as pool_kernel

    if isinstance(pool, torch.nn.MaxPool2d) and pool_kernel.fits(pool, x):
        ext = _cpu_kernels(x, x.dtype)
        if ext is not None:
            return pool_kernel.maxpool2(ext, x)
    return _BinaryMaxPool.apply(x, pool)
