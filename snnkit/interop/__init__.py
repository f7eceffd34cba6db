"""Export snnkit models to NIR (the Neuromorphic Intermediate Representation) and import them back.

snnkit neurons are discrete-time; NIR neurons are continuous-time ODEs. One snnkit step is an
explicit Euler step of length ``dt`` of the NIR equation, with the step's input X(t) read as a
current held constant over the step. Under that reading the mapping is exact (docs/nir.md)::

    IF       H = V + X                              nir.IF      r = 1/dt
    LIF      H = V + (X − (V − V_reset)) / tau      nir.LIF     tau = tau·dt, r = 1,
                                                                v_leak = V_reset
             (decay_input=False: H = V − (V − V_reset)/tau + X)          r = tau
    CubaLIF  I = I(1 − 1/tau_syn) + X; H = V + (I − (V − V_reset))/tau_mem
                                                    nir.CubaLIF tau_syn = tau_syn·dt, tau_mem =
                                                                tau_mem·dt, w_in = tau_syn, r = 1
    LI       V = V + (X − V) / tau                  nir.LI      tau = tau·dt, r = 1, v_leak = 0

Losses are reported, never hidden: :func:`export_nir` returns a list of warnings (soft reset,
detach_reset, the surrogate, PLIF's learned tau frozen, dropout, folded batch norm), and
``strict=True`` turns the lossy ones into errors. Neurons NIR cannot express (QIF, EIF,
Izhikevich, ALIF, plugin neurons) raise :class:`~snnkit.errors.SnnkitError` naming the layer.

``nir`` is an optional dependency, imported on first use.

Layout: :mod:`~snnkit.interop.exporter` (export_nir, save), :mod:`~snnkit.interop.mapping`
(each layer and neuron to NIR nodes), :mod:`~snnkit.interop.importer` (import_nir, load) and
:mod:`~snnkit.interop.common` (the lazy ``nir`` import).
"""

from snnkit.interop import exporter as _exporter
from snnkit.interop.exporter import export_nir, save
from snnkit.interop.importer import import_nir, load

__all__ = ["export_nir", "import_nir", "load", "save"]

#: Rebuilds the model of a checkpoint or run folder (used by :func:`save`); kept importable here.
model_from_checkpoint = _exporter.model_from_checkpoint
