"""Cost analysis: per-layer spike rates, synaptic operations, MACs, parameters and energy."""
