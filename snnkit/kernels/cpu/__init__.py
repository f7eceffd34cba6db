"""CPU kernels: C++ compiled once per machine (:mod:`~snnkit.kernels.cpu.build`) and their
autograd shells."""
