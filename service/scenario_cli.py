"""``sovrisk scenario``: flags or a JSON request -> the same RunScenarioRequest as gRPC."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from google.protobuf import json_format

from sovrisk.models.analysis.allocation import AllocationRule
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.scenarios import ScenarioResult, run_scenario
from sovrisk.service import converters as conv
from sovrisk.service import scenario_converters as scenario_conv
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, risk_pb2, scenario_pb2
from sovrisk.service.source import open_source


def _split(text: str, flag: str, parts: int) -> list[str]:
    items = text.split(":")
    if len(items) != parts:
        raise InvalidParameterError([FieldViolation(flag, text, f"expected {parts} ':'-parts")])
    return items


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidParameterError([FieldViolation(flag, text, "must be a number")]) from None


def request_from_args(args: argparse.Namespace) -> risk_pb2.RunScenarioRequest:
    request = risk_pb2.RunScenarioRequest()
    if args.file:
        try:
            json_format.Parse(Path(args.file).read_text(encoding="utf-8"), request)
        except (OSError, json_format.ParseError) as exc:
            raise InvalidParameterError([FieldViolation("--file", args.file, str(exc))]) from None
    if args.name:
        request.display_name = args.name
    for item in args.country:
        code, _, fraction = item.partition(":")
        degradation = scenario_pb2.CountryDegradation(country=code, duration_weeks=args.weeks)
        if fraction:
            degradation.fraction_lost = _number(fraction, "--country")
        request.perturbations.add(country=degradation)
    for item in getattr(args, "blockade", []):
        code, _, fraction = item.partition(":")
        blockade = scenario_pb2.CountryDegradation(
            country=code, duration_weeks=args.weeks, kind=common_pb2.COUNTRY_EVENT_KIND_BLOCKADE
        )
        if fraction:
            blockade.fraction_lost = _number(fraction, "--blockade")
        request.perturbations.add(country=blockade)
    for item in args.node:
        node, _, fraction = item.partition(":")
        node_degradation = scenario_pb2.NodeDegradation(
            node=f"nodes/{node}", duration_weeks=args.weeks
        )
        if fraction:
            node_degradation.fraction_lost = _number(fraction, "--node")
        request.perturbations.add(node=node_degradation)
    for item in args.activate_regime:
        regime, _, severity = item.partition(":")
        activation = scenario_pb2.RegimeActivation(
            regime=f"regimes/{regime}", duration_weeks=args.weeks
        )
        if severity:
            activation.severity = _number(severity, "--activate-regime")
        request.perturbations.add(activate_regime=activation)
    for item in args.share:
        consumer, category, supplier, share = _split(item, "--share", 4)
        request.perturbations.add(
            share=scenario_pb2.ShareOverride(
                consumer=f"nodes/{consumer}",
                category=category,
                supplier=f"nodes/{supplier}",
                share=_number(share, "--share"),
            )
        )
    for item in args.param:
        name, _, value = item.partition("=")
        request.perturbations.add(
            parameter=scenario_pb2.ParameterOverride(name=name, value=_number(value, "--param"))
        )
    for item in getattr(args, "pool", []):
        pool, _, fraction = item.partition(":")
        degradation_pool = scenario_pb2.PoolDegradation(pool=pool, duration_weeks=args.weeks)
        if fraction:
            degradation_pool.fraction_lost = _number(fraction, "--pool")
        request.perturbations.add(pool=degradation_pool)
    for item in getattr(args, "capacity", []):
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise InvalidParameterError(
                [FieldViolation("--capacity", item, "expected POOL:FACTOR[:YIELD]")]
            )
        change = scenario_pb2.CapacityChange(pool=parts[0], factor=_number(parts[1], "--capacity"))
        if len(parts) == 3:
            change.yield_fraction = _number(parts[2], "--capacity")
        request.perturbations.add(capacity=change)
    for item in getattr(args, "site", []):
        parts = item.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "add"):
            raise InvalidParameterError(
                [FieldViolation("--site", item, "expected NODE:ISO3:SHARE[:add]")]
            )
        request.perturbations.add(
            site=scenario_pb2.SiteChange(
                node=f"nodes/{parts[0]}",
                country=parts[1],
                share=_number(parts[2], "--site"),
                add=len(parts) == 4,
            )
        )
    for item in getattr(args, "alternate", []):
        supplier, alternate, category, lead, spare = _split(item, "--alternate", 5)
        request.perturbations.add(
            alternate=scenario_pb2.AlternateQualification(
                supplier=f"nodes/{supplier}",
                alternate=f"nodes/{alternate}",
                category=category,
                lead_weeks=_number(lead, "--alternate"),
                spare=_number(spare, "--alternate"),
            )
        )
    rule = getattr(args, "allocation", None)
    if rule:
        request.allocation_rule = conv.RULE_TO_PROTO[AllocationRule(rule)]
    request.priority.extend(
        p.strip() for p in getattr(args, "priority", "").split(",") if p.strip()
    )
    for provider in filter(None, (p.strip() for p in args.providers.split(","))):
        request.providers.append(f"providers/{provider}")
    if args.as_of:
        request.as_of.CopyFrom(conv.date_to_proto(args.as_of))
    request.horizon_weeks = getattr(args, "horizon", 13.0)
    return request


def render(result: ScenarioResult) -> str:
    lines = [
        f"Scenario: {result.scenario.name} (as of {result.as_of.isoformat()}; graph "
        f"{result.baseline_version} -> {result.scenario_version})",
        "Available capacity is a(P) at the headline horizon with every regime in force (0-1, "
        "higher = more supply); weeks = supply-weeks lost over --weeks; US$ bn = AI capex "
        "idled by them (weeks / 52 x the year's capex); scores 0-100, higher = riskier.",
        "",
        f"{'provider':<26} {'avail':>6} {'->':>2} {'scen':>6} {'delta':>7} {'weeks':>6} "
        f"{'US$ bn':>6} {'score':>6} {'->':>2} {'scen':>6}  top driver of the capacity change",
    ]
    for o in result.outcomes:
        capacity = next(d for d in o.deltas if d.quantity == "available_capacity")
        composite = next(d for d in o.deltas if d.quantity == "composite")
        driver = capacity.drivers[0].description if capacity.drivers else "-"
        lines.append(
            f"{o.display_name[:26]:<26} {o.available_baseline:>6.3f} {'':>2} "
            f"{o.available_scenario:>6.3f} {capacity.delta:>+7.3f} {o.lost_supply_weeks:>6.2f} "
            + (f"{o.lost_capex_usd_bn:>6.2f} " if o.lost_capex_usd_bn is not None else f"{'-':>6} ")
            + f"{composite.baseline:>6.1f} {'':>2} {composite.scenario:>6.1f}  {driver}"
        )
    # Why the score columns may not move while capacity does (the composite is ex-ante).
    why = [f"{o.display_name}: {e}" for o in result.outcomes for e in o.explanations]
    lines += ["", *why] if why else []
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(line.rstrip() for line in lines)


def run_from_args(args: argparse.Namespace) -> int:
    engine = open_source(args).engine
    request = request_from_args(args)
    scenario = scenario_conv.scenario_from_proto(request)
    scenario_conv.validate(engine.graph, request, scenario)
    providers = [
        conv.parse_name(n, "providers", f"providers[{k}]") for k, n in enumerate(request.providers)
    ]
    params = ScoringParams.build(
        as_of=conv.date_from_proto(request.as_of, "as_of") or engine.graph.info.as_of,
        horizon_weeks=conv.horizon_from_proto(request.horizon_weeks),
    )
    result = run_scenario(engine, scenario, params, providers or None)
    if args.json:
        response = scenario_conv.result_to_proto(result)
        response.provenance.CopyFrom(conv.result_provenance_to_proto(engine.provenance(params)))
        doc = conv.canonical_dict(response)
        print(json.dumps(doc, indent=2))
    else:
        print(render(result))
    return 0
