"""How each snnkit layer and neuron becomes NIR nodes (the export side of the mapping).

:class:`_Exporter` turns one stage of a sequential model into nodes: linear/affine, conv
(with a following batch norm folded in), pooling (max pooling of spikes as SumPool2d →
Threshold(0.5)), flatten, and the neurons IF, LIF/PLIF, CubaLIF and LI with the equations
listed in :mod:`snnkit.interop`. Lossy mappings go through ``lossy`` (an error under strict
export); inexpressible layers raise :class:`~snnkit.errors.SnnkitError` naming the layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit.components import neurons as N
from snnkit.components.delays import DCLSDelay, Delay
from snnkit.components.recurrent import Recurrent
from snnkit.errors import SnnkitError
from snnkit.interop.recurrent import export_recurrent

#: Neurons whose dynamics NIR has no node for.
_INEXPRESSIBLE = (N.QIF, N.EIF, N.Izhikevich, N.ALIF)


class _Exporter:
    """Collects NIR nodes and warnings for one model."""

    def __init__(self, nir: Any, dt: float, strict: bool) -> None:
        self.nir, self.dt, self.strict = nir, dt, strict
        self.nodes: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.surrogates: list[str] = []

    def lossy(self, message: str) -> None:
        if self.strict:
            raise SnnkitError(f"{message} (refused under strict export)")
        self.warnings.append(message)

    def add(self, name: str, kind: str, node: Any) -> None:
        self.nodes[f"{name.replace('.', '_')}_{kind}"] = node

    def finish(self) -> list[str]:
        if self.surrogates:
            self.warnings.append(
                "surrogate gradients are not part of NIR (they only shape training): "
                + ", ".join(self.surrogates)
                + "; snnkit.interop.load gives every neuron a fresh Sigmoid()"
            )
        return self.warnings

    # -- one stage --------------------------------------------------------------------------
    def layer(
        self,
        name: str,
        module: nn.Module,
        shape_in: tuple[int, ...],
        shape_out: tuple[int, ...],
        binary: bool,
        follower: nn.Module | None,
    ) -> bool:
        """Add the nodes for ``module``; True when it folded the following batch norm."""
        where = f"export: layer {name} ({type(module).__name__})"
        nir = self.nir
        if isinstance(module, N.BaseNeuron):
            self.neuron(where, name, module, shape_out)
            return False
        if isinstance(module, Recurrent):
            self.add(name, "recurrent", export_recurrent(self, name, module, shape_out))
            return False
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            weight = module.weight.detach().double()
            bias = None if module.bias is None else module.bias.detach().double()
            folded = isinstance(follower, (nn.BatchNorm1d, nn.BatchNorm2d))
            if folded and isinstance(follower, nn.modules.batchnorm._BatchNorm):
                weight, bias = _fold_batchnorm(where, weight, bias, follower)
                self.warnings.append(
                    f"layer {name}: the batch norm after it was folded into its weights and bias "
                    "(running statistics, eval mode); load() returns the folded layer"
                )
            dtype = module.weight.dtype
            w = weight.to(dtype).numpy()
            b = None if bias is None else bias.to(dtype).numpy()
            if isinstance(module, nn.Linear):
                node = nir.Linear(weight=w) if b is None else nir.Affine(weight=w, bias=b)
                self.add(name, "linear" if b is None else "affine", node)
                return folded
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise SnnkitError(
                    f"{where}: only explicit zero padding maps to NIR, got "
                    f"padding={module.padding!r}, "
                    f"padding_mode={module.padding_mode!r}"
                )
            if b is None:
                b = np.zeros(w.shape[0], dtype=w.dtype)
            if isinstance(module, nn.Conv1d):
                node = nir.Conv1d(
                    input_shape=int(shape_in[1]),
                    weight=w,
                    stride=module.stride[0],
                    padding=module.padding[0],
                    dilation=module.dilation[0],
                    groups=module.groups,
                    bias=b,
                )
            else:
                node = nir.Conv2d(
                    input_shape=tuple(shape_in[1:]),
                    weight=w,
                    stride=tuple(module.stride),
                    padding=tuple(module.padding),
                    dilation=tuple(module.dilation),
                    groups=module.groups,
                    bias=b,
                )
            self.add(name, "conv", node)
            return folded
        if isinstance(module, nn.MaxPool2d):
            self.maxpool(where, name, module, shape_out, binary)
            return False
        if isinstance(module, nn.AvgPool2d):
            if module.ceil_mode or module.divisor_override is not None:
                raise SnnkitError(
                    f"{where}: NIR's AvgPool2d has no ceil_mode or divisor_override "
                    "— use ceil_mode: false"
                )
            padding = _pair(module.padding)
            if any(padding):
                if not module.count_include_pad:
                    raise SnnkitError(
                        f"{where}: NIR's AvgPool2d counts padded zeros; "
                        "count_include_pad: false cannot be exported — use "
                        "padding 0 or count_include_pad: true"
                    )
                self.warnings.append(
                    f"layer {name}: NIR does not say whether AvgPool2d padding "
                    "counts in the average; snnkit writes and reads "
                    "count_include_pad=True"
                )
            kernel = _pair(module.kernel_size)
            stride = _pair(module.stride if module.stride is not None else module.kernel_size)
            self.add(
                name,
                "avgpool",
                nir.AvgPool2d(
                    kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding)
                ),
            )
            return False
        if isinstance(module, nn.AdaptiveAvgPool2d):
            (ih, iw), (oh, ow) = shape_in[1:], shape_out[1:]
            if ih % oh or iw % ow:
                raise SnnkitError(
                    f"{where}: input {ih}x{iw} is not a multiple of the output "
                    f"{oh}x{ow}, so it is no fixed-window pooling NIR can express — "
                    "use avgpool2d with an explicit kernel_size"
                )
            window = np.array([ih // oh, iw // ow])
            self.add(
                name,
                "avgpool",
                nir.AvgPool2d(kernel_size=window, stride=window.copy(), padding=np.array([0, 0])),
            )
            return False
        if isinstance(module, nn.Flatten):
            self.add(
                name,
                "flatten",
                nir.Flatten(input_type={"input": np.array(shape_in)}, start_dim=0, end_dim=-1),
            )
            return False
        if isinstance(module, (nn.Dropout, nn.Dropout2d)):
            if module.p > 0:
                self.warnings.append(
                    f"layer {name}: dropout (p={module.p}) is the identity at "
                    "inference and is left out of the graph"
                )
            return False
        if isinstance(module, nn.Identity):
            return False
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise SnnkitError(
                f"{where}: NIR has no batch norm and this one does not directly "
                "follow a linear or convolution layer it could be folded into — "
                "move it right after one"
            )
        if isinstance(module, (Delay, DCLSDelay)):
            raise SnnkitError(
                f"{where}: synaptic delays are not exported to NIR (a per-channel or learned "
                "per-synapse delay of whole steps has no node there) — export a model "
                "without delay layers"
            )
        raise SnnkitError(
            f"{where}: no NIR counterpart for this layer — NIR export supports "
            "linear, conv1d, conv2d, batchnorm (folded), maxpool2d (on spikes), "
            "avgpool2d, adaptive_avgpool2d, flatten, dropout, identity, residual blocks "
            "(add, spiking, membrane), added branches and the neurons if, lif, plif, "
            "cuba_lif, li"
        )

    def maxpool(
        self, where: str, name: str, module: nn.MaxPool2d, shape_out: tuple[int, ...], binary: bool
    ) -> None:
        """Max pooling of 0/1 spikes is SumPool2d followed by Threshold(0.5), exactly."""
        if not binary:
            raise SnnkitError(
                f"{where}: NIR has no max pooling; snnkit writes it as SumPool2d → "
                "Threshold(0.5), which equals max pooling only on 0/1 spikes, and "
                "this layer's input is not the output of a spiking neuron — put it "
                "after a spiking neuron, or use avgpool2d"
            )
        if _pair(module.dilation) != (1, 1) or module.ceil_mode:
            raise SnnkitError(
                f"{where}: NIR pooling has no dilation or ceil_mode — use "
                "dilation: 1 and ceil_mode: false"
            )
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        self.add(
            name,
            "sumpool",
            self.nir.SumPool2d(
                kernel_size=np.array(kernel),
                stride=np.array(stride),
                padding=np.array(_pair(module.padding)),
            ),
        )
        self.add(name, "threshold", self.nir.Threshold(threshold=np.full(shape_out, 0.5)))

    def neuron(self, where: str, name: str, module: N.BaseNeuron, shape: tuple[int, ...]) -> None:
        nir, dt = self.nir, self.dt
        if isinstance(module, _INEXPRESSIBLE) or not isinstance(
            module, (N.IF, N.LIF, N.PLIF, N.CubaLIF, N.LI)
        ):
            raise SnnkitError(
                f"{where}: NIR has no {type(module).__name__} neuron (it expresses "
                "IF, LIF, CubaLIF and LI) — replace this layer with one of if, lif, "
                "plif, cuba_lif, li to export the model"
            )

        def full(value: float) -> np.ndarray:
            return np.full(shape, float(value), dtype=np.float64)

        if isinstance(module, N.LI):
            self.add(name, "li", nir.LI(tau=full(module.tau * dt), r=full(1.0), v_leak=full(0.0)))
            return
        assert isinstance(module, N.SpikingNeuron)
        self.surrogates.append(f"layer {name} {_describe(module.surrogate)}")
        if module.v_reset is None:
            self.lossy(
                f"layer {name} ({type(module).__name__}): soft reset (V = H − V_th·S) "
                "does not exist in NIR; exported as a hard reset to 0, so spikes after "
                "the first one can differ"
            )
        if module.detach_reset:
            self.warnings.append(
                f"layer {name}: detach_reset only changes gradients and is not part of NIR; dropped"
            )
        rest = 0.0 if module.v_reset is None else module.v_reset
        v_th, v_reset = full(module.v_threshold), full(rest)
        if isinstance(module, N.IF):
            self.add(name, "if", nir.IF(r=full(1.0 / dt), v_threshold=v_th, v_reset=v_reset))
        elif isinstance(module, N.CubaLIF):
            self.add(
                name,
                "cubalif",
                nir.CubaLIF(
                    tau_syn=full(module.tau_syn * dt),
                    tau_mem=full(module.tau_mem * dt),
                    r=full(1.0),
                    v_leak=full(rest),
                    v_threshold=v_th,
                    v_reset=v_reset,
                    w_in=full(module.tau_syn),
                ),
            )
        else:  # LIF or PLIF
            tau = module.tau
            if isinstance(module, N.PLIF):
                self.lossy(
                    f"layer {name} (PLIF): exported as a LIF with its learned tau = "
                    f"{tau:.6g} (no longer learnable; load() returns a LIF)"
                )
            r = 1.0 if module.decay_input else tau
            self.add(
                name,
                "lif",
                nir.LIF(
                    tau=full(tau * dt),
                    r=full(r),
                    v_leak=full(rest),
                    v_threshold=v_th,
                    v_reset=v_reset,
                ),
            )


def _describe(surrogate: Any) -> str:
    shape = surrogate._shape_repr() if hasattr(surrogate, "_shape_repr") else ""
    return f"{type(surrogate).__name__}({shape})"


def _fold_batchnorm(
    where: str,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    bn: nn.modules.batchnorm._BatchNorm,
) -> tuple[torch.Tensor, torch.Tensor]:
    """y = γ (Wx + b − μ) / √(σ² + ε) + β  →  W' = s W, b' = s (b − μ) + β with s = γ/√(σ² + ε)."""
    if bn.running_mean is None or bn.running_var is None:
        raise SnnkitError(
            f"{where}: the batch norm after it has no running statistics "
            "(track_running_stats: false), so it cannot be folded — enable them"
        )
    mean, var = bn.running_mean.double(), bn.running_var.double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    shift = torch.zeros_like(mean)
    if bn.affine:
        scale = scale * bn.weight.detach().double()
        shift = bn.bias.detach().double()
    b = torch.zeros_like(mean) if bias is None else bias
    new_w = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return new_w, (b - mean) * scale + shift


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)
