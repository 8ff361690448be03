"""Analyses on the compiled graph: concentration, cut sets, contention, resilience,
simulation, sensitivity.

Imports :mod:`models.engine` and :mod:`models.graph`, never :mod:`models.scoring`."""
