"""Tensor transforms: torchvision v2 transforms on one sample, plus cutout.

They run on the sample tensor — an image ``[C, H, W]`` (uint8 as stored) or event frames ``[T,
C, H, W]`` (one draw for all T frames) — with torch's global RNG, which the data path seeds
per sample. Each factory returns a :class:`~snnkit.components.transforms.base.TensorTransform`
around torchvision's implementation; only cutout, which torchvision lacks, is snnkit's.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from snnkit.components.transforms.base import TensorTransform

__all__ = [
    "auto_augment",
    "cutout",
    "cutout_box",
    "horizontal_flip",
    "normalize",
    "random_crop",
    "random_erasing",
    "vertical_flip",
]


def _v2() -> Any:
    from torchvision.transforms import v2

    return v2


def _probability(p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"p must satisfy 0 <= p <= 1, got {p!r}")


def random_crop(
    size: int, padding: int = 0, padding_mode: Literal["constant", "edge", "reflect"] = "constant"
) -> TensorTransform:
    """Random size × size crop after padding each border by ``padding`` (v2.RandomCrop).

    Padding is zeros, or ``padding_mode``. CIFAR's standard: size 32, padding 4."""
    if size < 1 or padding < 0:
        raise ValueError(f"size must be >= 1 and padding >= 0, got size={size}, padding={padding}")
    return TensorTransform(
        _v2().RandomCrop(size, padding=padding or None, padding_mode=padding_mode)
    )


def horizontal_flip(p: float = 0.5) -> TensorTransform:
    """Mirror left-right, x' = W − 1 − x, with probability p (v2.RandomHorizontalFlip)."""
    _probability(p)
    return TensorTransform(_v2().RandomHorizontalFlip(p))


def vertical_flip(p: float = 0.5) -> TensorTransform:
    """Mirror top-bottom, y' = H − 1 − y, with probability p (v2.RandomVerticalFlip)."""
    _probability(p)
    return TensorTransform(_v2().RandomVerticalFlip(p))


def normalize(mean: list[float], std: list[float]) -> TensorTransform:
    """Per channel c: x' = (x / s − mean_c) / std_c (v2.ToDtype + v2.Normalize).

    s = 255 for uint8 input and 1 for float. The output is not in [0, 1]: use it with the
    ``direct`` encoder, not ``poisson``."""
    if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
        raise ValueError(f"mean and std need one value per channel, std > 0; got {mean}, {std}")
    v2 = _v2()
    fn = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    return TensorTransform(fn, random=False)


def auto_augment(policy: Literal["cifar10", "imagenet", "svhn"] = "cifar10") -> TensorTransform:
    """AutoAugment (Cubuk et al. 2019) with a learned policy (v2.AutoAugment).

    Needs uint8 images ``[C, H, W]``."""
    v2 = _v2()
    return TensorTransform(v2.AutoAugment(v2.AutoAugmentPolicy(policy)))


def random_erasing(
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
) -> TensorTransform:
    """Random erasing (Zhong et al. 2020): one box set to ``value`` (v2.RandomErasing).

    With probability ``p``, a box of area fraction in ``scale`` and aspect ratio in ``ratio``."""
    _probability(p)
    return TensorTransform(_v2().RandomErasing(p=p, scale=scale, ratio=ratio, value=value))


def cutout_box(x: Tensor, length: int, cy: int, cx: int) -> Tensor:
    """Cutout (DeVries & Taylor 2017): x'[..., i, j] = 0 where |i − cy| ≤ L/2 rounded as
    ``cy − ⌊L/2⌋ <= i < cy − ⌊L/2⌋ + L`` (same for j, cx), clipped to the image; else x."""
    out = x.clone()
    h, w = x.shape[-2:]
    y0, x0 = max(cy - length // 2, 0), max(cx - length // 2, 0)
    y1, x1 = min(cy - length // 2 + length, h), min(cx - length // 2 + length, w)
    out[..., y0:y1, x0:x1] = 0
    return out


class _Cutout:
    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        cy, cx = (int(v) for v in (torch.randint(h, ()), torch.randint(w, ())))
        return cutout_box(x, self.length, cy, cx)

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


def cutout(length: int = 16) -> TensorTransform:
    """Cutout: zero one length × length square at a uniformly drawn centre (see cutout_box)."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    return TensorTransform(_Cutout(length))
