"""2×2 max pooling with the C++ kernel (``spike_pool.cpp``), channels-last or NCHW.

``y[m, c, i, j] = max(x[m, c, 2i + dh, 2j + dw] for dh, dw in (0, 1)²)`` with torch's choice of
maximum (the first in ``(dh, dw)`` order; a NaN wins). The same values and gradients as
``torch.nn.functional.max_pool2d(x, 2)`` (exactly: backward is ``0 + dL/dy`` at each window's
maximum and 0 elsewhere), but the argmax is saved as one byte per output instead of an int64
index, and the backward writes the input gradient in one pass instead of zero-filling it and
scattering into it; outputs come from the kernels' buffer pool. A channels-last map runs as its
NHWC view; a contiguous NCHW one as ``N·C`` maps of one channel. Used by
:class:`~snnkit.components.layers.MaxPool2d` and by the memory modes' 1-bit pooling
(:func:`~snnkit.kernels.bitpack.binary_maxpool`) where :func:`fits` holds: the pooling layers of
convolutional SNNs on the CPU.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn


def fits(module: nn.MaxPool2d, x: Tensor) -> bool:
    """Whether ``module`` on ``x [M, C, H, W]`` is the kernel's case: kernel 2, stride 2, no
    padding, dilation 1, floor mode, no indices returned, a channels-last or contiguous
    float32/float64 CPU map with H, W ≥ 2."""
    return (
        x.dim() == 4
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and _pair(module.kernel_size) == (2, 2)
        and _pair(module.stride if module.stride is not None else module.kernel_size) == (2, 2)
        and _pair(module.padding) == (0, 0)
        and _pair(module.dilation) == (1, 1)
        and not module.ceil_mode
        and not module.return_indices
        and x.shape[2] >= 2
        and x.shape[3] >= 2
        and (x.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous())
    )


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _MaxPool2(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x_nhwc: Tensor, ext: ModuleType) -> Tensor:
        y, idx = ext.maxpool2_forward(x_nhwc)
        ctx.save_for_backward(idx)
        ctx.ext, ctx.hw = ext, (x_nhwc.shape[1], x_nhwc.shape[2])
        ctx.mark_non_differentiable(idx)
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor, None]:
        (idx,) = ctx.saved_tensors
        h, w = ctx.hw
        return ctx.ext.maxpool2_backward(gy.contiguous(), idx, h, w), None


def maxpool2(ext: ModuleType, x: Tensor) -> Tensor:
    """``max_pool2d(x, 2)`` of ``x [M, C, H, W]`` (:func:`fits`), in ``x``'s layout."""
    m, c, h, w = x.shape
    if x.is_contiguous():  # NCHW: M·C maps of one channel
        y = _MaxPool2.apply(x.view(m * c, h, w, 1), ext)
        return y.view(m, c, h // 2, w // 2)
    y = _MaxPool2.apply(x.permute(0, 2, 3, 1), ext)
    return y.permute(0, 3, 1, 2)
