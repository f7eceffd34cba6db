"""Public import path of :mod:`snnkit.components.functional` (where the code lives), kept for
plugins and scripts: ``from snnkit.functional import ...``."""

from snnkit.components.functional import (
    STEP_MODES,
    MembraneState,
    IzhikevichState,
    ALIFState,
    CubaLIFState,
    fire,
    reset,
    if_charge,
    lif_charge,
    plif_charge,
    qif_charge,
    eif_charge,
    izhikevich_charge,
    izhikevich_adapt,
    alif_threshold,
    alif_adapt,
    cuba_current,
    cuba_lif_charge,
    li_charge,
    if_step,
    lif_step,
    plif_step,
    qif_step,
    eif_step,
    izhikevich_step,
    alif_step,
    cuba_lif_step,
    li_step,
    plif_init_w,
    reset_net,
    set_step_mode,
)

__all__ = ["STEP_MODES", "MembraneState", "IzhikevichState", "ALIFState", "CubaLIFState", "fire", "reset", "if_charge", "lif_charge", "plif_charge", "qif_charge", "eif_charge", "izhikevich_charge", "izhikevich_adapt", "alif_threshold", "alif_adapt", "cuba_current", "cuba_lif_charge", "li_charge", "if_step", "lif_step", "plif_step", "qif_step", "eif_step", "izhikevich_step", "alif_step", "cuba_lif_step", "li_step", "plif_init_w", "reset_net", "set_step_mode"]
