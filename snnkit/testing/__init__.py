"""Conformance checks for components: run them in a plugin's tests before publishing it.

Each ``check_*`` function exercises one component against the contract of its hook (see
:mod:`snnkit.hookspecs`) on tiny synthetic tensors and raises :class:`AssertionError` with a
message naming the component, the rule broken and where, or returns ``None``. They need no
test framework; under pytest a failed check is an ordinary test failure::

    from snnkit.testing import check_surrogate, check_loss

    def test_triangle_conforms():
        check_surrogate(Triangle(alpha=2.0))

snnkit runs the same checks on every built-in (``tests/test_conformance.py``). All inputs are
drawn from a private, seeded generator, so a check gives the same verdict on every run and does
not touch torch's global random state (modules that draw random numbers themselves, such as a
Poisson encoder, still use it).

Layout: one submodule per check (:mod:`~snnkit.testing.surrogates`, ``neurons``, ``encoders``,
``losses``, ``models``, ``recurrent``: recurrent layers and models) and
:mod:`~snnkit.testing.common` for the shared helpers.
"""

from snnkit.testing import common as _common
from snnkit.testing.encoders import check_encoder
from snnkit.testing.losses import check_loss
from snnkit.testing.models import check_model
from snnkit.testing.neurons import check_neuron
from snnkit.testing.recurrent import check_recurrent, check_recurrent_model
from snnkit.testing.surrogates import check_surrogate

__all__ = [
    "check_encoder",
    "check_loss",
    "check_model",
    "check_neuron",
    "check_recurrent",
    "check_recurrent_model",
    "check_surrogate",
]

#: Where a check runs (``str | torch.device | None``); kept importable from here.
DeviceLike = _common.DeviceLike
