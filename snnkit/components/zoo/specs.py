"""Layer-spec helpers shared by the zoo: the same mappings a recipe would write."""

from __future__ import annotations

from typing import Any


def conv(
    c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = False
) -> dict[str, Any]:
    """A ``conv2d`` spec."""
    return {
        "name": "conv2d",
        "in_channels": c_in,
        "out_channels": c_out,
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "bias": bias,
    }


def bn(channels: int) -> dict[str, Any]:
    """A ``batchnorm2d`` spec."""
    return {"name": "batchnorm2d", "num_features": channels}


def head(channels: int, num_classes: int) -> list[Any]:
    """Global average pool, flatten, linear classifier: ``[C, H, W] -> [num_classes]``."""
    return [
        {"name": "adaptive_avgpool2d", "output_size": 1},
        "flatten",
        {"name": "linear", "in_features": channels, "out_features": num_classes},
    ]
