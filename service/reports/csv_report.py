"""CSV: one row per provider, riskiest first, in a fixed column order (docs/reports.md)."""

from __future__ import annotations

import csv
import io

from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.params import SUB_SCORES
from sovrisk.service.reports.data import ReportData
from sovrisk.service.reports.mapping import ARIBA_CATEGORIES, ariba_1_100, coupa_level

#: The columns, in order. Never reorder: downstream imports map columns by position too.
COLUMNS: tuple[str, ...] = (
    "rank",
    "provider",
    "display_name",
    "home_country",
    "composite",
    "band",
    *SUB_SCORES,
    "floor_uplift",
    "spof_count",
    "top_country",
    "top_country_impact",
    "largest_foreign_veto_country",
    "largest_foreign_veto",
    "checks_failed",
    "checks_inconclusive",
    "flow_share_quality_c",
    *(name for name, _ in ARIBA_CATEGORIES),
    "coupa_inherent_risk",
    "coupa_inherent_risk_score",
    "coupa_mitigation_credit",
    "coupa_residual_risk",
    "coupa_residual_risk_score",
    "sim_samples",
    "sim_mean_loss",
    "sim_p95_loss",
    "sim_cvar95",
    "sim_prob_below_half",
    "risk_vector",
    "model_version",
    "dataset_name",
    "dataset_version",
    "dataset_hash",
    "graph_version",
    "as_of",
    "seed",
    # appended (never reorder): the composite's 90 % interval and the rank's certainty
    "composite_low",
    "composite_high",
    "rank_certain",
    "interval_draws",
)


def _num(value: float) -> str:
    """Fixed 6 decimals: scores are kept to 1e-6, so this round-trips them exactly."""
    return f"{value:.6f}"


def _row(data: ReportData, rank: int, a: RiskAssessment) -> dict[str, str]:
    subs = {s.key: s for s in a.sub_scores}
    top = a.country_impacts[0] if a.country_impacts else None
    veto = a.largest_foreign_veto
    mit = data.mitigations[a.provider]
    row: dict[str, str] = {
        "rank": str(rank),
        "provider": a.provider,
        "display_name": a.display_name,
        "home_country": a.home_country,
        "composite": _num(a.composite),
        "band": a.band.value,
        "floor_uplift": _num(a.floor_uplift),
        "spof_count": str(a.spof_count),
        "top_country": top.country if top else "",
        "top_country_impact": _num(top.impact) if top else "",
        "largest_foreign_veto_country": veto.country if veto else "",
        "largest_foreign_veto": _num(veto.veto) if veto else "",
        "checks_failed": str(sum(1 for c in a.checks if c.status.value == "fail")),
        "checks_inconclusive": str(sum(1 for c in a.checks if c.status.value == "inconclusive")),
        "flow_share_quality_c": _num(a.coverage.flow_share_c),
        "coupa_inherent_risk": coupa_level(mit.inherent),
        "coupa_inherent_risk_score": _num(mit.inherent),
        "coupa_mitigation_credit": _num(mit.credit),
        "coupa_residual_risk": coupa_level(mit.residual),
        "coupa_residual_risk_score": _num(mit.residual),
        "risk_vector": a.risk_vector,
        "model_version": a.provenance.model_version,
        "dataset_name": a.provenance.dataset_name,
        "dataset_version": a.provenance.dataset_version,
        "dataset_hash": a.provenance.dataset_hash,
        "graph_version": a.provenance.graph_version,
        "as_of": a.provenance.as_of.isoformat(),
        "seed": str(data.seed) if data.simulation else "",
    }
    u = data.uncertainty
    if u is not None:
        p = u.of(a.provider)
        i = p.interval("composite")
        row |= {
            "composite_low": _num(i.low),
            "composite_high": _num(i.high),
            "rank_certain": "true" if p.rank_certain else "false",
            "interval_draws": str(u.draws),
        }
    for key in SUB_SCORES:
        row[key] = _num(subs[key].score) if subs[key].available else ""
    for name, key in ARIBA_CATEGORIES:
        score = a.composite if key == "composite" else None
        if key != "composite" and subs[key].available:
            score = subs[key].score
        value = ariba_1_100(score)
        row[name] = "" if value is None else str(value)
    sim = data.simulation
    dist = next((d for d in sim.distributions if d.provider == a.provider), None) if sim else None
    row["sim_samples"] = str(sim.result.n_samples) if sim else ""
    row["sim_mean_loss"] = _num(dist.risk.mean_loss) if dist else ""
    row["sim_p95_loss"] = _num(dist.risk.p95) if dist else ""
    row["sim_cvar95"] = _num(dist.risk.cvar95) if dist else ""
    row["sim_prob_below_half"] = _num(dist.risk.prob_shortfall) if dist else ""
    return row


def render(data: ReportData) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for rank, a in enumerate(data.assessments, start=1):
        writer.writerow(_row(data, rank, a))
    return out.getvalue().encode("utf-8")
