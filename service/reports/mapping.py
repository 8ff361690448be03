"""Procurement-suite fields: SAP Ariba 1-100 risk categories and Coupa inherent/residual risk.

The mapping and its rationale are documented in docs/reports.md ("Procurement fields"); the
tests hold the code to it.
"""

from __future__ import annotations

import math

from sovrisk.models.scoring.assessment import RiskBand

#: Ariba custom risk category -> the sovrisk score behind it ("composite" or a sub-score key).
ARIBA_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("ariba_supply_risk_1_100", "composite"),
    ("ariba_concentration_risk_1_100", "concentration"),
    ("ariba_single_source_risk_1_100", "structural"),
    ("ariba_geopolitical_risk_1_100", "geopolitical"),
    ("ariba_regulatory_risk_1_100", "export_control"),
    ("ariba_operational_risk_1_100", "resilience"),
    ("ariba_disruption_risk_1_100", "tail"),
)

#: sovrisk band -> Coupa's risk-rating vocabulary.
COUPA_LEVEL: dict[RiskBand, str] = {
    RiskBand.LOW: "Low",
    RiskBand.MODERATE: "Medium",
    RiskBand.HIGH: "High",
    RiskBand.CRITICAL: "Critical",
}


def ariba_1_100(score: float | None) -> int | None:
    """A 0-100 score (higher = riskier) as an integer 1-100: rounded half up, then clamped
    to [1, 100] (a custom category has no 0). ``None`` (no data) stays ``None``: an empty
    field, Ariba's "Unknown", never the lowest risk."""
    if score is None or not math.isfinite(score):
        return None
    return min(100, max(1, math.floor(score + 0.5)))


def coupa_level(score: float) -> str:
    """Coupa's Low / Medium / High / Critical for a 0-100 score, on sovrisk's bands
    (< 25, < 50, < 75, >= 75)."""
    return COUPA_LEVEL[RiskBand.of(score)]
