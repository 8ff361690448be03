"""Screening decision thresholds, importable without the matcher (the CLI's help text)."""

from __future__ import annotations

#: Chosen from ``scripts/eval_screening.py`` on the labelled set (docs/screening.md).
DEFAULT_MATCH_THRESHOLD = 0.80
DEFAULT_REVIEW_THRESHOLD = 0.55
