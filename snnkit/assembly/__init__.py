"""Assembly: a validated recipe + the registry -> an :class:`~snnkit.assembly.assemble.Experiment`
(model, encoder, loss, optimizer, data), with the checks that run before anything trains."""
