"""Scoring: parameters, sub-scores, composite, checks, the assessment and its orchestrator.

The top layer of :mod:`models`."""
