"""CUDA kernels written in Triton: the fused neuron loop and the Poisson encoder."""
