"""Optimizers and learning-rate schedules with recipe-friendly, fully typed signatures.

Thin factories over ``torch.optim``: their signatures are the recipe schema (torch's own mix
float and Tensor hints that a recipe cannot express). snnkit supplies ``params`` to optimizers
and ``optimizer`` and ``epochs`` to schedules; schedules are stepped once per epoch. Value
ranges are declared in the signatures (``Positive``) and checked on every call
(:func:`snnkit.constraints.checked`) and by the registry for recipes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import torch
from annotated_types import Gt

from snnkit.constraints import checked

Positive = Annotated[float, Gt(0)]
PositiveInt = Annotated[int, Gt(0)]


def _fused_on_gpu(params: list[torch.nn.Parameter]) -> dict[str, bool]:
    """``{"fused": True}`` when every parameter is a floating CUDA tensor: torch's one-kernel
    Adam/AdamW (same update rule) instead of a dozen launches per step; ``{}`` otherwise."""
    if params and all(p.is_cuda and p.is_floating_point() for p in params):
        return {"fused": True}
    return {}


@checked
def adam(
    params: Iterable[torch.nn.Parameter],
    lr: Positive = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015): the reference tutorial's optimizer, lr 1e-3 (fused on CUDA)."""
    params = list(params)
    return torch.optim.Adam(
        params,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        **_fused_on_gpu(params),
    )


@checked
def adamw(
    params: Iterable[torch.nn.Parameter],
    lr: Positive = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
) -> torch.optim.Optimizer:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019); fused on CUDA."""
    params = list(params)
    return torch.optim.AdamW(
        params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **_fused_on_gpu(params)
    )


@checked
def sgd(
    params: Iterable[torch.nn.Parameter],
    lr: Positive = 0.1,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """Stochastic gradient descent with optional (Nesterov) momentum."""
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )


@checked
def rmsprop(
    params: Iterable[torch.nn.Parameter],
    lr: Positive = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
) -> torch.optim.Optimizer:
    """RMSprop (Tieleman & Hinton 2012)."""
    return torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum
    )


@checked
def cosine(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    t_max: Annotated[int | None, Gt(0)] = None,
    eta_min: float = 0.0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing: lr(e) = eta_min + (lr0 − eta_min)(1 + cos(π e / t_max)) / 2.

    ``t_max`` defaults to the run's number of epochs.
    """
    t_max = epochs if t_max is None else t_max
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=eta_min)


@checked
def step_lr(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    step_size: PositiveInt = 30,
    gamma: Positive = 0.1,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Step decay: lr(e) = lr0 · gamma^floor(e / step_size) (registered as ``step``)."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
