"""proto <-> domain for score comparisons and alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.scoring import compare as cmp
from sovrisk.models.scoring.alerts import Alert, Threshold, ThresholdKind
from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.service import converters as conv
from sovrisk.service.grpc_gen.sovrisk.v1 import history_pb2, risk_pb2
from sovrisk.service.version_converters import record_change_to_proto

_METRIC = {
    "composite": history_pb2.SCORE_METRIC_COMPOSITE,
    "concentration": history_pb2.SCORE_METRIC_CONCENTRATION,
    "structural": history_pb2.SCORE_METRIC_STRUCTURAL,
    "geopolitical": history_pb2.SCORE_METRIC_GEOPOLITICAL,
    "export_control": history_pb2.SCORE_METRIC_EXPORT_CONTROL,
    "resilience": history_pb2.SCORE_METRIC_RESILIENCE,
    "tail": history_pb2.SCORE_METRIC_TAIL,
}
_METRIC_BACK = {v: k for k, v in _METRIC.items()}
_KIND = {
    history_pb2.THRESHOLD_KIND_ABOVE: ThresholdKind.ABOVE,
    history_pb2.THRESHOLD_KIND_BELOW: ThresholdKind.BELOW,
    history_pb2.THRESHOLD_KIND_CHANGE: ThresholdKind.CHANGE,
}
_KIND_BACK = {v: k for k, v in _KIND.items()}
_CAUSE = {
    "graph_edit": history_pb2.CAUSE_KIND_GRAPH_EDIT,
    "date_effect": history_pb2.CAUSE_KIND_DATE_EFFECT,
}


def _delta(e: cmp.Effect) -> history_pb2.ScoreDelta:
    return history_pb2.ScoreDelta(
        composite=e.composite,
        sub_scores=[history_pb2.MetricDelta(metric=_METRIC[k], delta=d) for k, d in e.sub_scores],
    )


def _full_delta(base: RiskAssessment, target: RiskAssessment) -> history_pb2.ScoreDelta:
    before = {s.key: s.score for s in base.sub_scores if s.available}
    return history_pb2.ScoreDelta(
        composite=round(target.composite - base.composite, 6),
        sub_scores=[
            history_pb2.MetricDelta(
                metric=_METRIC[s.key],
                base_value=before.get(s.key, 0.0),
                target_value=s.score if s.available else 0.0,
                delta=round((s.score if s.available else 0.0) - before.get(s.key, 0.0), 6),
            )
            for s in target.sub_scores
        ],
    )


def _point(a: RiskAssessment, version: str) -> history_pb2.AssessmentPoint:
    scores = [history_pb2.MetricDelta(metric=_METRIC["composite"], target_value=a.composite)]
    scores += [
        history_pb2.MetricDelta(metric=_METRIC[s.key], target_value=s.score)
        for s in a.sub_scores
        if s.available
    ]
    return history_pb2.AssessmentPoint(
        graph_version=version,
        as_of=conv.date_to_proto(a.provenance.as_of),
        composite=a.composite,
        scores=scores,
    )


def summary(c: cmp.Comparison) -> str:
    """A few sentences, largest measured causes first."""
    name = c.target.display_name
    parts = [
        f"{name}: composite {c.base.composite:.1f} -> {c.target.composite:.1f} "
        f"({c.total.composite:+.2f})."
    ]
    for step in c.steps:
        if not step.causes and abs(step.total.composite) < 0.05:
            continue
        title = "Graph edits" if step.name == "graph_edits" else "Date effects"
        ranked = sorted(
            step.causes,
            key=lambda x: -abs(x.effect.composite) if x.effect else 0.0,
        )
        shown = ", ".join(
            f"{x.label} ({x.effect.composite:+.2f})" if x.effect else f"{x.label} (not separable)"
            for x in ranked[:3]
        )
        more = f" and {len(ranked) - 3} more" if len(ranked) > 3 else ""
        parts.append(
            f"{title} {step.total.composite:+.2f}"
            + (f": {shown}{more}" if shown else "")
            + (
                f"; interaction {step.interaction.composite:+.2f}"
                if abs(step.interaction.composite) >= 0.05
                else ""
            )
            + "."
        )
    if c.check_changes:
        parts.append(
            "Checks changed: "
            + ", ".join(
                f"{x.id} {x.base_status or 'new'} -> {x.target_status}" for x in c.check_changes
            )
            + "."
        )
    return " ".join(parts)


def comparison_to_proto(
    c: cmp.Comparison, base_version: str, target_version: str
) -> risk_pb2.CompareAssessmentsResponse:
    status = {
        "PASS": risk_pb2.CHECK_STATUS_PASS,
        "FAIL": risk_pb2.CHECK_STATUS_FAIL,
        "INCONCLUSIVE": risk_pb2.CHECK_STATUS_INCONCLUSIVE,
    }
    return risk_pb2.CompareAssessmentsResponse(
        provider=f"providers/{c.provider}",
        base=_point(c.base, base_version),
        target=_point(c.target, target_version),
        delta=_full_delta(c.base, c.target),
        steps=[
            history_pb2.ComparisonStep(
                name=s.name,
                total=_delta(s.total),
                causes=[
                    history_pb2.ChangeCause(
                        kind=_CAUSE[x.kind],
                        label=x.label,
                        records=[record_change_to_proto(r) for r in x.records],
                        regime=f"regimes/{x.regime}" if x.regime else "",
                        measured=x.effect is not None,
                        effect=_delta(x.effect) if x.effect else None,
                    )
                    for x in s.causes
                ],
                interaction=_delta(s.interaction),
            )
            for s in c.steps
        ],
        check_changes=[
            risk_pb2.CheckChange(
                check_id=x.id,
                title=x.title,
                base_status=status.get(x.base_status.upper(), risk_pb2.CHECK_STATUS_UNSPECIFIED),
                target_status=status.get(
                    x.target_status.upper(), risk_pb2.CHECK_STATUS_UNSPECIFIED
                ),
            )
            for x in c.check_changes
        ],
        summary=summary(c),
        provenance=conv.result_provenance_to_proto(c.target.provenance),
    )


def thresholds_from_proto(items: Sequence[history_pb2.ScoreThreshold]) -> list[Threshold]:
    bad: list[FieldViolation] = []
    out: list[Threshold] = []
    for k, t in enumerate(items):
        kind = _KIND.get(t.kind)
        metric = _METRIC_BACK.get(t.metric or history_pb2.SCORE_METRIC_COMPOSITE)
        if kind is None:
            bad.append(FieldViolation(f"thresholds[{k}].kind", str(t.kind), "must be set"))
        if metric is None:
            bad.append(FieldViolation(f"thresholds[{k}].metric", str(t.metric), "unknown score"))
        if kind is not None and metric is not None:
            out.append(Threshold(metric, kind, t.value))
    if bad:
        raise InvalidParameterError(bad)
    return out


def _threshold_to_proto(t: Threshold) -> history_pb2.ScoreThreshold:
    return history_pb2.ScoreThreshold(
        metric=_METRIC[t.metric], kind=_KIND_BACK[t.kind], value=t.value
    )


def alert_to_proto(
    alert: Alert,
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    display_name: str,
) -> history_pb2.ScoreAlert:
    subs = [
        history_pb2.MetricDelta(
            metric=_METRIC[k],
            base_value=before.get(k) or 0.0,
            target_value=after.get(k) or 0.0,
            delta=round((after.get(k) or 0.0) - (before.get(k) or 0.0), 6),
        )
        for k in _METRIC
        if k != "composite" and (before.get(k) is not None or after.get(k) is not None)
    ]
    return history_pb2.ScoreAlert(
        provider=f"providers/{alert.provider}",
        threshold=_threshold_to_proto(alert.threshold),
        score=history_pb2.MetricDelta(
            metric=_METRIC[alert.threshold.metric],
            base_value=alert.before,
            target_value=alert.after,
            delta=alert.delta,
        ),
        assessment_delta=history_pb2.ScoreDelta(
            composite=round((after.get("composite") or 0.0) - (before.get("composite") or 0.0), 6),
            sub_scores=subs,
        ),
        message=alert.message(display_name),
    )
