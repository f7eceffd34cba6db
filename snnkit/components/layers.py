"""Stateless layers that accept time-first input: torch modules plus a ``step_mode``.

Contract: ``factory(**params) -> nn.Module`` with ``step_mode``: in ``"m"`` (default) the module
maps ``[T, B, *]`` by running the torch op once over ``[T*B, *]`` (so BatchNorm in training
mode pools its statistics over all T·B samples); in ``"s"`` it maps one step ``[B, *]``. Each
class subclasses its torch module, so parameter and state_dict names are torch's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snnkit.components.functional import check_step_mode
from snnkit.kernels import channels_last_steps
from snnkit.kernels import pool as pool_kernel
from snnkit.kernels.cpu.build import cpu_extension

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "Identity",
    "Linear",
    "MaxPool2d",
    "RandomShift",
    "StepModeMixin",
]

Size2d = int | tuple[int, int]


def _check_sizes(rule: str, minimum: int, **values: Any) -> None:
    """Raise ``ValueError`` unless every int (or int in a tuple) of ``values`` is >= minimum."""
    for name, value in values.items():
        items = value if isinstance(value, (tuple, list)) else (value,)
        if not items or any(not isinstance(v, int) or v < minimum for v in items):
            raise ValueError(f"{name} must be {rule}, got {value!r}")


def _check_probability(p: float) -> None:
    if not 0 <= p < 1:
        raise ValueError(
            f"p must satisfy 0 <= p < 1 (drop probability; kept units are scaled "
            f"by 1/(1 - p)), got {p!r}"
        )


class StepModeMixin:
    """Runs the torch module's ``forward`` once over ``[T*B, *]`` in ``"m"``, as is in ``"s"``.

    Put it first among the bases: ``class Linear(StepModeMixin, nn.Linear)``.
    """

    step_mode: str

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "m":
            if x.dim() < 2:
                raise ValueError(
                    f"{type(self).__name__} in step_mode 'm' expects [T, B, *], "
                    f"got shape {tuple(x.shape)}"
                )
            y = super().forward(x.flatten(0, 1))  # type: ignore[misc]
            return y.unflatten(0, x.shape[:2])
        check_step_mode(self.step_mode)
        return super().forward(x)  # type: ignore[misc]

    def extra_repr(self) -> str:
        base = super().extra_repr()  # type: ignore[misc]
        return f"{base}, step_mode={self.step_mode!r}" if base else f"step_mode={self.step_mode!r}"


class Linear(StepModeMixin, nn.Linear):
    """Affine map y = x W^T + b over the last dimension."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, step_mode: str = "m"
    ) -> None:
        _check_sizes("an int > 0", 1, in_features=in_features, out_features=out_features)
        super().__init__(in_features, out_features, bias=bias)
        self.step_mode = check_step_mode(step_mode)


class Conv1d(StepModeMixin, nn.Conv1d):
    """1-D convolution of [C_in, L] samples (torch.nn.Conv1d)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        step_mode: str = "m",
    ) -> None:
        _check_sizes(
            "an int > 0",
            1,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            dilation=dilation,
            groups=groups,
        )
        _check_sizes("an int >= 0", 0, padding=padding)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.step_mode = check_step_mode(step_mode)


class Conv2d(StepModeMixin, nn.Conv2d):
    """2-D convolution of [C_in, H, W] samples (torch.nn.Conv2d); sizes int or [h, w].

    With ``channels_last`` set (:meth:`use_channels_last`; the assembly does it for plain conv
    nets on the CPU) input and output are in channels-last memory format, the layout oneDNN,
    batch norm and pooling run fastest in; the values are the same.
    """

    channels_last: bool = False

    def use_channels_last(self, on: bool = True) -> None:
        """Run in channels-last memory format (weights included) from now on, or not."""
        self.channels_last = on
        fmt = torch.channels_last if on else torch.contiguous_format
        self.weight.data = self.weight.data.contiguous(memory_format=fmt)

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if not self.channels_last or x.dim() != 4:
            return super()._conv_forward(x, weight, bias)
        cl = torch.channels_last
        y = super()._conv_forward(x.contiguous(memory_format=cl), weight, bias)
        return y.contiguous(memory_format=cl)  # one input channel: oneDNN answers NCHW

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size2d,
        stride: Size2d = 1,
        padding: Size2d = 0,
        dilation: Size2d = 1,
        groups: int = 1,
        bias: bool = True,
        step_mode: str = "m",
    ) -> None:
        _check_sizes(
            "an int > 0 (or a pair of them)",
            1,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            dilation=dilation,
            groups=groups,
        )
        _check_sizes("an int >= 0 (or a pair of them)", 0, padding=padding)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.step_mode = check_step_mode(step_mode)


def _check_batchnorm(num_features: int, eps: float, momentum: float) -> None:
    _check_sizes("an int > 0", 1, num_features=num_features)
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it keeps the variance division finite), got {eps!r}")
    if not 0 <= momentum <= 1:
        raise ValueError(
            f"momentum must be in [0, 1] (running-statistics update weight), got {momentum!r}"
        )


class _StepBatchNorm(StepModeMixin):
    """The shared constructor of the batch-norm layers (checked arguments, step mode)."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "m",
    ) -> None:
        _check_batchnorm(num_features, eps, momentum)
        super().__init__(
            num_features,
            eps=eps,
            momentum=momentum,  # type: ignore[call-arg]
            affine=affine,
            track_running_stats=track_running_stats,
        )
        self.step_mode = check_step_mode(step_mode)


class BatchNorm1d(_StepBatchNorm, nn.BatchNorm1d):
    """Batch normalisation of [C] or [C, L] samples; in "m" statistics span T·B."""


class BatchNorm2d(_StepBatchNorm, nn.BatchNorm2d):
    """Batch normalisation of [C, H, W] samples; in "m" statistics span T·B."""


class MaxPool2d(StepModeMixin, nn.MaxPool2d):
    """2-D max pooling of [C, H, W] samples; stride defaults to kernel_size."""

    def __init__(
        self,
        kernel_size: Size2d,
        stride: Size2d | None = None,
        padding: Size2d = 0,
        dilation: Size2d = 1,
        ceil_mode: bool = False,
        step_mode: str = "m",
    ) -> None:
        _check_sizes(
            "an int > 0 (or a pair of them)",
            1,
            kernel_size=kernel_size,
            dilation=dilation,
            **({} if stride is None else {"stride": stride}),
        )
        _check_sizes("an int >= 0 (or a pair of them)", 0, padding=padding)
        super().__init__(
            kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
        )
        self.step_mode = check_step_mode(step_mode)

    def forward(self, x: Tensor) -> Tensor:
        multi = self.step_mode == "m"
        flat = x.flatten(0, 1) if multi and x.dim() == 5 else x
        if (x.dim() == (5 if multi else 4)) and pool_kernel.fits(self, flat):
            ext = cpu_extension()
            if ext is not None:
                y = pool_kernel.maxpool2(ext, flat)
                return y.unflatten(0, x.shape[:2]) if multi else y
        return super().forward(x)


class AvgPool2d(StepModeMixin, nn.AvgPool2d):
    """2-D average pooling of [C, H, W] samples; stride defaults to kernel_size."""

    def __init__(
        self,
        kernel_size: Size2d,
        stride: Size2d | None = None,
        padding: Size2d = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        step_mode: str = "m",
    ) -> None:
        _check_sizes(
            "an int > 0 (or a pair of them)",
            1,
            kernel_size=kernel_size,
            **({} if stride is None else {"stride": stride}),
        )
        _check_sizes("an int >= 0 (or a pair of them)", 0, padding=padding)
        super().__init__(
            kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
        )
        self.step_mode = check_step_mode(step_mode)


class AdaptiveAvgPool2d(StepModeMixin, nn.AdaptiveAvgPool2d):
    """Average pooling of [C, H, W] samples to a fixed output_size (int or [h, w])."""

    def __init__(self, output_size: Size2d, step_mode: str = "m") -> None:
        _check_sizes("an int > 0 (or a pair of them)", 1, output_size=output_size)
        super().__init__(output_size)
        self.step_mode = check_step_mode(step_mode)


class Flatten(nn.Flatten):
    """Flattens each sample to a vector: [T, B, *] -> [T, B, F] in "m", [B, *] -> [B, F] in "s"."""

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__(start_dim=1, end_dim=-1)
        self.step_mode = check_step_mode(step_mode)

    def forward(self, x: Tensor) -> Tensor:
        # flatten(2) keeps T and B without the [T*B] round trip (a view for contiguous input).
        if self.step_mode == "m":
            if x.requires_grad and channels_last_steps(x):
                return _FlattenChannelsLast.apply(x)
            return x.flatten(2)
        return x.flatten(1)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}"


class _FlattenChannelsLast(torch.autograd.Function):
    """``x.flatten(2)`` of channels-last steps, whose gradient is handed back channels-last,
    the layout of the layers before (max pooling's backward converts both of its inputs
    otherwise)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.shape = x.shape
        return x.flatten(2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        g = grad.reshape(ctx.shape).flatten(0, 1).contiguous(memory_format=torch.channels_last)
        return g.unflatten(0, ctx.shape[:2])


class _SharedMaskDropout:
    """Inverted dropout whose mask is drawn once per sample and reused at every time step.

    "m": the mask is sampled on ``[1, B, *mask dims]`` and broadcast over T. "s": it is drawn
    at the first step and kept until ``reset()``. Kept units are scaled by 1/(1 - p); in eval
    mode (or with p = 0) the layer is the identity.
    """

    p: float
    _mask: Tensor | None
    step_mode: str
    training: bool

    def _mask_shape(self, step: torch.Size) -> tuple[int, ...]:
        """Mask shape for one step's input shape ``[B, *]``."""
        raise NotImplementedError

    def _new_mask(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        keep = 1.0 - self.p
        return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep).div_(keep)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if self.step_mode == "m":
            mask = self._new_mask((1, *self._mask_shape(x.shape[1:])), x)
            return x * mask
        shape = self._mask_shape(x.shape)
        if self._mask is None:
            self._mask = self._new_mask(shape, x)
        mask = self._mask
        if mask.shape != shape:
            raise RuntimeError(
                f"{type(self).__name__}: the kept mask has shape {tuple(mask.shape)}"
                f" but this step needs {shape}; call reset() between sequences"
            )
        return x * mask.to(x.dtype)

    def reset(self) -> None:
        """Forget the single-step mask; the next step draws a new one."""
        self._mask = None


class Dropout(_SharedMaskDropout, nn.Dropout):
    """Element-wise inverted dropout with one mask per sample shared by all T steps."""

    def __init__(self, p: float = 0.5, step_mode: str = "m") -> None:
        _check_probability(p)
        super().__init__(p=p)
        self.step_mode = check_step_mode(step_mode)
        self.reset()

    def _mask_shape(self, step: torch.Size) -> tuple[int, ...]:
        return tuple(step)

    def extra_repr(self) -> str:
        return f"p={self.p}, step_mode={self.step_mode!r}"


class Dropout2d(_SharedMaskDropout, nn.Dropout2d):
    """Channel-wise inverted dropout (whole [H, W] maps) with one mask per sample over T."""

    def __init__(self, p: float = 0.5, step_mode: str = "m") -> None:
        _check_probability(p)
        super().__init__(p=p)
        self.step_mode = check_step_mode(step_mode)
        self.reset()

    def _mask_shape(self, step: torch.Size) -> tuple[int, ...]:
        if len(step) < 3:
            raise ValueError(f"Dropout2d expects [B, C, H, W] per step, got {tuple(step)}")
        return (step[0], step[1], *([1] * (len(step) - 2)))

    def extra_repr(self) -> str:
        return f"p={self.p}, step_mode={self.step_mode!r}"


def translate(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Shift each sample's image: ``out[..., b, c, h, w] = x[..., b, c, h − dy_b, w − dx_b]``,
    zeros where that falls outside. ``x`` is ``[*, B, C, H, W]``; ``dy``, ``dx`` are int ``[B]``.
    """
    *lead, B, C, H, W = x.shape
    k = int(max(dy.abs().max(), dx.abs().max())) if B else 0
    xp = nn.functional.pad(x, (k, k, k, k))
    ones = [1] * len(lead)
    rows = (torch.arange(H, device=x.device) - dy.view(B, 1) + k).view(*ones, B, 1, H, 1)
    xh = xp.gather(-2, rows.expand(*lead, B, C, H, W + 2 * k))
    cols = (torch.arange(W, device=x.device) - dx.view(B, 1) + k).view(*ones, B, 1, 1, W)
    return xh.gather(-1, cols.expand(*lead, B, C, H, W))


class RandomShift(nn.Module):
    """Data augmentation: translate each image by up to ``max_shift`` pixels while training.

    Shifts dy, dx are drawn uniformly from {−max_shift, ..., max_shift} per sample (torch's
    global RNG) and are the same at every time step of that sample (:func:`translate`; zeros fill
    the border). Identity in eval mode. In "s" the shifts drawn at the first step are kept until
    ``reset()``. Samples are [C, H, W].
    """

    def __init__(self, max_shift: int = 2, step_mode: str = "m") -> None:
        super().__init__()
        _check_sizes("an int >= 0", 0, max_shift=max_shift)
        self.max_shift = max_shift
        self.step_mode = check_step_mode(step_mode)
        self.reset()

    def reset(self) -> None:
        self._shifts: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.max_shift == 0:
            return x
        batch_dim = 1 if self.step_mode == "m" else 0
        if x.dim() != batch_dim + 4:
            raise ValueError(
                f"RandomShift expects [{'T, ' if batch_dim else ''}B, C, H, W], "
                f"got shape {tuple(x.shape)}"
            )
        B = x.shape[batch_dim]
        if self.step_mode == "m" or self._shifts is None:
            k = self.max_shift
            dy, dx = torch.randint(-k, k + 1, (2, B), device=x.device)
            self._shifts = (dy, dx) if self.step_mode == "s" else None
        else:
            dy, dx = self._shifts
        return translate(x, dy, dx)

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, step_mode={self.step_mode!r}"


class Identity(nn.Identity):
    """Returns its input unchanged (a placeholder in layer lists)."""

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode = check_step_mode(step_mode)

    def forward(self, x: Tensor) -> Tensor:
        return x
