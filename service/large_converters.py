"""Edge-table scores (``models.scoring.large``) to the RiskAssessment / ProviderScore messages.

The messages are the full model's: the composite is the structural sub-score (the only one
structure alone gives), the other sub-scores are present with ``data_missing`` and say why,
``notes`` say what was exact, bounded and sampled, and the provenance's parameters name the
method, budget, samples and seed.
"""

from __future__ import annotations

from sovrisk.models.scoring.assessment import SCORE_INTERPRETATION
from sovrisk.models.scoring.large import LargeAssessment, LargeGraphModel
from sovrisk.models.scoring.params import MODEL_VERSION
from sovrisk.service.converters import band_to_proto
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, risk_pb2

_MISSING = (
    (risk_pb2.SUB_SCORE_KEY_CONCENTRATION, "no owners or countries in an edge table"),
    (risk_pb2.SUB_SCORE_KEY_GEOPOLITICAL, "no country risk data in an edge table"),
    (risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL, "no regimes in an edge table"),
    (risk_pb2.SUB_SCORE_KEY_RESILIENCE, "no resilience data in an edge table"),
    (risk_pb2.SUB_SCORE_KEY_TAIL, "no disruption events in an edge table"),
)


def _sub_scores(a: LargeAssessment) -> list[risk_pb2.SubScore]:
    structural = risk_pb2.SubScore(
        key=risk_pb2.SUB_SCORE_KEY_STRUCTURAL,
        score=a.structural,
        weight=1.0,
        contribution=a.structural,
        explanation=(
            f"{a.spof_count} single point(s) of failure"
            + ("" if a.spofs_complete else " (at least: the sweep ran out of budget)")
            + f"; the {len(a.top_impacts)} largest "
            "long-run knockout losses "
            + ", ".join(f"{i.node} {100 * i.loss:.1f} %" for i in a.top_impacts[:3])
            + ("" if a.top_exact else " (search ended by its budget: not exact)")
            + "."
        ),
    )
    missing = [
        risk_pb2.SubScore(key=key, data_missing=True, explanation=f"Unavailable: {why}.")
        for key, why in _MISSING
    ]
    return [structural, *missing]


def _provenance(model: LargeGraphModel) -> common_pb2.ResultProvenance:
    return common_pb2.ResultProvenance(
        model_version=MODEL_VERSION,
        dataset_name="edge table",
        dataset_version=f"edge-table+{model.digest[:12]}",
        dataset_hash=model.digest,
        parameters=model.parameters,
        graph_version=model.name,
    )


def large_assessment_to_proto(
    model: LargeGraphModel, a: LargeAssessment
) -> risk_pb2.RiskAssessment:
    return risk_pb2.RiskAssessment(
        provider=f"providers/{a.provider}",
        display_name=a.provider,
        composite=a.structural,
        band=band_to_proto(a.band),
        score_interpretation=SCORE_INTERPRETATION,
        sub_scores=_sub_scores(a),
        structural_impacts=[
            risk_pb2.NodeImpact(
                node=f"nodes/{i.node}",
                display_name=i.node,
                impact=i.loss,
                is_spof=i.is_spof,
                near_spof=0.95 <= i.loss < 1.0 - 1e-9,
                headline_impact=i.loss,
            )
            for i in a.top_impacts
        ],
        spof_count=a.spof_count,
        near_spof_count=a.near_spof_count,
        provenance=_provenance(model),
        notes=[*a.notes, "Single points of failure: " + (", ".join(a.spofs[:50]) or "none") + "."],
    )


def large_score_to_proto(a: LargeAssessment, rank: int) -> risk_pb2.ProviderScore:
    return risk_pb2.ProviderScore(
        provider=f"providers/{a.provider}",
        display_name=a.provider,
        rank=rank,
        composite=a.structural,
        band=band_to_proto(a.band),
        sub_scores=_sub_scores(a),
    )


def large_provenance(model: LargeGraphModel) -> common_pb2.ResultProvenance:
    return _provenance(model)
