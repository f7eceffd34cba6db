"""The neuron base classes: :class:`BaseNeuron` (step modes, state, voltage recording around a
pure ``step_fn``) and :class:`SpikingNeuron` (surrogate, threshold, reset; what the fused kernels
need), plus the declared parameter types every neuron uses (``Tau``, ``Real``, ...).

The concrete neurons and the contract they follow are in :mod:`snnkit.components.neurons`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, NamedTuple

import torch
from annotated_types import Ge, Gt
from torch import Tensor, nn

from snnkit import kernels
from snnkit.components import functional as F
from snnkit.components.surrogates import Sigmoid, Surrogate
from snnkit.constraints import FINITE, Why, check_arguments
from snnkit.kernels.forms import ChargeMode, NeuronForm, neuron_form

#: Declared parameter types: the range of each, and why it holds (Real: a finite float).
Real = Annotated[float, FINITE]
RealOrNone = Annotated[float | None, FINITE]
Tau = Annotated[float, Gt(1), Why("the charge equation divides by tau; tau <= 1 overshoots")]
TauMem = Annotated[
    float, Gt(1), Why("the charge equation divides by tau_mem; tau_mem <= 1 overshoots")
]
TauSyn = Annotated[
    float, Gt(1), Why("the current decays by 1 - 1/tau_syn per step; tau_syn <= 1 overshoots")
]
TauW = Annotated[
    float, Gt(1), Why("the adaptation equation divides by tau_w; tau_w <= 1 overshoots")
]
TauAdapt = Annotated[
    float, Gt(1), Why("the trace decays by 1 - 1/tau_adapt per step; tau_adapt <= 1 overshoots")
]
InitTau = Annotated[
    float, Gt(1), Why("the charge equation divides by tau; init_tau <= 1 overshoots")
]
A0 = Annotated[float, Gt(0), FINITE, Why("the quadratic term drives the upswing")]
DeltaT = Annotated[float, Gt(0), FINITE, Why("the exponential term divides by it")]
Beta = Annotated[float, Ge(0), FINITE, Why("spikes raise the threshold")]

#: ``__init__`` arguments that configure how a neuron runs, not what it computes.
_RUN_SETTINGS = ("surrogate", "kernel", "step_mode", "record_v")


def init_arguments(local_vars: Mapping[str, Any]) -> dict[str, Any]:
    """A constructor's arguments from its ``locals()`` (all but ``self`` and ``__class__``),
    so ``super().__init__(**init_arguments(locals()))`` forwards every declared parameter."""
    return {k: v for k, v in local_vars.items() if k not in ("self", "__class__")}


class BaseNeuron(nn.Module):
    """Base of all neurons: step modes, state and recording around a pure ``step_fn``.

    Subclasses set ``step_fn`` (a function of :mod:`snnkit.components.functional`), declare
    their parameters in ``__init__`` (keyword-only after ``surrogate``, ranges as annotations)
    and pass them all on: ``super().__init__(**init_arguments(locals()))``; they implement
    ``initial_state(x)`` if the state has more than V. The base checks the parameters against
    their declarations and stores each as an attribute; ``step_kwargs()`` and the repr are
    derived from ``step_fn``'s and ``__init__``'s signatures.
    ``kernel`` names the multi-step kernel (:mod:`snnkit.kernels`: ``auto``, ``reference``,
    and ``cpp`` / ``triton`` for fusable neurons); single-step always calls ``step_fn``.
    """

    step_fn: Callable[..., tuple[Tensor, Any]]

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
        **params: Any,
    ) -> None:
        del surrogate  # a non-spiking neuron never fires; SpikingNeuron keeps it
        params = check_arguments(type(self).__init__, params)
        super().__init__()
        for name, value in params.items():
            setattr(self, name, value)
        self.kernel = kernels.check_kernel(type(self), kernel)
        self.record_v = bool(record_v)
        self.state: Any = None
        self._v_list: list[Tensor] = []
        self._v_seq: Tensor | None = None
        self._step_mode = "m"
        self.step_mode = step_mode

    # -- the pure step ------------------------------------------------------------------------
    def step_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``step_fn`` besides ``state`` and ``x`` (parameters, surrogate):
        each keyword-only argument of ``step_fn``, read from the attribute of that name."""
        return {name: getattr(self, name) for name in _keyword_names(type(self).step_fn)}

    def initial_state(self, x: Tensor) -> NamedTuple:
        """The state before the first step, shaped, typed and placed like one step's input."""
        raise NotImplementedError

    def step(self, state: Any, x: Tensor) -> tuple[Tensor, Any]:
        """One time step as a pure call: ``step_fn(state, x, **step_kwargs())``."""
        return type(self).step_fn(state, x, **self.step_kwargs())

    # -- step modes ---------------------------------------------------------------------------
    @property
    def step_mode(self) -> str:
        """'m' (multi-step, ``[T, B, *]``) or 's' (single-step, ``[B, *]``); setting it resets."""
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        self._step_mode = F.check_step_mode(mode)
        self.reset()

    def forward(self, x: Tensor) -> Tensor:
        if self._step_mode == "m":
            return self._multi_step(x)
        return self._single_step(x)

    def _multi_step(self, x_seq: Tensor) -> Tensor:
        """Run ``step`` over the first axis of ``x_seq`` ``[T, B, *]`` from a fresh state."""
        if x_seq.dim() < 1 or x_seq.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} in multi-step mode expects input [T, B, ...] with T >= 1, "
                f"got shape {tuple(x_seq.shape)}"
            )
        out, self._v_seq = kernels.multi_step(self, x_seq)
        return out

    def _single_step(self, x: Tensor) -> Tensor:
        """One step from the kept state (initialised lazily like ``x``); the state is kept."""
        if self.state is None:
            self.state = self.initial_state(x)
        elif self.state[0].shape != x.shape:
            raise ValueError(
                f"{type(self).__name__} in single-step mode holds state of shape "
                f"{tuple(self.state[0].shape)} but got input {tuple(x.shape)} — call "
                "snnkit.components.functional.reset_net(model) between sequences"
            )
        out, self.state = self.step(self.state, x)
        if self.record_v:
            self._v_list.append(self.state[0].detach())
        return out

    def reset(self) -> None:
        """Forget the single-step state and any recorded voltages."""
        self.state = None
        self._v_list = []
        self._v_seq = None

    @property
    def v_seq(self) -> Tensor | None:
        """Recorded membrane trace V(t) (after reset), detached, ``[T, B, *]``; None if none.

        Multi-step: the trace of the last call. Single-step: the steps since ``reset()``.
        Only filled when ``record_v`` is true.
        """
        if self._step_mode == "s":
            return torch.stack(self._v_list) if self._v_list else None
        return self._v_seq

    def extra_repr(self) -> str:
        """The declared parameters in signature order, then kernel (if not auto), step_mode
        and record_v (if set)."""
        names = [n for n in _parameter_names(type(self).__init__) if hasattr(self, n)]
        fields = [f"{name}={getattr(self, name)!r}" for name in names]
        if self.kernel != "auto":
            fields.append(f"kernel={self.kernel!r}")
        fields.append(f"step_mode={self._step_mode!r}")
        if self.record_v:
            fields.append("record_v=True")
        return ", ".join(fields)


_NAMES: dict[tuple[Callable[..., Any], str], tuple[str, ...]] = {}


def _keyword_names(step_fn: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword-only arguments of a step function (its parameters and surrogate), cached."""
    key = (step_fn, "step")
    if key not in _NAMES:
        _NAMES[key] = tuple(
            p.name
            for p in inspect.signature(step_fn).parameters.values()
            if p.kind is p.KEYWORD_ONLY
        )
    return _NAMES[key]


def _parameter_names(init: Callable[..., Any]) -> tuple[str, ...]:
    """The declared parameters of a neuron's ``__init__``: its named arguments but ``self``
    and the run settings (surrogate, kernel, step_mode, record_v), cached."""
    key = (init, "init")
    if key not in _NAMES:
        _NAMES[key] = tuple(
            p.name
            for p in inspect.signature(init).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name != "self"
            and p.name not in _RUN_SETTINGS
        )
    return _NAMES[key]


class SpikingNeuron(BaseNeuron):
    """Base of the spiking neurons: surrogate, threshold, reset (hard or soft), detach_reset.

    Under hard reset (``v_reset`` a number) ``v_threshold > v_reset`` must hold.

    Fused kernels: a class declares the charge law its ``step_fn`` computes in ``kernel_charge``
    (IF, LIF or PLIF of :class:`~snnkit.kernels.forms.ChargeMode`; None: reference loop only);
    ``kernel_form()`` turns an instance into the kernels'
    :class:`~snnkit.kernels.forms.NeuronForm` (a plugin may override it instead).
    """

    v_threshold: float
    v_reset: float | None
    detach_reset: bool

    kernel_charge: ClassVar[ChargeMode | None] = None

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        v_threshold: Real = 1.0,
        v_reset: RealOrNone = 0.0,
        detach_reset: bool = False,
        kernel: str = "auto",
        step_mode: str = "m",
        record_v: bool = False,
        **params: Any,
    ) -> None:
        if surrogate is not None and not callable(surrogate):
            raise TypeError(f"surrogate must be a Surrogate module, got {type(surrogate).__name__}")
        common = check_arguments(
            SpikingNeuron.__init__,
            {"v_threshold": v_threshold, "v_reset": v_reset, "detach_reset": detach_reset},
        )
        v_threshold, v_reset = common["v_threshold"], common["v_reset"]
        if v_reset is not None and not v_threshold > v_reset:
            raise ValueError(
                "v_threshold must be > v_reset under hard reset, got "
                f"v_threshold={v_threshold!r}, v_reset={v_reset!r} "
                "(set v_reset: null for soft reset)"
            )
        super().__init__(kernel=kernel, step_mode=step_mode, record_v=record_v, **params, **common)
        self.surrogate = Sigmoid() if surrogate is None else surrogate

    def _v0(self, x: Tensor) -> Tensor:
        return torch.full_like(x, 0.0 if self.v_reset is None else self.v_reset)

    def initial_state(self, x: Tensor) -> NamedTuple:
        return F.MembraneState(self._v0(x))

    @classmethod
    def kernel_fusable(cls) -> bool:
        """Whether ``cpp`` / ``triton`` may run this class: it overrides ``kernel_form`` or
        declares ``kernel_charge`` for the step it runs (see :meth:`_runs_declared_charge`)."""
        return cls.kernel_form is not SpikingNeuron.kernel_form or cls._runs_declared_charge()

    @classmethod
    def _runs_declared_charge(cls) -> bool:
        """``kernel_charge`` is set and the class keeps the ``step_fn`` of the class that set it
        and the base initial state (a subclass that swaps either keeps the reference loop)."""
        owner = next(k for k in cls.__mro__ if "kernel_charge" in vars(k))
        return (
            cls.kernel_charge is not None
            and cls.step_fn is getattr(owner, "step_fn", None)
            and cls.initial_state is SpikingNeuron.initial_state
            and cls._v0 is SpikingNeuron._v0
        )

    def kernel_form(self) -> NeuronForm | None:
        """This neuron as a fused kernel runs it, or None (the reference loop runs it)."""
        if self.kernel_charge is None or not type(self)._runs_declared_charge():
            return None
        return neuron_form(self.kernel_charge, **self.step_kwargs())
