"""Cost analysis of trained runs: :mod:`snnkit.analysis.profile` (``snnkit profile``).

The counting hooks and the energy model live in :mod:`snnkit.costs`, below the engine, which
counts every test pass with them; ``snnkit.analysis.counting`` and ``snnkit.analysis.energy``
re-export them.
"""
