"""Neurons and what runs them: NumPy neurons, the LIF layer and its kernels, surrogate gradients, encoders, spike-sequence ops."""
