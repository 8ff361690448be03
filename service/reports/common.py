"""Labels and number formats shared by the HTML and Markdown reports."""

from __future__ import annotations

from sovrisk.models.scoring.assessment import SCORE_INTERPRETATION, RiskAssessment
from sovrisk.models.scoring.params import DEFAULT_LAYER_WEIGHTS, SUB_SCORES
from sovrisk.models.scoring.risk_engine import SIMULATION_MEASURES
from sovrisk.models.scoring.uncertainty import COMPOSITE, Uncertainty
from sovrisk.service.reports.data import ReportData
from sovrisk.service.text_report import spof_nodes as spof_nodes
from sovrisk.service.text_report import spof_summary as spof_summary
from sovrisk.service.text_table import (
    SUB_SCORE_SHORT as SUB_SCORE_SHORT,  # one table of column heads
)

TITLE = "sovrisk: AI-accelerator supply-chain risk report"

SUB_SCORE_LABELS: dict[str, str] = {
    "concentration": "Concentration",
    "structural": "Structural",
    "geopolitical": "Geopolitical",
    "export_control": "Export control",
    "resilience": "Resilience",
    "tail": "Tail",
}
assert tuple(SUB_SCORE_LABELS) == SUB_SCORES

#: Layers in supply-chain order (the methodology's table), for per-layer displays.
LAYER_ORDER: tuple[str, ...] = tuple(DEFAULT_LAYER_WEIGHTS)

CHOKEPOINT_TITLES = {
    "node": "Supply nodes",
    "firm": "Firms (every node a firm owns lost together)",
    "country": "Countries (every site in the country lost)",
}

INTERPRETATION = SCORE_INTERPRETATION
SIMULATION_NOTE = (
    "Correlated common-cause events from the dataset's events table plus independent node "
    f"failures. {SIMULATION_MEASURES}"
)


def rank_label(u: Uncertainty | None, provider: str, rank: int) -> str:
    """The rank, with ``?`` when the draws do not make it certain (METHODS v2 §11)."""
    if u is None:
        return str(rank)
    return f"{rank}" + ("" if u.of(provider).rank_certain else "?")


def interval_label(u: Uncertainty | None, provider: str) -> str:
    """The composite's 90 % interval, e.g. ``55.2-55.5``."""
    if u is None:
        return ""
    i = u.of(provider).interval(COMPOSITE)
    return f"{i.low:.1f}-{i.high:.1f}"


def uncertainty_notes(u: Uncertainty | None) -> tuple[str, ...]:
    if u is None:
        return ()
    return (
        *u.notes,
        "? after a rank: not certain (some pairwise order holds in < 90 % of draws).",
    )


def score(value: float) -> str:
    return f"{value:.1f}"


def pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def layer_key(layer: str) -> tuple[int, str]:
    return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), layer)


def sub_value(a: RiskAssessment, key: str) -> float | None:
    s = a.sub_score(key)
    return s.score if s.available else None


def provenance_rows(data: ReportData) -> list[tuple[str, str]]:
    """Provenance as (label, value) rows, in a fixed order."""
    rows = [
        ("model version", data.model_version),
        ("dataset", data.dataset_name),
        ("dataset version", data.dataset_version),
        ("dataset hash (sha256)", data.dataset_hash),
        ("graph version", data.graph_version or "(bundled dataset, not a stored version)"),
        ("as of", data.params.as_of.isoformat()),
        ("providers", ", ".join(data.provider_ids)),
        (
            "simulation",
            f"{data.simulate_samples:,} samples, seed {data.seed}"
            if data.simulation
            else "not run (--simulate 0)",
        ),
        ("chokepoint threshold", f"impact >= {data.min_impact:g}"),
    ]
    rows += [(f"parameter {k}", v) for k, v in data.assessments[0].provenance.parameters]
    return rows
