"""What-if scenarios: perturb the graph, the regimes or the parameters and compare.

A scenario is a list of perturbations. Structural ones (a new or changed supply share, an
activated or hypothetical regime) produce a scenario graph, validated and compiled like any
other version; disruptions (a node or a country losing capacity, a capacity factor) become the
``up`` vector of one evaluation. For every provider the result compares the baseline and the
scenario on

- **available capacity**: ``a(P)`` at the headline horizon (and the curve over the reporting
  horizons) under the disruptions, every regime in force on the date binding as far as it is
  felt by then (the baseline's is ``1 - bound_now``); the disruptions, and regimes the
  scenario activates or adds, are new shocks that each edge's buffer delays; where a
  duration is given, the supply-weeks lost over it (``d x`` the loss averaged over ``d``
  weeks, which the horizon formula gives exactly);
- the **sub-scores and composite** of the full assessment;

and attributes each delta to the perturbations by leaving each one out in turn.

The composite and sub-scores are **ex-ante** risk scores of the supply structure: they move
with the scenario's structural perturbations (shares, sites, regimes, alternates, scoring
parameters) but not with its realised disruptions (node, country, pool losses, capacity
changes), which change what is delivered, not what the structure risks. A disruption's loss is
the available capacity, the lost supply-weeks and the capex idled; every outcome says so in
its ``explanations``, with the figures (a composite that stays put is not "no effect").
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from sovrisk.models.analysis.allocation import AllocationRule, pool_scale
from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.compiled import EdgeTerm
from sovrisk.models.engine.impacts import HORIZONS, CountryEvent
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.bundle import Supplements
from sovrisk.models.graph.schema import Provenance, Quality, Regime, Site, SupplyEdge
from sovrisk.models.graph.series import Alternate, DatedSeries, pool_members
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.params import SUB_SCORES, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

#: Source id recorded on edges a scenario adds (they are hypotheses, not data).
SCENARIO_SOURCE = "scenario"
#: Leave-one-out attribution re-scores once per perturbation; beyond this many it is skipped.
MAX_ATTRIBUTED = 12
#: Largest capacity factor, added capacity share or alternate spare a scenario may set.
MAX_CAPACITY_FACTOR = 10.0


@dataclass(frozen=True, slots=True)
class DegradeNode:
    """``node`` loses ``fraction_lost`` of its capacity (1 = down)."""

    node: str
    fraction_lost: float = 1.0
    duration_weeks: float = 0.0


@dataclass(frozen=True, slots=True)
class DegradeCountry:
    """A country event (METHODS v2 §2): a **site loss** (every site in ``country`` loses
    ``fraction_lost`` of its capacity) or a **blockade** (every edge crossing its border
    delivers ``1 - fraction_lost`` of its flow; domestic edges go on)."""

    country: str
    fraction_lost: float = 1.0
    duration_weeks: float = 0.0
    kind: CountryEvent = CountryEvent.SITE_LOSS


@dataclass(frozen=True, slots=True)
class ActivateRegime:
    """An existing regime in force on the scenario date whatever its own dates say."""

    regime: str
    severity: float | None = None  # None: the regime's own severity
    duration_weeks: float = 0.0  # how long it stays in force (for lost supply-weeks)


@dataclass(frozen=True, slots=True)
class AddRegime:
    """A hypothetical regime, in force according to its own dates."""

    regime: Regime


@dataclass(frozen=True, slots=True)
class SetShare:
    """``supplier`` meets ``share`` of ``consumer``'s ``category``; the other suppliers of the
    category are rescaled in proportion to fill the rest (0 removes the supplier)."""

    consumer: str
    category: str
    supplier: str
    share: float


@dataclass(frozen=True, slots=True)
class SetParameter:
    """A scoring parameter (``weights.<key>``, ``alpha``, ``top_k``, ``export_now_weight``)
    or a node's capacity factor (``capacity.<node>``, e.g. a packaging yield of 0.9)."""

    name: str
    value: float


@dataclass(frozen=True, slots=True)
class DegradePool:
    """Every node of ``pool`` (capacity.csv: a node id or a tag such as ``cowos``) loses
    ``fraction_lost`` of its capacity. With an allocation rule the pool's loss is shared out
    by the rule instead of node by node."""

    pool: str
    fraction_lost: float = 1.0
    duration_weeks: float = 0.0


@dataclass(frozen=True, slots=True)
class SetCapacity:
    """A pool's capacity times ``factor`` (above 1 adds capacity) and, if given, its yield
    set to ``yield_``: a change of structure, felt at once, allocated by the scenario's rule
    (pro rata by default) against the quarter's demand (capacity.csv)."""

    pool: str
    factor: float = 1.0
    yield_: float | None = None


@dataclass(frozen=True, slots=True)
class MoveCapacity:
    """``node``'s capacity in ``country``: with ``add=False`` the country then holds
    ``share`` of it and the other sites the rest in proportion (a move); with ``add=True``
    new capacity of ``share`` times the node's is built there (the node grows, and a pool it
    belongs to grows by the node's part of the pool's output times ``share``)."""

    node: str
    country: str
    share: float
    add: bool = False


@dataclass(frozen=True, slots=True)
class QualifyAlternate:
    """``alternate`` can take up to ``spare`` of what ``supplier`` delivers in ``category``
    once qualified, ``lead_weeks`` after the need arises (alternates.csv, for this scenario)."""

    supplier: str
    alternate: str
    category: str
    lead_weeks: float
    spare: float


Perturbation = (
    DegradeNode
    | DegradeCountry
    | DegradePool
    | ActivateRegime
    | AddRegime
    | SetShare
    | SetParameter
    | SetCapacity
    | MoveCapacity
    | QualifyAlternate
)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    perturbations: tuple[Perturbation, ...]
    #: How constrained pools share their capacity (None: node by node, pro rata, unless a
    #: capacity is changed; then pro rata over the pool).
    allocation_rule: AllocationRule | None = None
    #: Claimant ids in order, for the priority rule.
    priority: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Driver:
    """How much one perturbation moves a quantity (leave it out and compare)."""

    perturbation: int  # index in the scenario
    description: str
    effect: float  # quantity(all) - quantity(all but this one)


@dataclass(frozen=True, slots=True)
class Delta:
    quantity: str  # "available_capacity", "composite" or a sub-score key
    baseline: float
    scenario: float
    delta: float
    drivers: tuple[Driver, ...]


@dataclass(frozen=True, slots=True)
class ProviderOutcome:
    provider: str
    display_name: str
    baseline: RiskAssessment
    scenario: RiskAssessment
    available_baseline: float
    available_scenario: float
    lost_supply_weeks: float  # d x (baseline - scenario available averaged over d weeks)
    deltas: tuple[Delta, ...]
    available_curve: tuple[float, ...] = ()  # scenario a(P) at 4, 13, 26, 52, 104 weeks
    #: The AI capex idled by the lost supply-weeks: lost weeks / 52 x the year's capex (US$ bn;
    #: None without a capex figure).
    lost_capex_usd_bn: float | None = None
    #: How to read the outcome, with its figures: why the composite does (not) move under the
    #: scenario, and where its realised loss is instead.
    explanations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    scenario: Scenario
    as_of: dt.date
    baseline_version: str
    scenario_version: str
    outcomes: tuple[ProviderOutcome, ...]
    notes: tuple[str, ...]


def describe(p: Perturbation) -> str:
    if isinstance(p, DegradeNode):
        return f"node {p.node} loses {100 * p.fraction_lost:g} % of capacity"
    if isinstance(p, DegradeCountry) and p.kind is CountryEvent.BLOCKADE:
        return f"{p.country} blockaded: {100 * p.fraction_lost:g} % of cross-border flows lost"
    if isinstance(p, DegradeCountry):
        return f"sites in {p.country} lose {100 * p.fraction_lost:g} % of capacity"
    if isinstance(p, ActivateRegime):
        return f"regime {p.regime} in force"
    if isinstance(p, AddRegime):
        return f"hypothetical regime {p.regime.id} ({p.regime.issuer})"
    if isinstance(p, SetShare):
        return f"{p.supplier} supplies {100 * p.share:g} % of {p.consumer}'s {p.category}"
    if isinstance(p, DegradePool):
        return f"pool {p.pool} loses {100 * p.fraction_lost:g} % of capacity"
    if isinstance(p, SetCapacity):
        yield_ = "" if p.yield_ is None else f", yield {p.yield_:g}"
        return f"pool {p.pool} capacity x {p.factor:g}{yield_}"
    if isinstance(p, MoveCapacity):
        verb = "adds" if p.add else "moves"
        return f"{p.node} {verb} {100 * p.share:g} % of its capacity in {p.country}"
    if isinstance(p, QualifyAlternate):
        return (
            f"{p.alternate} qualifiable for {100 * p.spare:g} % of {p.supplier}'s "
            f"{p.category} after {p.lead_weeks:g} weeks"
        )
    return f"{p.name} = {p.value:g}"


# -- validation -------------------------------------------------------------------------------


def _unknown(graph: SupplyGraph, kind: str, value: str) -> str:
    """The violation's description: unknown, what ids look like, and what it likely meant."""
    hint = " (ISO 3166-1 alpha-3, e.g. TWN)" if kind == "country" else ""
    near = graph.not_found(kind, value).suggestions
    return f"unknown {kind}{hint}" + (
        f"; did you mean {', '.join(repr(x) for x in near)}?" if near else ""
    )


def validate(graph: SupplyGraph, scenario: Scenario) -> None:
    """Raise InvalidParameterError listing every bad perturbation field."""
    bad: list[FieldViolation] = []
    regimes = set(graph.regimes)

    def fraction(path: str, value: float, name: str) -> None:
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            bad.append(FieldViolation(f"{path}.{name}", repr(value), "must be within [0, 1]"))

    for k, p in enumerate(scenario.perturbations):
        path = f"perturbations[{k}]"
        if isinstance(p, DegradeNode):
            if p.node not in graph.nodes:
                bad.append(FieldViolation(f"{path}.node", p.node, _unknown(graph, "node", p.node)))
            fraction(path, p.fraction_lost, "fraction_lost")
            _duration(bad, path, p.duration_weeks)
        elif isinstance(p, DegradeCountry):
            if p.country not in graph.countries:
                bad.append(
                    FieldViolation(
                        f"{path}.country", p.country, _unknown(graph, "country", p.country)
                    )
                )
            fraction(path, p.fraction_lost, "fraction_lost")
            _duration(bad, path, p.duration_weeks)
        elif isinstance(p, ActivateRegime):
            if p.regime not in regimes:
                bad.append(FieldViolation(f"{path}.regime", p.regime, "unknown regime"))
            if p.severity is not None:
                fraction(path, p.severity, "severity")
            _duration(bad, path, p.duration_weeks)
        elif isinstance(p, AddRegime):
            _check_regime(graph, p.regime, path, bad)
            regimes.add(p.regime.id)
        elif isinstance(p, SetShare):
            for name in ("consumer", "supplier"):
                if getattr(p, name) not in graph.nodes:
                    bad.append(
                        FieldViolation(
                            f"{path}.{name}",
                            getattr(p, name),
                            _unknown(graph, "node", getattr(p, name)),
                        )
                    )
            fraction(path, p.share, "share")
            if p.consumer in graph.nodes and p.category not in graph.categories(p.consumer):
                bad.append(
                    FieldViolation(
                        f"{path}.category",
                        p.category,
                        f"'{p.consumer}' has no input category of that name",
                    )
                )
            elif (
                p.consumer in graph.nodes
                and p.supplier in graph.nodes
                and nx.has_path(graph.supply_view, p.consumer, p.supplier)
            ):
                bad.append(
                    FieldViolation(
                        f"{path}.supplier",
                        p.supplier,
                        f"would make a cycle: '{p.consumer}' already supplies it",
                    )
                )
        elif isinstance(p, DegradePool):
            _check_pool(graph, p.pool, path, bad)
            fraction(path, p.fraction_lost, "fraction_lost")
            _duration(bad, path, p.duration_weeks)
        elif isinstance(p, SetCapacity):
            _check_pool(graph, p.pool, path, bad)
            if not (math.isfinite(p.factor) and 0.0 < p.factor <= MAX_CAPACITY_FACTOR):
                bad.append(
                    FieldViolation(
                        f"{path}.factor", repr(p.factor), f"must be in (0, {MAX_CAPACITY_FACTOR:g}]"
                    )
                )
            if p.yield_ is not None and not (math.isfinite(p.yield_) and 0.0 < p.yield_ <= 1.0):
                bad.append(
                    FieldViolation(f"{path}.yield_fraction", repr(p.yield_), "must be in (0, 1]")
                )
        elif isinstance(p, MoveCapacity):
            if p.node not in graph.nodes:
                bad.append(FieldViolation(f"{path}.node", p.node, _unknown(graph, "node", p.node)))
            elif p.node not in graph.sites:
                bad.append(FieldViolation(f"{path}.node", p.node, "has no production sites"))
            if p.country not in graph.countries:
                bad.append(
                    FieldViolation(
                        f"{path}.country", p.country, _unknown(graph, "country", p.country)
                    )
                )
            high = MAX_CAPACITY_FACTOR if p.add else 1.0
            if not (math.isfinite(p.share) and 0.0 <= p.share <= high):
                bad.append(
                    FieldViolation(f"{path}.share", repr(p.share), f"must be within [0, {high:g}]")
                )
        elif isinstance(p, QualifyAlternate):
            _check_alternate(graph, p, path, bad)
        else:
            _check_parameter(graph, p, path, bad)
    if scenario.priority and scenario.allocation_rule is not AllocationRule.PRIORITY:
        bad.append(
            FieldViolation("priority", ",".join(scenario.priority), "only with the priority rule")
        )
    for k, claimant in enumerate(scenario.priority):
        if claimant not in graph.nodes and claimant != "other":
            bad.append(FieldViolation(f"priority[{k}]", claimant, "unknown claimant"))
    if bad:
        raise InvalidParameterError(bad)


def _check_pool(graph: SupplyGraph, pool: str, path: str, bad: list[FieldViolation]) -> None:
    if not pool_members(graph, pool):
        bad.append(FieldViolation(f"{path}.pool", pool, "names no node (a node id or a tag)"))


def _check_alternate(
    graph: SupplyGraph, p: QualifyAlternate, path: str, bad: list[FieldViolation]
) -> None:
    for name in ("supplier", "alternate"):
        if getattr(p, name) not in graph.nodes:
            bad.append(
                FieldViolation(
                    f"{path}.{name}", getattr(p, name), _unknown(graph, "node", getattr(p, name))
                )
            )
    if p.supplier in graph.nodes and not any(
        e.category == p.category for e in graph.outputs(p.supplier)
    ):
        bad.append(
            FieldViolation(f"{path}.category", p.category, f"'{p.supplier}' supplies nobody in it")
        )
    elif p.alternate in graph.nodes and p.supplier in graph.nodes:
        consumers = {e.consumer for e in graph.outputs(p.supplier) if e.category == p.category}
        if any(nx.has_path(graph.supply_view, c, p.alternate) for c in consumers):
            bad.append(
                FieldViolation(
                    f"{path}.alternate", p.alternate, "draws on a consumer it would supply"
                )
            )
    if not (math.isfinite(p.lead_weeks) and 0.0 <= p.lead_weeks <= 520.0):
        bad.append(
            FieldViolation(f"{path}.lead_weeks", repr(p.lead_weeks), "must be within [0, 520]")
        )
    if not (math.isfinite(p.spare) and 0.0 <= p.spare <= MAX_CAPACITY_FACTOR):
        bad.append(
            FieldViolation(
                f"{path}.spare", repr(p.spare), f"must be within [0, {MAX_CAPACITY_FACTOR:g}]"
            )
        )


def _duration(bad: list[FieldViolation], path: str, weeks: float) -> None:
    if not (math.isfinite(weeks) and 0.0 <= weeks <= 520.0):
        bad.append(FieldViolation(f"{path}.duration_weeks", repr(weeks), "must be within [0, 520]"))


def _check_regime(graph: SupplyGraph, r: Regime, path: str, bad: list[FieldViolation]) -> None:
    if r.id in graph.regimes:
        bad.append(FieldViolation(f"{path}.regime.id", r.id, "a regime with this id exists"))
    if not (math.isfinite(r.severity) and 0.0 <= r.severity <= 1.0):
        bad.append(FieldViolation(f"{path}.regime.severity", repr(r.severity), "must be in [0, 1]"))
    for field, codes in (
        ("issuer", {r.issuer}),
        ("origin_countries", r.origin_countries),
        ("destination_countries", r.destination_countries),
    ):
        for code in sorted(codes):
            if code not in graph.countries:
                bad.append(
                    FieldViolation(f"{path}.regime.{field}", code, _unknown(graph, "country", code))
                )
    for nid in sorted(r.reach_nodes):
        if nid not in graph.nodes:
            bad.append(
                FieldViolation(f"{path}.regime.reach_nodes", nid, _unknown(graph, "node", nid))
            )
    if not (r.reach_kinds or r.reach_tags or r.reach_nodes):
        bad.append(
            FieldViolation(f"{path}.regime.reach_kinds", "", "must reach kinds, tags or nodes")
        )
    if r.effective_to is not None and r.effective_to <= r.effective_from:
        bad.append(
            FieldViolation(
                f"{path}.regime.effective_to",
                r.effective_to.isoformat(),
                "must be after effective_from",
            )
        )


def _check_parameter(
    graph: SupplyGraph, p: SetParameter, path: str, bad: list[FieldViolation]
) -> None:
    if p.name.startswith("capacity."):
        node = p.name.removeprefix("capacity.")
        if node not in graph.nodes:
            bad.append(FieldViolation(f"{path}.name", p.name, _unknown(graph, "node", p.name)))
        if not (math.isfinite(p.value) and 0.0 <= p.value <= 1.0):
            bad.append(FieldViolation(f"{path}.value", repr(p.value), "must be within [0, 1]"))
        return
    scoring = {f"weights.{k}" for k in SUB_SCORES} | {"alpha", "top_k", "export_now_weight"}
    if p.name not in scoring:
        known = ", ".join(sorted(scoring)) + ", capacity.<node>"
        bad.append(FieldViolation(f"{path}.name", p.name, f"unknown parameter; one of {known}"))


# -- building the scenario ------------------------------------------------------------------


def scenario_graph(graph: SupplyGraph, scenario: Scenario, as_of: dt.date) -> SupplyGraph:
    """The graph with the scenario's share changes and regimes; the same object if none."""
    structural = [
        p
        for p in scenario.perturbations
        if isinstance(p, SetShare | ActivateRegime | AddRegime | MoveCapacity)
    ]
    if not structural:
        return graph
    edges = list(graph.edges)
    regimes = dict(graph.regimes)
    sites = dict(graph.sites)
    for p in structural:
        if isinstance(p, MoveCapacity):
            sites[p.node] = _moved_sites(sites[p.node], p, as_of)
    for p in structural:
        if isinstance(p, MoveCapacity):
            continue
        if isinstance(p, SetShare):
            edges = _set_share(edges, p, as_of)
        elif isinstance(p, ActivateRegime):
            r = regimes[p.regime]
            regimes[r.id] = replace(
                r,
                effective_from=min(r.effective_from, as_of),
                effective_to=None,
                severity=r.severity if p.severity is None else p.severity,
            )
        else:
            regimes[p.regime.id] = p.regime
    sources = dict(graph.sources)
    if any(isinstance(p, SetShare | AddRegime | MoveCapacity) for p in structural):
        from sovrisk.models.graph.schema import Source

        sources[SCENARIO_SOURCE] = Source(
            SCENARIO_SOURCE,
            "What-if scenario (hypothesis, not data)",
            "sovrisk",
            "",
            "",
            Quality.C,
        )
    return SupplyGraph(
        info=graph.info,
        sources=sources,
        countries=graph.countries,
        nodes=graph.nodes,
        edges=edges,
        sites=sites,
        regimes=regimes,
    )


def _moved_sites(current: tuple[Site, ...], p: MoveCapacity, as_of: dt.date) -> tuple[Site, ...]:
    """The node's sites with ``p`` applied (shares still sum to 1)."""
    if p.add:  # the node grows by ``share``, all of it in ``country``
        total = 1.0 + p.share
        scaled = {s.country: s.share / total for s in current}
        scaled[p.country] = scaled.get(p.country, 0.0) + p.share / total
    else:  # ``share`` moves to ``country`` from the other sites, in proportion
        others = [s for s in current if s.country != p.country]
        rest = math.fsum(s.share for s in others)
        target = p.share if rest > 0 else 1.0
        scaled = {s.country: s.share * (1.0 - target) / rest for s in others} if rest else {}
        scaled[p.country] = target
    provenance = Provenance((SCENARIO_SOURCE,), Quality.C, as_of)
    by_country = {s.country: s for s in current}
    node = current[0].node
    return tuple(
        replace(by_country[c], share=v)
        if c in by_country
        else Site(node, c, v, "what-if capacity", provenance, "set by a what-if scenario")
        for c, v in sorted(scaled.items())
        if v > 0.0
    )


def _set_share(edges: list[SupplyEdge], p: SetShare, as_of: dt.date) -> list[SupplyEdge]:
    group = [e for e in edges if e.consumer == p.consumer and e.category == p.category]
    others = [e for e in group if e.supplier != p.supplier]
    rest = math.fsum(e.share for e in others)
    scale = (1.0 - p.share) / rest if rest > 0 else 0.0
    kept = [e for e in edges if not (e.consumer == p.consumer and e.category == p.category)]
    rescaled = [
        replace(
            e,
            share=e.share * scale,
            share_low=e.share_low * scale,
            share_high=min(1.0, e.share_high * scale),
        )
        for e in others
    ]
    if p.share > 0 or not others:
        existing = next((e for e in group if e.supplier == p.supplier), None)
        provenance = Provenance((SCENARIO_SOURCE,), Quality.C, as_of)
        rescaled.append(
            SupplyEdge(
                p.consumer,
                p.category,
                p.supplier,
                p.share,
                p.share,
                p.share,
                existing.provenance if existing else provenance,
                "set by a what-if scenario",
            )
        )
    return kept + rescaled


def scenario_params(base: ScoringParams, scenario: Scenario) -> ScoringParams:
    """The scoring parameters with the scenario's parameter overrides; a bad value is named
    by the perturbation that set it (``perturbations[2].parameter.value``), not by the
    internal parameter."""
    weights = dict(base.weights)
    values: dict[str, float] = {
        "alpha": base.alpha,
        "top_k": base.top_k,
        "export_now_weight": base.export_now_weight,
        "critical": base.critical,
    }
    set_by: dict[str, int] = {}  # parameter name -> index of the perturbation that set it
    for k, p in enumerate(scenario.perturbations):
        if isinstance(p, SetParameter) and p.name.startswith("weights."):
            weights[p.name.removeprefix("weights.")] = p.value
            set_by[p.name] = k
        elif isinstance(p, SetParameter) and p.name in values:
            values[p.name] = p.value
            set_by[p.name] = k

    def request_field(name: str) -> str:
        k = set_by.get(name)
        return name if k is None else f"perturbations[{k}].parameter.value"

    try:
        top_k = values["top_k"]
        if not float(top_k).is_integer():
            raise InvalidParameterError(
                [FieldViolation("top_k", repr(top_k), "must be an integer")]
            )
        return ScoringParams.build(
            as_of=base.as_of,
            weights=weights,
            layer_weights=dict(base.layer_weights),
            alpha=values["alpha"],
            top_k=int(top_k),
            export_now_weight=values["export_now_weight"],
            horizon_weeks=base.horizon_weeks,
            critical=values["critical"],
        )
    except InvalidParameterError as exc:
        raise InvalidParameterError(
            [replace(v, field=request_field(v.field)) for v in exc.violations]
        ) from None


def disruption_up(engine: RiskEngine, scenario: Scenario) -> np.ndarray:
    """The ``up`` vector of the scenario's node, pool, site-loss and capacity perturbations."""
    cg = engine.compiled
    up = np.ones(cg.n_nodes)
    for p in scenario.perturbations:
        if isinstance(p, DegradeNode):
            up[cg.index[p.node]] *= 1.0 - p.fraction_lost
        elif isinstance(p, DegradePool):
            for member in pool_members(engine.graph, p.pool):
                up[cg.index[member]] *= 1.0 - p.fraction_lost
        elif (
            isinstance(p, DegradeCountry)
            and p.kind is CountryEvent.SITE_LOSS
            and p.country in cg.countries
        ):
            column = cg.sites[:, cg.countries.index(p.country)].toarray().ravel()
            up *= 1.0 - p.fraction_lost * column
        elif isinstance(p, SetParameter) and p.name.startswith("capacity."):
            up[cg.index[p.name.removeprefix("capacity.")]] *= p.value
    return up


def disruption_terms(
    engine: RiskEngine, scenario: Scenario, baseline_in_force: frozenset[str]
) -> list[EdgeTerm]:
    """The scenario's new shocks to edges: blockades, and regimes it activates or adds that
    are not in force in the baseline (a new restriction is delayed by buffers)."""
    cg = engine.compiled
    terms = []
    for p in scenario.perturbations:
        if (
            isinstance(p, DegradeCountry)
            and p.kind is CountryEvent.BLOCKADE
            and p.country in cg.countries
        ):
            exposure = cg.border_exposure(cg.countries.index(p.country))
            terms.append(EdgeTerm(p.fraction_lost * exposure, np.ones(1)))
    for rid in sorted(engine.in_force_regimes(scenario_regimes(scenario)) - baseline_in_force):
        terms.append(EdgeTerm(1.0 - engine.regime_scale(rid), np.ones(1)))
    return terms


@dataclass(frozen=True, slots=True)
class _Allocated:
    """A scenario's pools allocated by its rule: the standing per-entry scale, the ``up``
    with pool members' own losses taken out, and those losses as edge terms by claimant."""

    scale: np.ndarray
    up: np.ndarray
    terms: list[EdgeTerm]


def allocates(scenario: Scenario) -> bool:
    """Whether the scenario shares pools by a rule: one is named, or a capacity changes."""
    return scenario.allocation_rule is not None or any(
        isinstance(p, SetCapacity) or (isinstance(p, MoveCapacity) and p.add)
        for p in scenario.perturbations
    )


def baseline_allocation(engine: RiskEngine, scenario: Scenario) -> np.ndarray:
    """The baseline's per-entry scale: every pool as of the quarter, by the scenario's rule."""
    rule = scenario.allocation_rule or AllocationRule.PRO_RATA
    scale = np.ones(engine.compiled.shares.nnz)
    for pool in engine.pools():
        scale *= pool_scale(pool, len(scale), rule, priority=scenario.priority)
    return scale


def _allocate(engine: RiskEngine, scenario: Scenario, up: np.ndarray) -> _Allocated:
    """Capacity changes as standing scales (pro rata unless a rule is named); with a rule,
    each pool's members' losses in ``up`` pooled and shared out by it (a new shock: edge terms
    that buffers delay)."""
    rule = scenario.allocation_rule or AllocationRule.PRO_RATA
    cg = engine.compiled
    scale = np.ones(cg.shares.nnz)
    up = up.copy()
    terms: list[EdgeTerm] = []
    for pool in engine.pools():
        supply = pool.output
        state = pool.capacity.value if pool.capacity else None
        for p in scenario.perturbations:
            if isinstance(p, SetCapacity) and p.pool == pool.id:
                supply *= p.factor
                if p.yield_ is not None and state is not None and state.yield_ > 0:
                    supply *= p.yield_ / state.yield_
            elif isinstance(p, MoveCapacity) and p.add and p.node in pool.members:
                supply *= 1.0 + p.share * pool.member_weights[p.node]
        standing = pool_scale(
            pool, len(scale), rule, supply=supply, capacity=supply, priority=scenario.priority
        )
        scale *= standing
        if scenario.allocation_rule is None:
            continue
        rows = [cg.index[m] for m in pool.members]
        lost = math.fsum(
            pool.member_weights[m] * (1.0 - up[r]) for m, r in zip(pool.members, rows, strict=True)
        )
        up[rows] = 1.0
        if lost > 0.0:
            shocked = pool_scale(
                pool,
                len(scale),
                rule,
                supply=supply * (1.0 - lost),
                capacity=supply,
                priority=scenario.priority,
            )
            safe = np.where(standing > 0, standing, 1.0)
            exposure = np.where(standing > 0, 1.0 - shocked / safe, 0.0)
            terms.append(EdgeTerm(exposure, np.ones(1)))
    return _Allocated(scale, up, terms)


def _with_alternates(engine: RiskEngine, scenario: Scenario) -> Supplements | None:
    """The supplements with the scenario's qualified alternates added (None: none)."""
    added = [
        Alternate(
            p.supplier,
            p.alternate,
            p.category,
            p.lead_weeks,
            p.lead_weeks,
            p.lead_weeks,
            p.spare,
            p.spare,
            p.spare,
            Provenance((SCENARIO_SOURCE,), Quality.C, engine.graph.info.as_of),
            "qualified by a what-if scenario",
        )
        for p in scenario.perturbations
        if isinstance(p, QualifyAlternate)
    ]
    if not added:
        return None
    series = engine.supplements.series
    return replace(
        engine.supplements,
        series=DatedSeries(
            series.fleet,
            series.capacity,
            series.allocation,
            (*series.alternates, *added),
            series.capex,
        ),
    )


def scenario_regimes(scenario: Scenario) -> frozenset[str]:
    """Regimes the scenario activates or adds."""
    return frozenset(
        p.regime if isinstance(p, ActivateRegime) else p.regime.id
        for p in scenario.perturbations
        if isinstance(p, ActivateRegime | AddRegime)
    )


# -- running it -----------------------------------------------------------------------------

#: Perturbations that disrupt deliveries without changing the structure the composite scores.
REALISED = (DegradeNode, DegradeCountry, DegradePool, SetCapacity)


def realised(p: Perturbation) -> bool:
    """A realised disruption: it moves available capacity, never the ex-ante scores."""
    return isinstance(p, REALISED) or (
        isinstance(p, SetParameter) and p.name.startswith("capacity.")
    )


def composite_explanation(
    scenario: Scenario,
    composite: Delta,
    available: tuple[float, float],
    horizon: float,
    lost_weeks: float,
    weeks: float,
    lost_capex: float | None,
) -> tuple[str, ...]:
    """Why the composite does not move with the scenario's realised disruptions, and where
    their loss is shown instead, with the figures; empty without a realised disruption."""
    if not any(realised(p) for p in scenario.perturbations):
        return ()
    moved = (
        f"moves ({composite.delta:+.1f}) only with this scenario's structural changes"
        if any(not realised(p) for p in scenario.perturbations)
        else "does not move under a realised disruption"
    )
    if weeks > 0:
        lost = f"{lost_weeks:.2f} weeks of supply lost over {weeks:g} weeks"
        lost += f", US$ {lost_capex:.2f} bn of AI capex idled" if lost_capex is not None else ""
    else:
        lost = "no duration given, so no supply-weeks are counted"
    return (
        f"The composite ({composite.baseline:.1f} -> {composite.scenario:.1f}) is an ex-ante "
        f"risk score of the supply structure and {moved}; this scenario's realised loss is "
        f"shown in available capacity ({available[0]:.3f} -> {available[1]:.3f} at "
        f"{horizon:g} weeks) and lost supply: {lost}.",
    )


@dataclass(frozen=True, slots=True)
class _Evaluated:
    engine: RiskEngine
    assessed: dict[str, RiskAssessment]
    available: dict[str, float]  # at the headline horizon
    curve: dict[str, tuple[float, ...]]  # at the reporting horizons
    over_duration: dict[str, float]  # averaged over the longest duration given (or headline)


def _evaluate(
    engine: RiskEngine,
    base: ScoringParams,
    scenario: Scenario,
    providers: Sequence[str],
    weeks: float,
) -> _Evaluated:
    graph = scenario_graph(engine.graph, scenario, base.as_of)
    scen_engine = engine.derived(graph, _with_alternates(engine, scenario))
    params = scenario_params(base, scenario)
    baseline_in_force = engine.in_force(params.as_of)
    up = disruption_up(scen_engine, scenario)
    terms = disruption_terms(scen_engine, scenario, baseline_in_force)
    scale = None
    if allocates(scenario):
        allocated = _allocate(scen_engine, scenario, up)
        scale, up, terms = allocated.scale, allocated.up, terms + allocated.terms
    index = {p: k for k, p in enumerate(scen_engine.provider_ids)}

    def at(horizon: float) -> np.ndarray:
        return scen_engine.available(
            up,
            params.as_of,
            horizon=horizon,
            edge_terms=terms,
            in_force=baseline_in_force,
            extra_scale=scale,
        )

    curve = np.stack([at(h) for h in HORIZONS])
    headline = curve[HORIZONS.index(params.horizon_weeks)]
    over = at(weeks) if weeks > 0 else headline
    return _Evaluated(
        scen_engine,
        {p: scen_engine.assess(p, params) for p in providers},
        {p: float(headline[index[p]]) for p in providers},
        {p: tuple(float(v) for v in curve[:, index[p]]) for p in providers},
        {p: float(over[index[p]]) for p in providers},
    )


def run_scenario(
    engine: RiskEngine,
    scenario: Scenario,
    params: ScoringParams,
    providers: Sequence[str] | None = None,
) -> ScenarioResult:
    """Baseline vs scenario for each provider (default: all), with attributed deltas."""
    engine = engine.at(params.as_of)  # the fleets and capacities of the date
    validate(engine.graph, scenario)
    wanted = list(providers) if providers else list(engine.provider_ids)
    base_available = engine.available(
        np.ones(engine.compiled.n_nodes),
        params.as_of,
        horizon=params.horizon_weeks,
        extra_scale=baseline_allocation(engine, scenario) if allocates(scenario) else None,
    )
    index = {p: k for k, p in enumerate(engine.provider_ids)}
    weeks = max((getattr(p, "duration_weeks", 0.0) for p in scenario.perturbations), default=0.0)
    full = _evaluate(engine, params, scenario, wanted, weeks)
    scen_engine, scen, avail = full.engine, full.assessed, full.available

    notes: list[str] = []
    n = len(scenario.perturbations)
    leave_out: list[tuple[dict[str, RiskAssessment], dict[str, float]]] = []
    if 1 < n <= MAX_ATTRIBUTED:
        for k in range(n):
            checkpoint()  # one scenario evaluation per left-out perturbation
            rest = Scenario(
                scenario.name, scenario.perturbations[:k] + scenario.perturbations[k + 1 :]
            )
            part = _evaluate(engine, params, rest, wanted, weeks)
            leave_out.append((part.assessed, part.available))
    elif n > MAX_ATTRIBUTED:
        notes.append(f"more than {MAX_ATTRIBUTED} perturbations: drivers not attributed")

    outcomes = []
    for pid in wanted:
        base = engine.assess(pid, params)
        after = scen[pid]
        quantities: dict[str, tuple[float, float, list[float]]] = {}
        a0, a1 = float(base_available[index[pid]]), avail[pid]
        quantities["available_capacity"] = (a0, a1, [a1 - lo[1][pid] for lo in leave_out])
        quantities["composite"] = (
            base.composite,
            after.composite,
            [after.composite - lo[0][pid].composite for lo in leave_out],
        )
        for key in SUB_SCORES:
            s1 = after.sub_score(key).score
            quantities[key] = (
                base.sub_score(key).score,
                s1,
                [s1 - lo[0][pid].sub_score(key).score for lo in leave_out],
            )
        lost = max(0.0, a0 - full.over_duration[pid]) * weeks
        capex = base.loss_units.capex_usd_bn if base.loss_units else None
        deltas = []
        for name, (before, later, effects) in quantities.items():
            if n == 1:
                effects = [later - before]
            drivers = sorted(
                (
                    Driver(k, describe(scenario.perturbations[k]), e)
                    for k, e in enumerate(effects)
                    if abs(e) > 1e-12
                ),
                key=lambda d: (-abs(d.effect), d.perturbation),
            )
            deltas.append(Delta(name, before, later, later - before, tuple(drivers)))
        lost_capex = None if capex is None else capex * lost / 52.0
        composite = next(d for d in deltas if d.quantity == "composite")
        outcomes.append(
            ProviderOutcome(
                provider=pid,
                display_name=base.display_name,
                baseline=base,
                scenario=after,
                available_baseline=a0,
                available_scenario=a1,
                lost_supply_weeks=lost,
                deltas=tuple(deltas),
                available_curve=full.curve[pid],
                lost_capex_usd_bn=lost_capex,
                explanations=composite_explanation(
                    scenario, composite, (a0, a1), params.horizon_weeks, lost, weeks, lost_capex
                ),
            )
        )
    return ScenarioResult(
        scenario=scenario,
        as_of=params.as_of,
        baseline_version=engine.graph.version_id,
        scenario_version=scen_engine.graph.version_id,
        outcomes=tuple(outcomes),
        notes=tuple(notes),
    )
