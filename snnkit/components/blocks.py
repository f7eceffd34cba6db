"""Blocks beyond a chain: residual blocks, repeated layer lists and parallel branches.

Each block is a layer whose parameters hold nested layer lists; snnkit supplies ``build``
(``build(spec, at) -> nn.Module``), which builds a nested spec and locates its errors under the
block (``model.layers[3].body[1]: ...``). In a recipe::

    - {name: residual, connect: iand, body: [conv2d, batchnorm2d, lif, ...], shortcut: [...]}
    - {name: repeat, times: 2, layers: [...]}
    - {name: branches, join: concat, branches: [[...], [...]]}

Every block works in both step modes (its children carry their own ``step_mode``; the block
only needs it to find the channel axis). Shapes that do not join raise :class:`JoinShapeError`,
which the shape check reports at the block's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from torch import Tensor, nn

from snnkit.components import connect as C
from snnkit.components.functional import check_step_mode

Build = Callable[[Any, str], nn.Module]
ConnectName = Literal["add", "and", "iand", "spiking", "membrane"]


class JoinShapeError(ValueError):
    """Two paths of a block give outputs that cannot be joined (the message says which)."""


def _chain(build: Build, specs: list[Any], at: str) -> nn.Sequential:
    """``nn.Sequential`` of ``build(spec, f"{at}[i]")`` for each spec."""
    return nn.Sequential(*(build(spec, f"{at}[{i}]") for i, spec in enumerate(specs)))


def _per_step(x: Tensor, step_mode: str) -> list[int]:
    return list(x.shape[2:] if step_mode == "m" else x.shape[1:])


class Residual(nn.Module):
    """A residual block: ``y = g(body(x), shortcut(x))``.

    ``connect`` picks ``g`` (:mod:`snnkit.components.connect`):

    - ``add`` / ``and`` / ``iand``: SEW-ResNet (Fang et al. 2021), on the spikes of a body that
      ends with a neuron: A + S, A · S, (1 − A) · S.
    - ``spiking``: the plain spiking ResNet shortcut (Zheng et al. 2021): ``neuron`` (a neuron
      spec, required here) fires on the sum, ``y = SN(body(x) + shortcut(x))``, the body
      ending before its last neuron (e.g. with a batch norm).
    - ``membrane``: MS-ResNet (Hu et al. 2021): ``y = body(x) + shortcut(x)`` on real-valued
      potentials, the body *starting* with a neuron (SN → conv → BN → ...).

    ``shortcut`` is a layer list (e.g. a strided 1×1 conv and a batch norm where the body
    changes the shape); none means the identity. Body and shortcut must give the same shape.
    """

    def __init__(
        self,
        build: Build,
        body: list[Any],
        shortcut: list[Any] | None = None,
        connect: ConnectName = "add",
        neuron: Any = None,
        step_mode: str = "m",
    ) -> None:
        super().__init__()
        if not body:
            raise ValueError("body must list at least one layer or neuron")
        if connect == "spiking" and neuron is None:
            raise ValueError(
                "connect 'spiking' fires a neuron on body + shortcut — add neuron: <a neuron spec>"
            )
        if connect != "spiking" and neuron is not None:
            raise ValueError(
                f"neuron is only used by connect 'spiking', not '{connect}' — remove it"
            )
        self.connect = connect
        self.body = _chain(build, body, "body")
        self.shortcut: nn.Module = (
            _chain(build, shortcut, "shortcut") if shortcut else nn.Identity()
        )
        self.neuron = build(neuron, "neuron") if neuron is not None else None
        self._g = C.CONNECT.get(connect, C.add)
        self.step_mode = check_step_mode(step_mode)

    def forward(self, x: Tensor) -> Tensor:
        a = self.body(x)
        s = self.shortcut(x)
        if a.shape != s.shape:
            raise JoinShapeError(
                f"residual: the body gives per-step {_per_step(a, self.step_mode)} but the "
                f"shortcut gives {_per_step(s, self.step_mode)} — make them agree (e.g. a "
                "shortcut conv2d with the body's stride and out_channels)"
            )
        y = self._g(a, s)
        return self.neuron(y) if self.neuron is not None else y

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}, step_mode={self.step_mode!r}"


class Repeat(nn.Sequential):
    """``layers`` applied ``times`` times in a row, each copy with its own parameters.

    In shape errors the first copy is ``layers[i]``, copy k (0-based, k ≥ 1) ``copy[k].layers[i]``.
    """

    def __init__(
        self, build: Build, layers: list[Any], times: int = 2, step_mode: str = "m"
    ) -> None:
        if not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an int >= 1, got {times!r}")
        if not layers:
            raise ValueError("layers must list at least one layer or neuron")
        super().__init__(
            *(
                _chain(build, layers, "layers" if k == 0 else f"copy[{k}].layers")
                for k in range(times)
            )
        )
        self.times = times
        self.step_mode = check_step_mode(step_mode)

    def extra_repr(self) -> str:
        return f"times={self.times}, step_mode={self.step_mode!r}"


class Branches(nn.Module):
    """Parallel branches on the same input, joined: ``concat`` along channels or ``add``.

    ``branches`` is a list of layer lists (an empty one is the identity). ``concat`` needs the
    same per-step shape but for the channel (first) axis; ``add`` needs the same shape.
    """

    def __init__(
        self,
        build: Build,
        branches: list[list[Any]],
        join: Literal["concat", "add"] = "concat",
        step_mode: str = "m",
    ) -> None:
        super().__init__()
        if len(branches) < 2:
            raise ValueError(f"branches must list at least two layer lists, got {len(branches)}")
        self.join = join
        self.paths = nn.ModuleList(
            _chain(build, specs, f"branches[{j}]") if specs else nn.Identity()
            for j, specs in enumerate(branches)
        )
        self.step_mode = check_step_mode(step_mode)

    def forward(self, x: Tensor) -> Tensor:
        outs = [path(x) for path in self.paths]
        lead = 2 if self.step_mode == "m" else 1
        shapes = [_per_step(y, self.step_mode) for y in outs]
        if self.join == "add":
            if any(y.shape != outs[0].shape for y in outs):
                raise JoinShapeError(
                    f"branches: join 'add' needs equal shapes but the branches give {shapes}"
                    " — make them agree or use join: concat"
                )
            return C.add_all(outs)
        if any(
            y.dim() <= lead
            or y.shape[:lead] + y.shape[lead + 1 :]
            != outs[0].shape[:lead] + outs[0].shape[lead + 1 :]
            for y in outs
        ):
            raise JoinShapeError(
                f"branches: join 'concat' needs equal shapes but for the channel axis, but the "
                f"branches give {shapes} — make the other sizes agree"
            )
        return C.concat(outs, dim=lead)

    def extra_repr(self) -> str:
        return f"join={self.join!r}, step_mode={self.step_mode!r}"
