"""Models: the spiking networks, their non-spiking twins and baselines, the registry."""
