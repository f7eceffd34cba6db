"""Losses on a network's time-first output ``O[T, B, C]`` against class indices ``y[B]``.

Contract: ``factory(**params) -> nn.Module``; ``loss(output, target) -> scalar``, differentiable
with respect to ``output``; ``loss.predict(output) -> [B]`` is the class with the largest mean
output over time (ties go to the lowest index, as ``torch.argmax``). Wrong shapes raise
``ValueError`` naming both shapes. Below, r = mean_t O[t] (firing rate), N = sum_t O[t] (spike
count), and means run over every element of the tensor they apply to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CECount",
    "CERate",
    "MSECount",
    "MSEMembrane",
    "MSERate",
    "SpikeLoss",
    "TETLoss",
]


def check_output_target(output: Tensor, target: Tensor) -> Tensor:
    """Check ``output[T, B, C]`` against ``target[B]`` (integers in [0, C)); return it as int64.

    The class range is checked for targets on the CPU only: on a GPU reading the values back
    would make every batch wait for the device (datasets check their labels when built, and an
    out-of-range class still fails there, as a device-side error).
    """
    shapes = f"output {tuple(output.shape)}, target {tuple(target.shape)}"
    if output.dim() != 3:
        raise ValueError(f"loss: output must be [T, B, C] (3-D), got {shapes}")
    if target.dim() != 1 or target.shape[0] != output.shape[1]:
        raise ValueError(f"loss: target must be [B] with B = output.shape[1], got {shapes}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(
            f"loss: target must hold int64 class indices, got dtype {target.dtype} ({shapes})"
        )
    if target.numel() and target.device.type == "cpu":
        lo, hi = torch.aminmax(target)
        if int(lo) < 0 or int(hi) >= output.shape[2]:
            raise ValueError(
                f"loss: target classes must lie in [0, C = {output.shape[2]}), got "
                f"min {int(lo)}, max {int(hi)} ({shapes})"
            )
    return target.long()


class SpikeLoss(nn.Module):
    """Base of the built-in losses: shape checks and the mean-over-time ``predict``."""

    def __init__(self) -> None:  # an explicit signature: the registry refuses unknown parameters
        super().__init__()

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return self.compute(output, check_output_target(output, target))

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        """The loss for checked ``output[T, B, C]`` and int64 ``target[B]``."""
        raise NotImplementedError

    def predict(self, output: Tensor) -> Tensor:
        """argmax_c mean_t O[t, b, c] as int64 ``[B]`` (ties -> lowest index)."""
        if output.dim() != 3:
            raise ValueError(f"predict: output must be [T, B, C] (3-D), got {tuple(output.shape)}")
        return output.detach().mean(0).argmax(-1)


def _one_hot(target: Tensor, num_classes: int, like: Tensor) -> Tensor:
    return F.one_hot(target, num_classes).to(like.dtype)


class MSERate(SpikeLoss):
    """MSE of the firing rate against the one-hot target: mean_{b,c} (r_bc - onehot(y)_bc)^2.

    The reference tutorial's loss (SpikingJelly clock-driven MNIST example).
    """

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        rate = output.mean(0)
        return F.mse_loss(rate, _one_hot(target, output.shape[2], rate))


class CERate(SpikeLoss):
    """Cross-entropy of the scaled firing rate: CE(softmax(scale · r), y), averaged over B.

    Rates lie in [0, 1], so ``scale`` acts as an inverse softmax temperature. The default 1.0
    is plain CE of rates: the loss never reaches 0 (its floor is ln(1 + (C - 1)/e) for a
    perfect output), so it keeps pushing the true rate to 1 and the others to 0.
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(
                f"scale must be > 0 (it multiplies the rates fed to softmax), got {scale!r}"
            )
        self.scale = float(scale)

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(self.scale * output.mean(0), target)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class MSECount(SpikeLoss):
    """MSE of spike counts against target counts, divided by T once.

    Target N*_bc = correct_rate · T for c = y_b, incorrect_rate · T otherwise;
    loss = mean_{b,c} (N_bc - N*_bc)^2 / T. Dividing by T (not T^2) keeps the gradient per
    spike, 2 (N - N*) / (T · B · C), of the same order whatever T is.
    """

    def __init__(self, correct_rate: float = 0.8, incorrect_rate: float = 0.2) -> None:
        super().__init__()
        for name, value in (("correct_rate", correct_rate), ("incorrect_rate", incorrect_rate)):
            if not 0 <= value <= 1:
                raise ValueError(
                    f"{name} must be in [0, 1] (a fraction of the T steps), got {value!r}"
                )
        self.correct_rate = float(correct_rate)
        self.incorrect_rate = float(incorrect_rate)

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        steps, _, classes = output.shape
        counts = output.sum(0)
        hot = _one_hot(target, classes, counts)
        wanted = steps * (self.incorrect_rate + (self.correct_rate - self.incorrect_rate) * hot)
        return F.mse_loss(counts, wanted) / steps

    def extra_repr(self) -> str:
        return f"correct_rate={self.correct_rate}, incorrect_rate={self.incorrect_rate}"


class CECount(SpikeLoss):
    """Cross-entropy of the spike counts used as logits: CE(softmax(N), y), averaged over B."""

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output.sum(0), target)


class MSEMembrane(SpikeLoss):
    """MSE of a readout's membrane potential against per-class targets at every step.

    loss = mean_{t,b,c} (O[t,b,c] - U_bc)^2 with U_bc = on_target for c = y_b, off_target
    otherwise (the mean over t of each step's MSE). For non-spiking (LI) readouts.
    """

    def __init__(self, on_target: float = 1.0, off_target: float = 0.0) -> None:
        super().__init__()
        self.on_target = float(on_target)
        self.off_target = float(off_target)

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        hot = _one_hot(target, output.shape[2], output)
        wanted = self.off_target + (self.on_target - self.off_target) * hot
        return F.mse_loss(output, wanted.expand_as(output))

    def extra_repr(self) -> str:
        return f"on_target={self.on_target}, off_target={self.off_target}"


class TETLoss(SpikeLoss):
    """Temporal efficient training loss: mean_t CE(O[t], y) + lamb · mean_{t,b,c} (O - phi)^2.

    Deng et al., "Temporal Efficient Training of Spiking Neural Network via Gradient
    Re-weighting", ICLR 2022. The paper weighs the terms (1 - lamb) and lamb; here the CE term
    keeps weight 1 and ``lamb`` only adds the regulariser pulling outputs towards ``phi``.
    """

    def __init__(self, lamb: float = 0.0, phi: float = 1.0) -> None:
        super().__init__()
        if not lamb >= 0:
            raise ValueError(f"lamb must be >= 0 (weight of the MSE regulariser), got {lamb!r}")
        self.lamb = float(lamb)
        self.phi = float(phi)

    def compute(self, output: Tensor, target: Tensor) -> Tensor:
        steps = output.shape[0]
        # CE over the T·B rows equals the mean over t of the per-step batch-mean CE.
        loss = F.cross_entropy(output.flatten(0, 1), target.repeat(steps))
        if self.lamb:
            loss = loss + self.lamb * (output - self.phi).square().mean()
        return loss

    def extra_repr(self) -> str:
        return f"lamb={self.lamb}, phi={self.phi}"
