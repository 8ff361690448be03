"""Compiled evaluation: the graph as arrays, the batched capacity evaluation, kernels, and the
impact model (knockouts, country losses, regime binds) every analysis reads.

Imports :mod:`models.graph` only."""
