"""Pure join equations of residual blocks and parallel branches (element-wise, any shape).

SEW-ResNet (Fang et al., "Deep Residual Learning in Spiking Neural Networks", NeurIPS 2021)
joins the residual branch's spikes ``A`` with the shortcut's spikes ``S`` by a connect
function ``g(A, S)``:

- ``add``:  g = A + S            (the output may reach 2: counts, not spikes)
- ``and``:  g = A ∧ S = A · S
- ``iand``: g = (¬A) ∧ S = (1 − A) · S

The plain spiking ResNet shortcut (Zheng et al. 2021, tdBN) adds *before* the block's last
neuron, ``S_out = SN(F(x) + shortcut(x))``, and MS-ResNet's membrane shortcut (Hu et al., "Advancing
Spiking Neural Networks towards Deep Residual Learning", 2021/2024) adds the real-valued
pre-activations, ``y = F(x) + x`` with ``F`` starting with a neuron: both are :func:`add`.
Branches are joined by :func:`add` or :func:`concat` along the channel axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Connect = Callable[[Tensor, Tensor], Tensor]


def add(a: Tensor, s: Tensor) -> Tensor:
    """ADD: g(A, S) = A + S."""
    return a + s


def and_(a: Tensor, s: Tensor) -> Tensor:
    """AND: g(A, S) = A ∧ S = A · S (for spikes in {0, 1})."""
    return a * s


def iand(a: Tensor, s: Tensor) -> Tensor:
    """IAND: g(A, S) = (¬A) ∧ S = (1 − A) · S (for spikes in {0, 1})."""
    return (1.0 - a) * s


#: connect name -> equation; ``spiking`` and ``membrane`` shortcuts add (see the module doc)
CONNECT: dict[str, Connect] = {"add": add, "and": and_, "iand": iand}


def concat(parts: Sequence[Tensor], dim: int) -> Tensor:
    """Branches side by side along ``dim`` (the channel axis): [C_1 + C_2 + ..., *]."""
    return torch.cat(list(parts), dim=dim)


def add_all(parts: Sequence[Tensor]) -> Tensor:
    """Branches summed element-wise: Σ_j y_j."""
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out
