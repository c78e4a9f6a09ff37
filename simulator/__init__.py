"""The local twin: the real control plane against moto, with SimPy models of what moto lacks."""
