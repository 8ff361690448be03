"""proto <-> domain conversion. The only place that knows both vocabularies.

Inbound functions validate and raise :class:`InvalidParameterError` naming the request field;
outbound functions never fail.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.type import date_pb2

from sovrisk.models.analysis.allocation import AllocationRule
from sovrisk.models.analysis.concentration import Band, BandReference
from sovrisk.models.analysis.sovereignty import Sovereignty
from sovrisk.models.engine.impacts import HORIZONS
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.schema import NodeKind, Provenance, Quality, Site, Source, SupplyEdge
from sovrisk.models.graph.series import Quarter
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring import assessment as am
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.trajectory import TrajectoryPoint
from sovrisk.models.scoring.uncertainty import COMPOSITE, Uncertainty
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, graph_pb2, risk_pb2, simulation_pb2

# -- names ----------------------------------------------------------------------------------

_NAME_RE = {
    "providers": re.compile(r"^providers/([a-z0-9][a-z0-9._-]*)$"),
    "nodes": re.compile(r"^nodes/([a-z0-9][a-z0-9._-]*)$"),
}


def parse_name(name: str, collection: str, field: str = "name") -> str:
    """``providers/aws`` -> ``aws``; anything else is INVALID_ARGUMENT on ``field``."""
    match = _NAME_RE[collection].fullmatch(name)
    if match is None:
        raise InvalidParameterError(
            [FieldViolation(field, name, f"must be a resource name '{collection}/{{id}}'")]
        )
    return match[1]


def node_name(graph: SupplyGraph, path_id: str) -> str:
    """Resource name for an id on an evidence path (nodes, providers, countries, regimes)."""
    if path_id.startswith("country:"):
        return "countries/" + path_id.removeprefix("country:")
    if path_id.startswith("regime:"):
        return "regimes/" + path_id.removeprefix("regime:")
    node = graph.nodes.get(path_id)
    if node is not None and node.kind is NodeKind.PROVIDER:
        return f"providers/{path_id}"
    return f"nodes/{path_id}"


def _path(graph: SupplyGraph, ids: Iterable[str]) -> list[str]:
    return [node_name(graph, i) for i in ids]


# -- scalars --------------------------------------------------------------------------------


def date_to_proto(value: dt.date | None) -> date_pb2.Date | None:
    if value is None:
        return None
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def date_from_proto(value: date_pb2.Date, field: str) -> dt.date | None:
    """A full calendar date, or None when the field is unset (all zero)."""
    if value.year == 0 and value.month == 0 and value.day == 0:
        return None
    shown = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    try:
        return dt.date(value.year, value.month, value.day)
    except ValueError:
        raise InvalidParameterError(
            [FieldViolation(field, shown, "must be a valid calendar date (year, month, day)")]
        ) from None


def _partial_date(text: str) -> date_pb2.Date:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` into a google.type.Date (0 = unknown part)."""
    parts = [int(p) for p in text.split("-")[:3] if p.isdigit()]
    parts += [0] * (3 - len(parts))
    return date_pb2.Date(year=parts[0], month=parts[1], day=parts[2])


_QUALITY = {
    Quality.A: common_pb2.QUALITY_A,
    Quality.B: common_pb2.QUALITY_B,
    Quality.C: common_pb2.QUALITY_C,
}
_KIND = {kind: common_pb2.NodeKind.Value(f"NODE_KIND_{kind.name}") for kind in NodeKind}
_KIND_BACK = {v: k for k, v in _KIND.items()}


def kind_from_proto(value: int, field: str = "kind") -> NodeKind | None:
    if value == common_pb2.NODE_KIND_UNSPECIFIED:
        return None
    for proto_value, kind in _KIND_BACK.items():
        if proto_value == value:
            return kind
    raise InvalidParameterError([FieldViolation(field, str(value), "unknown node kind")])


def horizon_from_proto(value: float, field: str = "horizon_weeks") -> float:
    """0 means the headline (13 weeks); otherwise one of the reporting horizons."""
    if value == 0:
        return 13.0
    if value not in HORIZONS:
        shown = ", ".join(f"{h:g}" for h in HORIZONS)
        raise InvalidParameterError(
            [FieldViolation(field, repr(value), f"must be 0 (13 weeks) or one of {shown}")]
        )
    return float(value)


def weights_from_proto(
    weights: risk_pb2.ScoringWeights, field: str = "weights"
) -> dict[str, float]:
    """Only the weights the caller set; the domain merges them with the defaults."""
    present = {field.name for field, _ in weights.ListFields()}
    return {name: float(getattr(weights, name)) for name in sorted(present)}


# -- graph ----------------------------------------------------------------------------------


def quarter_from_proto(text: str, field: str) -> Quarter | None:
    """ "YYYYQn" -> Quarter; empty -> None; INVALID_ARGUMENT naming the field otherwise."""
    if not text:
        return None
    try:
        return Quarter.parse(text)
    except ValueError:
        raise InvalidParameterError(
            [FieldViolation(field, text, "must be a quarter YYYYQn, e.g. 2026Q4")]
        ) from None


def quarter_range(engine: RiskEngine, start: str, end: str) -> tuple[Quarter, Quarter]:
    """The requested quarters; an empty end defaults to the fleet series' last quarter and
    an empty start to its first (the dataset's quarter without a series)."""
    home = Quarter.of(engine.graph.info.as_of)
    span = engine.supplements.series.fleet_span() or (home, home)
    first = quarter_from_proto(start, "start_quarter") or span[0]
    last = quarter_from_proto(end, "end_quarter") or span[1]
    return first, last


def provenance_to_proto(p: Provenance) -> common_pb2.Provenance:
    return common_pb2.Provenance(
        source_ids=list(p.sources), quality=_QUALITY[p.quality], as_of=date_to_proto(p.as_of)
    )


def source_to_proto(s: Source) -> common_pb2.Source:
    return common_pb2.Source(
        id=s.id,
        title=s.title,
        publisher=s.publisher,
        publish_date=_partial_date(s.date),
        url=s.url,
        quality=_QUALITY[s.quality],
        notes=s.notes,
    )


def graph_to_proto(graph: SupplyGraph) -> graph_pb2.Graph:
    info = graph.info
    counts = graph.counts_by_kind()
    return graph_pb2.Graph(
        name="graph",
        version_id=graph.version_id,
        content_hash=graph.content_hash,
        dataset=graph_pb2.DatasetInfo(
            name=info.name,
            version=info.version,
            as_of=date_to_proto(info.as_of),
            description=info.description,
            licence=info.licence,
            attribution=list(info.attribution),
        ),
        kind_counts=[
            graph_pb2.KindCount(kind=_KIND[NodeKind(k)], count=v) for k, v in counts.items()
        ],
        supply_edge_count=len(graph.edges),
        site_count=sum(len(s) for s in graph.sites.values()),
        sources=[source_to_proto(s) for s in graph.sources.values()],
    )


def _link(graph: SupplyGraph, edge: SupplyEdge, other: str) -> graph_pb2.SupplyLink:
    node = graph.nodes[other]
    return graph_pb2.SupplyLink(
        category=edge.category,
        node=f"nodes/{other}",
        display_name=node.name,
        kind=_KIND[node.kind],
        share=edge.share,
        share_range=common_pb2.ShareRange(low=edge.share_low, high=edge.share_high),
        provenance=provenance_to_proto(edge.provenance),
        notes=edge.notes,
    )


def _site(graph: SupplyGraph, site: Site) -> graph_pb2.Site:
    country = graph.countries.get(site.country)
    return graph_pb2.Site(
        country=site.country,
        country_display_name=country.name if country else site.country,
        share=site.share,
        site_name=site.site_name,
        provenance=provenance_to_proto(site.provenance),
        notes=site.notes,
    )


def node_to_proto(graph: SupplyGraph, node_id: str, *, full: bool = True) -> graph_pb2.Node:
    """A node; with ``full`` its suppliers, consumers, sites and resolved sources."""
    node = graph.nodes[node_id]
    message = graph_pb2.Node(
        name=f"nodes/{node.id}",
        display_name=node.name,
        kind=_KIND[node.kind],
        owner=node.owner,
        hq_country=node.hq_country,
        layer=node.layer,
        tags=sorted(node.tags),
        provenance=provenance_to_proto(node.provenance),
        notes=node.notes,
    )
    if not full:
        return message
    inputs, outputs = graph.inputs(node_id), graph.outputs(node_id)
    sites = graph.sites.get(node_id, ())
    message.suppliers.extend(_link(graph, e, e.supplier) for e in inputs)
    message.consumers.extend(_link(graph, e, e.consumer) for e in outputs)
    message.sites.extend(_site(graph, s) for s in sites)
    cited: set[str] = set(node.provenance.sources)
    for record in (*inputs, *outputs):
        cited.update(record.provenance.sources)
    for site in sites:
        cited.update(site.provenance.sources)
    message.sources.extend(source_to_proto(graph.sources[s]) for s in sorted(cited))
    return message


# -- risk -----------------------------------------------------------------------------------

_BAND = {
    am.RiskBand.LOW: risk_pb2.RISK_BAND_LOW,
    am.RiskBand.MODERATE: risk_pb2.RISK_BAND_MODERATE,
    am.RiskBand.HIGH: risk_pb2.RISK_BAND_HIGH,
    am.RiskBand.CRITICAL: risk_pb2.RISK_BAND_CRITICAL,
}


def band_to_proto(band: am.RiskBand) -> risk_pb2.RiskBand.ValueType:
    return _BAND[band]


_SUB = {
    "concentration": risk_pb2.SUB_SCORE_KEY_CONCENTRATION,
    "structural": risk_pb2.SUB_SCORE_KEY_STRUCTURAL,
    "geopolitical": risk_pb2.SUB_SCORE_KEY_GEOPOLITICAL,
    "export_control": risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL,
    "resilience": risk_pb2.SUB_SCORE_KEY_RESILIENCE,
    "tail": risk_pb2.SUB_SCORE_KEY_TAIL,
}
_STATUS = {
    am.CheckStatus.PASS: risk_pb2.CHECK_STATUS_PASS,
    am.CheckStatus.FAIL: risk_pb2.CHECK_STATUS_FAIL,
    am.CheckStatus.INCONCLUSIVE: risk_pb2.CHECK_STATUS_INCONCLUSIVE,
}
_REGIME_STATUS = {
    name: risk_pb2.RegimeStatus.Value(f"REGIME_STATUS_{name.upper()}")
    for name in ("in_force", "suspended", "not_yet", "ended", "lapsed")
}
_REGIME_ACTION = {
    name: risk_pb2.RegimeAction.Value(f"REGIME_ACTION_{name.upper()}")
    for name in ("restrict", "loosen", "suspend")
}
_REGIME_MEASURE = {
    name: risk_pb2.RegimeMeasure.Value(f"REGIME_MEASURE_{name.upper()}")
    for name in ("export", "import")
}
_REFERENCE = {
    BandReference.DOJ_2010: risk_pb2.HHI_BAND_REFERENCE_DOJ_2010,
    BandReference.DOJ_2023: risk_pb2.HHI_BAND_REFERENCE_DOJ_2023,
    BandReference.EU_2021: risk_pb2.HHI_BAND_REFERENCE_EU_2021,
}


def result_provenance_to_proto(p: am.ResultProvenance) -> common_pb2.ResultProvenance:
    return common_pb2.ResultProvenance(
        model_version=p.model_version,
        dataset_name=p.dataset_name,
        dataset_version=p.dataset_version,
        dataset_hash=p.dataset_hash,
        as_of=date_to_proto(p.as_of),
        parameters=dict(p.parameters),
        seed=p.seed,
        graph_version=p.graph_version,
    )


def _sub_score(s: am.SubScore) -> risk_pb2.SubScore:
    return risk_pb2.SubScore(
        key=_SUB[s.key],
        score=s.score,
        weight=s.weight,
        contribution=s.contribution,
        explanation=s.explanation,
        data_missing=not s.available,
    )


def _bands(bands: Sequence[Band]) -> list[risk_pb2.HhiBand]:
    return [
        risk_pb2.HhiBand(
            reference=_REFERENCE[b.reference],
            citation=b.reference.value,
            label=b.label,
            threshold=b.threshold,
        )
        for b in bands
    ]


def _share(s: am.Share) -> risk_pb2.Share:
    return risk_pb2.Share(key=s.key, display_name=s.display_name, share=s.share)


def _layer(lc: am.LayerConcentration) -> risk_pb2.LayerConcentration:
    return risk_pb2.LayerConcentration(
        layer=lc.layer,
        weight=lc.weight,
        score=lc.score,
        firm_hhi=lc.firm_hhi,
        country_hhi=lc.country_hhi,
        firm_n_eff=lc.firm_n_eff,
        country_n_eff=lc.country_n_eff,
        firm_cr1=_share(lc.firm_top),
        country_cr1=_share(lc.country_top),
        cr1_over_65=lc.cr1_over_65,
        firm_bands=_bands(lc.firm_bands),
        country_bands=_bands(lc.country_bands),
        firm_shares=[_share(s) for s in lc.firm_shares],
        country_shares=[_share(s) for s in lc.country_shares],
    )


#: The reporting horizons of every curve of an assessment (models.engine.impacts.HORIZONS).
CURVE_WEEKS = HORIZONS


def curve_to_proto(values: Sequence[float]) -> list[common_pb2.HorizonValue]:
    return [
        common_pb2.HorizonValue(horizon_weeks=h, value=v)
        for h, v in zip(CURVE_WEEKS, values, strict=False)
    ]


def _veto(j: am.JurisdictionVeto) -> risk_pb2.JurisdictionVeto:
    return risk_pb2.JurisdictionVeto(
        country=j.country,
        display_name=j.display_name,
        veto=j.veto,
        foreign=j.foreign,
        curve=curve_to_proto(j.curve),
        long_run_veto=j.long_run,
    )


def loss_units_to_proto(u: am.LossUnits | None) -> risk_pb2.LossUnits | None:
    if u is None:
        return None
    return risk_pb2.LossUnits(
        expected_annual_loss=u.expected_annual_loss,
        expected_annual_loss_se=u.expected_annual_loss_se,
        cvar95=u.cvar95,
        return_period_losses=[
            simulation_pb2.ReturnPeriodLoss(years=y, loss=v) for y, v in u.return_period_losses
        ],
        supply_weeks_per_year=u.supply_weeks_per_year,
        capex_usd_bn=u.capex_usd_bn,
        capex_at_risk_usd_bn=u.capex_at_risk_usd_bn,
        intake_units=u.intake_units,
        accelerators_lost_per_year=u.accelerators_lost_per_year,
        samples=u.samples,
        seed=u.seed,
    )


def _category(c: am.CategoryConcentration) -> risk_pb2.CategoryConcentration:
    return risk_pb2.CategoryConcentration(
        category=c.category,
        flow=c.flow,
        consumers=[f"nodes/{n}" for n in c.consumers],
        firm_hhi=c.firm_hhi,
        country_hhi=c.country_hhi,
        firm_cr1=_share(c.firm_top),
        country_cr1=_share(c.country_top),
        cr1_over_65=c.cr1_over_65,
    )


#: The RiskAssessment fields a BASIC view keeps (AIP-157): the headline, not the lists.
BASIC_ASSESSMENT_FIELDS = frozenset(
    {
        "provider",
        "display_name",
        "home_country",
        "composite",
        "band",
        "score_interpretation",
        "risk_vector",
        "horizon_weeks",
        "loss_units",
        "sub_scores",
        "floor_alpha",
        "floor_uplift",
        "retained_capacity",
        "floor_applied",
        "critical_threshold",
        "geopolitical_expected_loss",
        "bound_now",
        "largest_foreign_veto",
        "coverage",
        "provenance",
        "quarter",
        "series_notes",
        "uncertainty",
        "notes",
        "spof_count",
        "near_spof_count",
        "singleton_cut_count",
        "pair_cut_count",
        "jurisdictions_over_half",
    }
)


def assessment_to_proto(
    graph: SupplyGraph,
    a: am.RiskAssessment,
    uncertainty: Uncertainty | None = None,
    *,
    basic: bool = False,
) -> risk_pb2.RiskAssessment:
    """The assessment as its message; ``basic``: the headline fields only (AIP-157 BASIC),
    without converting the rest (a FULL message is ~100x larger and most of the time)."""
    fields: dict[str, Any] = {
        "uncertainty": uncertainty_to_proto(uncertainty, a.provider),
        "provider": f"providers/{a.provider}",
        "display_name": a.display_name,
        "home_country": a.home_country,
        "composite": a.composite,
        "band": _BAND[a.band],
        "score_interpretation": a.score_interpretation,
        "risk_vector": a.risk_vector,
        "horizon_weeks": a.horizon_weeks,
        "loss_units": loss_units_to_proto(a.loss_units),
        "sub_scores": [_sub_score(s) for s in a.sub_scores],
        "floor_alpha": a.floor_alpha,
        "floor_uplift": a.floor_uplift,
        "retained_capacity": a.retained_capacity,
        "floor_applied": a.floor_applied,
        "critical_threshold": a.critical_threshold,
        "spof_count": a.spof_count,
        "near_spof_count": a.near_spof_count,
        "singleton_cut_count": a.singleton_cuts,
        "pair_cut_count": a.pair_cuts,
        "geopolitical_expected_loss": a.geopolitical_expected_loss,
        "bound_now": a.bound_now,
        "largest_foreign_veto": _veto(a.largest_foreign_veto) if a.largest_foreign_veto else None,
        "jurisdictions_over_half": a.jurisdictions_over_half,
        "coverage": risk_pb2.DataCoverage(
            flow_share_a=a.coverage.flow_share_a,
            flow_share_b=a.coverage.flow_share_b,
            flow_share_c=a.coverage.flow_share_c,
            low_quality_flow_share=a.coverage.flow_share_c,
            edges_total=a.coverage.edges_total,
            edges_with_range=a.coverage.edges_with_range,
            nodes_total=a.coverage.nodes_total,
            notes=a.coverage.notes,
            sites_share_ab=a.coverage.sites_share_ab,
            regimes_share_ab=a.coverage.regimes_share_ab,
            events_share_ab=a.coverage.events_share_ab,
            overall_share_ab=a.coverage.overall_share_ab,
        ),
        "provenance": result_provenance_to_proto(a.provenance),
        "quarter": a.quarter,
        "series_notes": list(a.series_notes),
        "notes": list(a.notes),
    }
    if not basic:
        fields.update(
            {
                "layers": [_layer(lc) for lc in a.layers],
                "categories": [_category(c) for c in a.categories],
                "structural_impacts": [
                    risk_pb2.NodeImpact(
                        node=node_name(graph, i.node),
                        display_name=i.display_name,
                        kind=_KIND[NodeKind(i.kind)],
                        impact=i.impact,
                        is_spof=i.is_spof,
                        evidence_path=_path(graph, i.evidence_path),
                        aggregate_market=i.aggregate_market,
                        near_spof=i.near_spof,
                        headline_impact=i.headline,
                        curve=curve_to_proto(i.curve),
                    )
                    for i in a.structural_impacts
                ],
                "cut_sets": [
                    risk_pb2.CutSet(
                        nodes=[f"nodes/{n}" for n in c.nodes],
                        retained=c.retained,
                        aggregate_market=c.aggregate_market,
                    )
                    for c in a.cut_sets
                ],
                "contention": [
                    risk_pb2.ContentionExposure(
                        bottleneck=c.bottleneck,
                        nodes=[f"nodes/{n}" for n in c.nodes],
                        demand_share=c.demand_share,
                        dependence=c.dependence,
                        shortfalls=[
                            risk_pb2.ShortfallOutcome(fraction=f, lost=lost)
                            for f, lost in c.shortfalls
                        ],
                    )
                    for c in a.contention
                ],
                "firm_impacts": [
                    risk_pb2.FirmImpact(
                        firm=f.firm, impact=f.impact, nodes=[f"nodes/{n}" for n in f.nodes]
                    )
                    for f in a.firm_impacts
                ],
                "country_impacts": [
                    risk_pb2.CountryImpact(
                        country=c.country,
                        display_name=c.display_name,
                        impact=c.impact,
                        country_risk=c.country_risk,
                        evidence_path=_path(graph, c.evidence_path),
                        blockade_impact=c.blockade,
                        site_loss_curve=curve_to_proto(c.site_loss_curve),
                        blockade_curve=curve_to_proto(c.blockade_curve),
                        long_run_impact=c.long_run,
                    )
                    for c in a.country_impacts
                ],
                "geopolitical_contributions": [
                    risk_pb2.CountryContribution(
                        country=c.country,
                        display_name=c.display_name,
                        exposure=c.exposure,
                        country_risk=c.country_risk,
                        contribution=c.contribution,
                        expected_loss=c.expected_loss,
                        events=list(c.events),
                    )
                    for c in a.geopolitical_contributions
                ],
                "regimes": [
                    risk_pb2.RegimeExposure(
                        regime=f"regimes/{r.regime}",
                        display_name=r.display_name,
                        issuer=r.issuer,
                        citation=r.citation,
                        in_force=r.in_force,
                        binds_provider=r.binds_provider,
                        veto=r.veto,
                        reached_node_count=r.reached_nodes,
                        effective_from=date_to_proto(r.effective_from),
                        effective_to=date_to_proto(r.effective_to),
                        curve=curve_to_proto(r.curve),
                        status=_REGIME_STATUS.get(r.status, risk_pb2.REGIME_STATUS_UNSPECIFIED),
                        action=_REGIME_ACTION.get(r.action, risk_pb2.REGIME_ACTION_UNSPECIFIED),
                        measure=_REGIME_MEASURE.get(r.measure, risk_pb2.REGIME_MEASURE_UNSPECIFIED),
                        suspended_by=[f"regimes/{x}" for x in r.suspended_by],
                        replaced_by=[f"regimes/{x}" for x in r.replaced_by],
                        replaces=[f"regimes/{x}" for x in r.replaces],
                        suspends=[f"regimes/{x}" for x in r.suspends],
                    )
                    for r in a.regimes
                ],
                "jurisdictions": [_veto(j) for j in a.jurisdictions],
                "checks": [
                    risk_pb2.Check(
                        id=c.id,
                        title=c.title,
                        status=_STATUS[c.status],
                        reason=c.reason,
                        evidence_path=_path(graph, c.evidence_path),
                        remediation=c.remediation,
                        observed=c.observed,
                        threshold=c.threshold,
                    )
                    for c in a.checks
                ],
                "sovereignty": sovereignty_to_proto(a.sovereignty),
                "capacity": [pool_shortfall_to_proto(p) for p in a.capacity],
            }
        )
    return risk_pb2.RiskAssessment(**fields)


RULE_TO_PROTO = {
    AllocationRule.PRO_RATA: common_pb2.ALLOCATION_RULE_PRO_RATA,
    AllocationRule.RESERVATIONS_FIRST: common_pb2.ALLOCATION_RULE_RESERVATIONS_FIRST,
    AllocationRule.CUSTOM_FIRST: common_pb2.ALLOCATION_RULE_CUSTOM_FIRST,
    AllocationRule.PRIORITY: common_pb2.ALLOCATION_RULE_PRIORITY,
}
RULE_FROM_PROTO = {v: k for k, v in RULE_TO_PROTO.items()}


def rule_from_proto(value: int, field: str = "allocation_rule") -> AllocationRule | None:
    """None for UNSPECIFIED; INVALID_ARGUMENT for an unknown enum number."""
    if value == common_pb2.ALLOCATION_RULE_UNSPECIFIED:
        return None
    if value not in RULE_FROM_PROTO:
        raise InvalidParameterError([FieldViolation(field, str(value), "unknown allocation rule")])
    return RULE_FROM_PROTO[value]  # type: ignore[index]


def sovereignty_to_proto(s: Sovereignty | None) -> risk_pb2.Sovereignty | None:
    if s is None:
        return None
    return risk_pb2.Sovereignty(
        own_silicon_share=s.own_silicon_share,
        own_chips=[f"nodes/{c}" for c in s.own_chips],
        largest_merchant=s.largest_merchant,
        largest_merchant_share=s.largest_merchant_share,
        shared_exposure=s.shared_exposure,
        shared_chokepoints=[
            risk_pb2.SharedChokepoint(
                firm=c.firm, merchant_impact=c.merchant_impact, own_impact=c.own_impact
            )
            for c in s.shared_chokepoints
        ],
        threshold=s.threshold,
        horizon_weeks=s.horizon_weeks,
    )


def pool_shortfall_to_proto(p: am.PoolShortfall) -> risk_pb2.PoolShortfall:
    msg = risk_pb2.PoolShortfall(
        pool=p.pool,
        quarter=p.quarter,
        unit=p.unit,
        output=p.output,
        shortfalls=[
            risk_pb2.RuleShortfall(rule=RULE_TO_PROTO[AllocationRule(rule)], shortfall=value)
            for rule, value in p.shortfall
        ],
        note=p.note,
    )
    if p.capacity is not None:
        msg.capacity = p.capacity
    if p.yield_ is not None:
        msg.yield_fraction = p.yield_
    if p.demand is not None:
        msg.demand = p.demand
    return msg


def trajectory_row_to_proto(t: TrajectoryPoint) -> risk_pb2.TrajectoryRow:
    a = t.assessment
    msg = risk_pb2.TrajectoryRow(
        quarter=t.quarter,
        as_of=date_to_proto(a.provenance.as_of),
        provider=f"providers/{t.provider}",
        composite=a.composite,
        band=_BAND[a.band],
        sub_scores=[_sub_score(s) for s in a.sub_scores],
        loss_units=loss_units_to_proto(a.loss_units),
        sovereignty=sovereignty_to_proto(a.sovereignty),
        capacity=[pool_shortfall_to_proto(p) for p in a.capacity],
        notes=list(a.series_notes),
        risk_vector=a.risk_vector,
    )
    if t.own_silicon_unit_share is not None:
        msg.own_silicon_unit_share = t.own_silicon_unit_share
    if t.new_units is not None:
        msg.new_units = t.new_units
    return msg


def uncertainty_to_proto(u: Uncertainty | None, provider: str) -> risk_pb2.ScoreUncertainty | None:
    """One provider's intervals, rank certainty and pairwise orders (None without draws)."""
    if u is None:
        return None
    p = u.of(provider)

    def interval(key: str) -> risk_pb2.ScoreInterval:
        i = p.interval(key)
        return risk_pb2.ScoreInterval(point=i.point, low=i.low, high=i.high)

    return risk_pb2.ScoreUncertainty(
        draws=u.draws,
        seed=u.seed,
        composite=interval(COMPOSITE),
        sub_scores=[
            risk_pb2.SubScoreInterval(key=_SUB[key], interval=interval(key))
            for key in _SUB
            if any(i.key == key for i in p.intervals)
        ],
        rank=p.rank,
        rank_certain=p.rank_certain,
        rank_low=p.rank_low,
        rank_high=p.rank_high,
        orders=pair_orders_to_proto(u, provider),
        notes=list(u.notes),
    )


def pair_orders_to_proto(
    u: Uncertainty | None, provider: str | None = None
) -> list[risk_pb2.PairOrder]:
    """Every pair's order probability (only the pairs ``provider`` is in, when given)."""
    if u is None:
        return []
    return [
        risk_pb2.PairOrder(
            higher=f"providers/{o.higher}", lower=f"providers/{o.lower}", probability=o.probability
        )
        for o in u.pairs
        if provider is None or provider in (o.higher, o.lower)
    ]


def provider_score_to_proto(
    a: am.RiskAssessment, rank: int, uncertainty: Uncertainty | None = None
) -> risk_pb2.ProviderScore:
    return risk_pb2.ProviderScore(
        uncertainty=uncertainty_to_proto(uncertainty, a.provider),
        provider=f"providers/{a.provider}",
        display_name=a.display_name,
        rank=rank,
        composite=a.composite,
        band=_BAND[a.band],
        sub_scores=[_sub_score(s) for s in a.sub_scores],
        floor_uplift=a.floor_uplift,
        risk_vector=a.risk_vector,
        home_country=a.home_country,
        loss_units=loss_units_to_proto(a.loss_units),
        floor_applied=a.floor_applied,
    )


def firm_slug(firm: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", firm.lower()).strip("-")


def chokepoint_name(key: str, kind: int) -> str:
    """Resource-style name of a chokepoint of ``kind`` (a ``ChokepointKind`` value)."""
    if kind == risk_pb2.CHOKEPOINT_KIND_COUNTRY:
        return f"countries/{key}"
    if kind == risk_pb2.CHOKEPOINT_KIND_FIRM:
        return f"firms/{firm_slug(key)}"
    return f"nodes/{key}"


def chokepoint_to_proto(
    graph: SupplyGraph,
    key: str,
    impacts: Sequence[tuple[str, float]],
    *,
    kind: int,
    rank: int,
    min_impact: float,
) -> risk_pb2.Chokepoint:
    """One ranked chokepoint; ``kind`` is a ``ChokepointKind`` value."""
    values = [v for _, v in impacts]
    if kind == risk_pb2.CHOKEPOINT_KIND_COUNTRY:
        country = graph.countries.get(key)
        name, display = f"countries/{key}", country.name if country else key
        node_kind = common_pb2.NODE_KIND_COUNTRY
    elif kind == risk_pb2.CHOKEPOINT_KIND_FIRM:
        name, display, node_kind = f"firms/{firm_slug(key)}", key, common_pb2.NODE_KIND_UNSPECIFIED
    else:
        node = graph.nodes[key]
        name, display, node_kind = f"nodes/{key}", node.name, _KIND[node.kind]
    return risk_pb2.Chokepoint(
        name=name,
        display_name=display,
        chokepoint_kind=kind,  # type: ignore[arg-type]
        node_kind=node_kind,
        providers_cut=sum(1 for v in values if v >= min_impact - 1e-12),
        mean_impact=sum(values) / len(values) if values else 0.0,
        max_impact=max(values, default=0.0),
        provider_impacts=[
            risk_pb2.ProviderImpact(
                provider=f"providers/{p}", display_name=graph.nodes[p].name, impact=v
            )
            for p, v in sorted(impacts, key=lambda pv: (-pv[1], pv[0]))
        ],
        rank=rank,
    )


def canonical_dict(message: Message) -> dict[str, Any]:
    """``message`` in the proto JSON mapping with every map's keys in sorted order: protobuf
    iterates maps in hash order, which differs between processes, and the same inputs must
    give the same bytes."""
    doc = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _sort_maps(doc, message.DESCRIPTOR)
    return doc


def _sort_maps(doc: dict[str, Any], descriptor: Any) -> None:
    for field in descriptor.fields:
        value = doc.get(field.json_name)
        if value is None or field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            doc[field.json_name] = dict(sorted(value.items()))
            entry_value = field.message_type.fields_by_name["value"]
            if entry_value.message_type is not None:
                for item in doc[field.json_name].values():
                    if isinstance(item, dict):
                        _sort_maps(item, entry_value.message_type)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _sort_maps(item, field.message_type)
        elif isinstance(value, dict):
            _sort_maps(value, field.message_type)


def assessments_json(
    graph: SupplyGraph,
    assessments: Sequence[am.RiskAssessment],
    uncertainty: Uncertainty | None = None,
) -> str:
    """Assessments in the canonical proto JSON mapping (one object, or a list for several)."""
    docs = [canonical_dict(assessment_to_proto(graph, a, uncertainty)) for a in assessments]
    return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, sort_keys=False)
