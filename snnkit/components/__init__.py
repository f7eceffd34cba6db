"""The building blocks a recipe names: the equations (:mod:`~snnkit.components.functional`) and
the modules around them — neurons, surrogates, encoders, layers, models, losses, optimizers and
schedules. Each module is registered in :mod:`snnkit.plugins.catalogue`.

A new neuron goes in :mod:`~snnkit.components.neurons` (its step equation in
:mod:`~snnkit.components.functional`), a new surrogate in :mod:`~snnkit.components.surrogates`.
"""
