"""proto <-> domain for what-if scenarios (``RiskService.RunScenario``)."""

from __future__ import annotations

import datetime as dt

from sovrisk.models.engine.impacts import CountryEvent
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.schema import Provenance, Quality, Regime
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring import scenarios as sc
from sovrisk.service import converters as conv
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, risk_pb2, scenario_pb2


def _node(name: str, field: str) -> str:
    return conv.parse_name(name, "nodes", field)


def _regime(p: scenario_pb2.HypotheticalRegime, path: str) -> Regime:
    start = conv.date_from_proto(p.effective_from, f"{path}.effective_from") or dt.date.min
    end = conv.date_from_proto(p.effective_to, f"{path}.effective_to")
    kinds = set()
    for k, value in enumerate(p.reach_kinds):
        kind = conv.kind_from_proto(value, f"{path}.reach_kinds[{k}]")
        if kind is not None:
            kinds.add(kind)
    return Regime(
        id=p.id,
        issuer=p.issuer,
        name=p.display_name or p.id,
        instrument="hypothetical",
        citation="what-if scenario",
        published=None,
        effective_from=start,
        effective_to=end,
        severity=p.severity,
        reach_kinds=frozenset(kinds),
        reach_tags=frozenset(p.reach_tags),
        reach_nodes=frozenset(
            _node(n, f"{path}.reach_nodes[{k}]") for k, n in enumerate(p.reach_nodes)
        ),
        origin_countries=frozenset(p.origin_countries),
        destination_countries=frozenset(p.destination_countries),
        provenance=Provenance((sc.SCENARIO_SOURCE,), Quality.C, start),
    )


def _perturbation(p: scenario_pb2.Perturbation, path: str) -> sc.Perturbation:
    which = p.WhichOneof("perturbation")
    if which == "node":
        n = p.node
        return sc.DegradeNode(
            _node(n.node, f"{path}.node.node"),
            n.fraction_lost if n.HasField("fraction_lost") else 1.0,
            n.duration_weeks,
        )
    if which == "country":
        c = p.country
        if c.kind not in common_pb2.CountryEventKind.values():
            raise InvalidParameterError(
                [FieldViolation(f"{path}.country.kind", str(c.kind), "unknown country event")]
            )
        return sc.DegradeCountry(
            c.country,
            c.fraction_lost if c.HasField("fraction_lost") else 1.0,
            c.duration_weeks,
            CountryEvent.BLOCKADE
            if c.kind == common_pb2.COUNTRY_EVENT_KIND_BLOCKADE
            else CountryEvent.SITE_LOSS,
        )
    if which == "activate_regime":
        r = p.activate_regime
        match = r.regime.removeprefix("regimes/")
        if not r.regime.startswith("regimes/") or not match:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        f"{path}.activate_regime.regime",
                        r.regime,
                        "must be a resource name 'regimes/{id}'",
                    )
                ]
            )
        return sc.ActivateRegime(
            match, r.severity if r.HasField("severity") else None, r.duration_weeks
        )
    if which == "add_regime":
        return sc.AddRegime(_regime(p.add_regime, f"{path}.add_regime"))
    if which == "share":
        s = p.share
        return sc.SetShare(
            _node(s.consumer, f"{path}.share.consumer"),
            s.category,
            _node(s.supplier, f"{path}.share.supplier"),
            s.share,
        )
    if which == "parameter":
        return sc.SetParameter(p.parameter.name, p.parameter.value)
    if which == "pool":
        return sc.DegradePool(
            p.pool.pool,
            p.pool.fraction_lost if p.pool.HasField("fraction_lost") else 1.0,
            p.pool.duration_weeks,
        )
    if which == "capacity":
        cap = p.capacity
        return sc.SetCapacity(
            cap.pool,
            cap.factor if cap.HasField("factor") else 1.0,
            cap.yield_fraction if cap.HasField("yield_fraction") else None,
        )
    if which == "site":
        return sc.MoveCapacity(
            _node(p.site.node, f"{path}.site.node"), p.site.country, p.site.share, p.site.add
        )
    if which == "alternate":
        alt = p.alternate
        return sc.QualifyAlternate(
            _node(alt.supplier, f"{path}.alternate.supplier"),
            _node(alt.alternate, f"{path}.alternate.alternate"),
            alt.category,
            alt.lead_weeks,
            alt.spare,
        )
    raise InvalidParameterError([FieldViolation(path, "", "no perturbation set")])


def scenario_from_proto(request: risk_pb2.RunScenarioRequest) -> sc.Scenario:
    """Every bad field of every perturbation is reported at once."""
    if not request.perturbations:
        raise InvalidParameterError(
            [FieldViolation("perturbations", "[]", "give at least one perturbation")]
        )
    items: list[sc.Perturbation] = []
    violations: list[FieldViolation] = []
    for k, p in enumerate(request.perturbations):
        try:
            items.append(_perturbation(p, f"perturbations[{k}]"))
        except InvalidParameterError as exc:
            violations += exc.violations
    rule = None
    try:
        rule = conv.rule_from_proto(request.allocation_rule)
    except InvalidParameterError as exc:
        violations += exc.violations
    if violations:
        raise InvalidParameterError(violations)
    return sc.Scenario(
        request.display_name or "scenario", tuple(items), rule, tuple(request.priority)
    )


def result_to_proto(result: sc.ScenarioResult) -> risk_pb2.RunScenarioResponse:
    return risk_pb2.RunScenarioResponse(
        display_name=result.scenario.name,
        as_of=conv.date_to_proto(result.as_of),
        baseline_version=result.baseline_version,
        scenario_version=result.scenario_version,
        outcomes=[
            scenario_pb2.ProviderScenarioOutcome(
                provider=f"providers/{o.provider}",
                display_name=o.display_name,
                available_baseline=o.available_baseline,
                available_scenario=o.available_scenario,
                lost_supply_weeks=o.lost_supply_weeks,
                deltas=[
                    scenario_pb2.ScenarioDelta(
                        quantity=d.quantity,
                        baseline=d.baseline,
                        scenario=d.scenario,
                        delta=d.delta,
                        drivers=[
                            scenario_pb2.ScenarioDriver(
                                perturbation_index=r.perturbation,
                                description=r.description,
                                effect=r.effect,
                            )
                            for r in d.drivers
                        ],
                    )
                    for d in o.deltas
                ],
                baseline_risk_vector=o.baseline.risk_vector,
                scenario_risk_vector=o.scenario.risk_vector,
                available_curve=conv.curve_to_proto(o.available_curve),
                lost_capex_usd_bn=o.lost_capex_usd_bn,
                explanations=list(o.explanations),
            )
            for o in result.outcomes
        ],
        notes=list(result.notes),
    )


def validate(
    graph: SupplyGraph, request: risk_pb2.RunScenarioRequest, scenario: sc.Scenario
) -> None:
    """Domain validation, with field paths rewritten to the request's proto paths
    (``perturbations[0].fraction_lost`` -> ``perturbations[0].node.fraction_lost``)."""
    try:
        sc.validate(graph, scenario)
    except InvalidParameterError as exc:
        raise InvalidParameterError([_proto_path(request, v) for v in exc.violations]) from None


def _proto_path(request: risk_pb2.RunScenarioRequest, v: FieldViolation) -> FieldViolation:
    head, _, rest = v.field.partition("].")
    if not head.startswith("perturbations[") or not rest:
        return v
    k = int(head.removeprefix("perturbations["))
    oneof = request.perturbations[k].WhichOneof("perturbation") or ""
    if oneof == "add_regime":
        rest = rest.removeprefix("regime.").removeprefix("regime")  # the message is the regime
        rest = rest or "id"
    field = f"{head}].{oneof}.{rest}" if oneof else v.field
    return FieldViolation(field, v.value, v.description)
