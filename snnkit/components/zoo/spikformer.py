"""Spikformer: Zhou, Zhu, He, Wang, Yan, Tian and Yuan, "Spikformer: When Spiking Neural Network
Meets Transformer", ICLR 2023 (arXiv 2209.15425).

Spiking self-attention (SSA) on spike-form queries, keys and values, without softmax::

    Q = SN(BN(X W_Q)),  K = SN(BN(X W_K)),  V = SN(BN(X W_V))
    SSA(Q, K, V) = SN(Q K^T V · s),  s = 0.125                   (per head)
    X' = X + SN(BN(Linear(SSA))),  X'' = X' + MLP(X')             (MLP: Linear-BN-SN ×2)

Every module here acts on the trailing axes (tokens ``[N, D]``), so it runs the same in both
step modes; the neurons are built from a neuron spec and keep their own step mode.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from snnkit.components.functional import set_step_mode
from snnkit.components.models import Build, _build_all
from snnkit.components.zoo.specs import bn, conv

SCALE = 0.125


def spiking_self_attention(q: Tensor, k: Tensor, v: Tensor, scale: float = SCALE) -> Tensor:
    """SSA before its neuron: ``(Q K^T V) · scale`` over the last two axes ``[N, d]``."""
    return (q @ k.transpose(-2, -1)) @ v * scale


class Tokens(nn.Module):
    """A feature map ``[..., C, H, W]`` as tokens ``[..., H·W, C]``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(-2).transpose(-1, -2)


class TokenLinearBN(nn.Module):
    """Linear then batch norm over the feature axis of tokens ``[..., N, D_in] -> [..., N, D_out]``
    (statistics over every other axis: T, B and tokens)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=False)
        self.bn = nn.BatchNorm1d(d_out)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        return self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)


class SSA(nn.Module):
    """Spiking self-attention with ``heads`` heads, then Linear-BN-SN (module doc)."""

    def __init__(self, build: Build, at: str, dim: int, heads: int, neuron: Any) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads = heads
        self.q, self.k, self.v = (TokenLinearBN(dim, dim) for _ in range(3))
        self.q_sn, self.k_sn, self.v_sn = (build(neuron, f"{at}.{n}_neuron") for n in "qkv")
        attn = neuron if isinstance(neuron, dict) else {"name": neuron}
        self.attn_sn = build({**attn, "v_threshold": 0.5}, f"{at}.attn_neuron")
        self.proj = TokenLinearBN(dim, dim)
        self.proj_sn = build(neuron, f"{at}.proj_neuron")

    def _split(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(-3, -2)  # [..., heads, N, d]

    def forward(self, x: Tensor) -> Tensor:
        q = self._split(self.q_sn(self.q(x)))
        k = self._split(self.k_sn(self.k(x)))
        v = self._split(self.v_sn(self.v(x)))
        y = spiking_self_attention(q, k, v).transpose(-3, -2).flatten(-2)
        return self.proj_sn(self.proj(self.attn_sn(y)))


class MLP(nn.Module):
    """Linear-BN-SN to ``hidden`` features and back to ``dim``."""

    def __init__(self, build: Build, at: str, dim: int, hidden: int, neuron: Any) -> None:
        super().__init__()
        self.fc1, self.fc2 = TokenLinearBN(dim, hidden), TokenLinearBN(hidden, dim)
        self.sn1, self.sn2 = build(neuron, f"{at}.neuron1"), build(neuron, f"{at}.neuron2")

    def forward(self, x: Tensor) -> Tensor:
        return self.sn2(self.fc2(self.sn1(self.fc1(x))))


class EncoderBlock(nn.Module):
    """``x' = x + SSA(x)``, ``x'' = x' + MLP(x')`` (spike tensors added, as in the paper)."""

    def __init__(self, build: Build, at: str, dim: int, heads: int, hidden: int, neuron: Any):
        super().__init__()
        self.attn = SSA(build, f"{at}.attn", dim, heads, neuron)
        self.mlp = MLP(build, f"{at}.mlp", dim, hidden, neuron)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Head(nn.Module):
    """Mean over tokens, then a linear classifier: ``[..., N, D] -> [..., classes]``."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.mean(-2))


def sps_specs(in_channels: int, dim: int, pools: int, neuron: Any) -> list[Any]:
    """Spiking patch splitting: four conv3×3-BN-SN (dim/8, /4, /2, 1), a 2×2 max pool after
    the last ``pools`` of them, then the relative position embedding as a residual ADD."""
    widths = [dim // 8, dim // 4, dim // 2, dim]
    specs: list[Any] = []
    c_in = in_channels
    for i, c in enumerate(widths):
        specs += [conv(c_in, c, 3, 1, 1), bn(c), neuron]
        if i >= len(widths) - pools:
            specs.append({"name": "maxpool2d", "kernel_size": 2})
        c_in = c
    rpe = [conv(dim, dim, 3, 1, 1), bn(dim), neuron]
    return [*specs, {"name": "residual", "connect": "add", "body": rpe}]


class Spikformer(nn.Sequential):
    """Spikformer (Zhou et al., ICLR 2023): spiking patch splitting, ``depth`` encoder blocks of
    spiking self-attention and MLP, mean over tokens and a linear classifier.

    Output ``[T, B, num_classes]``. ``pools`` max pools in the patch splitting (2 for
    32×32 CIFAR images: 8×8 = 64 tokens; at most 4). The paper's CIFAR-10 model is
    Spikformer-4-384 (``depth: 4, dim: 384, heads: 12, mlp_ratio: 4``): 95.19 % at T = 4;
    the defaults are a small configuration. ``neuron`` is a neuron spec (the paper: LIF τ = 2).
    """

    def __init__(
        self,
        build: Build,
        depth: int = 2,
        dim: int = 128,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        pools: int = 2,
        in_channels: int = 3,
        num_classes: int = 10,
        neuron: Any = "lif",
        step_mode: str = "m",
    ) -> None:
        if depth < 1 or dim < 8 or dim % 8 or not 0 <= pools <= 4:
            raise ValueError(
                f"need depth >= 1, dim a multiple of 8 and 0 <= pools <= 4, got depth {depth}, "
                f"dim {dim}, pools {pools}"
            )
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        super().__init__()
        _build_all(self, build, sps_specs(in_channels, dim, pools, neuron), step_mode)
        self.append(Tokens())
        hidden = max(1, int(dim * mlp_ratio))
        n = len(self)
        for i in range(depth):
            self.append(EncoderBlock(build, f"layers[{n + i}]", dim, heads, hidden, neuron))
        self.append(Head(dim, num_classes))
        self.step_mode = step_mode
        set_step_mode(self, step_mode)
