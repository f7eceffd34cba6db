"""SEW-ResNet: Fang, Yu, Chen, Huang, Masquelier and Tian, "Deep Residual Learning in Spiking
Neural Networks", NeurIPS 2021 (arXiv 2102.04159)."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from snnkit.components.models import Build, _build_all
from snnkit.components.zoo.specs import bn, conv, head

#: depth -> (block kind, blocks per stage), as torchvision's ResNets
DEPTHS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
}


def sew_resnet_specs(
    depth: int,
    stem: str,
    connect: str,
    in_channels: int,
    num_classes: int,
    width: int,
    neuron: Any,
) -> list[Any]:
    """The layer specs of a SEW-ResNet (stem, residual blocks, average pool and classifier)."""
    kind, counts = DEPTHS[depth]
    if stem == "imagenet":
        specs: list[Any] = [conv(in_channels, width, 7, 2, 3), bn(width), neuron]
        specs.append({"name": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1})
    else:
        specs = [conv(in_channels, width, 3, 1, 1), bn(width), neuron]
    c_in = width
    for stage, count in enumerate(counts):
        c = width * 2**stage
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            if kind == "basic":
                c_out = c
                body = [
                    conv(c_in, c, 3, stride, 1),
                    bn(c),
                    neuron,
                    conv(c, c, 3, 1, 1),
                    bn(c),
                    neuron,
                ]
            else:
                c_out = 4 * c
                body = [
                    conv(c_in, c, 1), bn(c), neuron,
                    conv(c, c, 3, stride, 1), bn(c), neuron,
                    conv(c, c_out, 1), bn(c_out), neuron,
                ]  # fmt: skip
            shortcut = None
            if stride != 1 or c_in != c_out:  # SEW's downsample: conv-BN-SN, so S is spikes
                shortcut = [conv(c_in, c_out, 1, stride), bn(c_out), neuron]
            specs.append(
                {"name": "residual", "connect": connect, "body": body, "shortcut": shortcut}
            )
            c_in = c_out
    return specs + head(c_in, num_classes)


class SEWResNet(nn.Sequential):
    """SEW-ResNet (Fang et al., NeurIPS 2021): spike-element-wise residual blocks.

    Each block is ``g(SN(BN(conv(...))), shortcut(x))`` with the connect function ``g`` of
    :mod:`snnkit.components.connect` (``add``, ``and``, ``iand``; ADD and IAND are the paper's
    best). ``depth`` 18 / 34 (basic blocks) or 50 (bottlenecks, expansion 4); ``stem``
    ``cifar`` (3×3 conv, stride 1) or ``imagenet`` (7×7 stride 2 conv and 3×3 max pool);
    stage widths ``width · (1, 2, 4, 8)``; a downsampling shortcut is conv1×1-BN-SN. Output:
    the linear classifier's values ``[T, B, num_classes]`` (average them over T, e.g. with
    ``ce_rate``). Reference: SEW-ResNet-34 (ADD) 67.04 % and SEW-ResNet-50 (ADD) 67.78 % top-1
    on ImageNet at T = 4 (the paper's Table 3). ``neuron`` is a neuron spec (the paper: IF
    with ATan surrogate and detached reset).
    """

    def __init__(
        self,
        build: Build,
        depth: Literal[18, 34, 50] = 18,
        stem: Literal["cifar", "imagenet"] = "cifar",
        connect: Literal["add", "and", "iand"] = "add",
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 64,
        neuron: Any = "if",
        step_mode: str = "m",
    ) -> None:
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of 18, 34, 50, got {depth!r}")
        if width < 1 or in_channels < 1 or num_classes < 1:
            raise ValueError("width, in_channels and num_classes must be ints >= 1")
        super().__init__()
        specs = sew_resnet_specs(depth, stem, connect, in_channels, num_classes, width, neuron)
        _build_all(self, build, specs, step_mode)
