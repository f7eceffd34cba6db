"""Spiking VGG: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (ICLR 2015), as a spiking network after Sengupta, Ye, Wang, Liu and Roy, "Going
Deeper in Spiking Neural Networks: VGG and Residual Architectures" (Front. Neurosci. 2019)."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from snnkit.components.models import Build, _build_all
from snnkit.components.zoo.specs import bn, conv, head

#: depth -> channels per conv (multiples of 64 at width 64), "M" a 2x2 max pool
CONFIGS: dict[int, list[int | str]] = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
}


def vgg_specs(
    depth: int, batch_norm: bool, in_channels: int, num_classes: int, width: int, neuron: Any
) -> list[Any]:
    """The layer specs: [conv3×3 (-BN) - neuron]… with max pools, then pool and classifier."""
    specs: list[Any] = []
    c_in = in_channels
    for item in CONFIGS[depth]:
        if item == "M":
            specs.append({"name": "maxpool2d", "kernel_size": 2})
            continue
        c = width * int(item)
        specs.append(conv(c_in, c, 3, 1, 1, bias=not batch_norm))
        if batch_norm:
            specs.append(bn(c))
        specs.append(neuron)
        c_in = c
    return specs + head(c_in, num_classes)


class SpikingVGG(nn.Sequential):
    """Spiking VGG-11 / VGG-16 (Simonyan & Zisserman 2015; spiking: Sengupta et al. 2019).

    Conv3×3 (with ``batch_norm``, conv-BN) then a neuron per layer, five 2×2 max pools
    (inputs of at least 32×32), global average pool and a linear classifier: output
    ``[T, B, num_classes]``. Channels ``width · (1, 2, 4, 8, 8)``. Reference: Sengupta et al.
    report 91.55 % on CIFAR-10 (VGG-16, converted); ``neuron`` is a neuron spec.
    """

    def __init__(
        self,
        build: Build,
        depth: Literal[11, 16] = 11,
        batch_norm: bool = True,
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 64,
        neuron: Any = "lif",
        step_mode: str = "m",
    ) -> None:
        if depth not in CONFIGS:
            raise ValueError(f"depth must be 11 or 16, got {depth!r}")
        if width < 1 or in_channels < 1 or num_classes < 1:
            raise ValueError("width, in_channels and num_classes must be ints >= 1")
        super().__init__()
        specs = vgg_specs(depth, batch_norm, in_channels, num_classes, width, neuron)
        _build_all(self, build, specs, step_mode)
