"""Counting what a network costs while it runs: spikes, synaptic operations, MACs, energy.

Below the engine (it needs only torch and :mod:`snnkit.components`), so the engine counts
every test pass (:mod:`snnkit.costs.counting`, :mod:`snnkit.costs.energy`).
"""
