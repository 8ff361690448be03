"""Everything a report shows, gathered once from a :class:`RiskEngine` (no rendering here).

The renderers (HTML, Markdown, CSV, JSON) only format a :class:`ReportData`; every number in
every format therefore comes from the same assessments, chokepoint rankings and simulation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sovrisk.models.analysis import simulation as sim
from sovrisk.models.engine.impacts import chokepoint_rank
from sovrisk.models.errors import FieldViolation, InvalidParameterError, NotFoundError
from sovrisk.models.graph.schema import Provenance, Source
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.params import DEFAULT_MIN_IMPACT, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine, compose
from sovrisk.models.scoring.trajectory import TrajectoryPoint, check_range, trajectory
from sovrisk.models.scoring.uncertainty import Uncertainty, cached_uncertainty

#: ``progress(stage, fraction)``: the stage name and the fraction (0-1) of the whole report done.
ProgressFn = Callable[[str, float], None]

#: Chokepoints listed per kind (nodes, firms, countries).
TOP_CHOKEPOINTS = 10
#: Loss histogram: samples with no loss get their own bar, then this many equal bins on (0, 1].
LOSS_BINS = 20

# Where each stage starts in the overall fraction reported to ``progress``.
_STAGE_START = {
    "assess": 0.0,
    "chokepoints": 0.30,
    "trajectory": 0.35,
    "simulate": 0.60,
    "sources": 0.85,
    "render": 0.90,
    "done": 1.0,
}
_STAGE_END = {"assess": 0.30, "trajectory": 0.60, "simulate": 0.85}


class Progress:
    """Maps stage-local progress onto one monotone 0-1 fraction for the caller's callback."""

    def __init__(self, callback: ProgressFn | None, *, simulate: bool) -> None:
        self._callback = callback
        self._simulate = simulate
        self._last = -1.0

    def __call__(self, stage: str, local: float = 0.0) -> None:
        if self._callback is None:
            return
        start = _STAGE_START[stage]
        end = _STAGE_END.get(stage, start)
        if stage == "trajectory" and not self._simulate:
            end = _STAGE_START["sources"]
        value = start + (end - start) * min(1.0, max(0.0, local))
        value = max(value, self._last)  # never go backwards
        self._last = value
        self._callback(stage, round(value, 6))


@dataclass(frozen=True, slots=True)
class Chokepoint:
    """A node, firm or country ranked by how many of the report's providers it can cut."""

    kind: str  # "node" | "firm" | "country"
    key: str  # node id, firm name or ISO3
    display_name: str
    impacts: tuple[tuple[str, float], ...]  # (provider id, impact) in the report's order
    providers_cut: int  # providers whose impact >= min_impact
    mean_impact: float


@dataclass(frozen=True, slots=True)
class LossDistribution:
    """One provider's simulated loss ``1 - a(P)``: the summary and a histogram."""

    provider: str
    risk: sim.ProviderRisk
    zero_count: int  # samples with no loss at all
    bins: tuple[int, ...]  # LOSS_BINS counts over (0, 1], bin k = (k/B, (k+1)/B]


@dataclass(frozen=True, slots=True)
class SimulationView:
    result: sim.SimulationResult
    distributions: tuple[LossDistribution, ...]  # the report's provider order


@dataclass(frozen=True, slots=True)
class CitedSource:
    source: Source
    records: int  # how many records of the providers' supply trees cite it
    kinds: tuple[str, ...]  # which kinds of record (node, edge, site, regime, country risk)


@dataclass(frozen=True, slots=True)
class Mitigation:
    """Inherent vs residual composite (the Coupa mapping; see docs/reports.md).

    ``inherent`` recomputes the composite with the resilience sub-score replaced by its
    unbuffered counterpart (100 x the largest structural impact among the nodes the
    resilience analysis covers: no inventory, no spare capacity, no re-routing). ``residual``
    is the composite itself. Without resilience data both are the composite.
    """

    inherent: float
    residual: float
    unbuffered_resilience: float | None  # None without resilience data

    @property
    def credit(self) -> float:
        return self.inherent - self.residual


@dataclass(frozen=True, slots=True)
class ReportData:
    assessments: tuple[RiskAssessment, ...]  # riskiest first
    params: ScoringParams
    min_impact: float
    chokepoints: dict[str, tuple[Chokepoint, ...]]  # "node" | "firm" | "country"
    simulation: SimulationView | None
    sources: tuple[CitedSource, ...]
    mitigations: dict[str, Mitigation]  # by provider id
    dataset_name: str
    dataset_version: str
    dataset_hash: str
    model_version: str
    graph_version: str
    seed: int
    simulate_samples: int
    node_failure_probability: float
    #: One row per quarter per provider (report order), empty without a trajectory.
    trajectory: tuple[TrajectoryPoint, ...] = ()
    #: Score intervals and rank certainty (METHODS v2 §11), None without draws.
    uncertainty: Uncertainty | None = None

    @property
    def provider_ids(self) -> tuple[str, ...]:
        return tuple(a.provider for a in self.assessments)

    def names(self) -> dict[str, str]:
        return {a.provider: a.display_name for a in self.assessments}


def select_providers(engine: RiskEngine, providers: Sequence[str] | None) -> tuple[str, ...]:
    """Provider ids (``aws`` or ``providers/aws``), de-duplicated; all when none are given."""
    if not providers:
        return engine.provider_ids
    chosen: list[str] = []
    for raw in providers:
        pid = raw.strip().removeprefix("providers/")
        if not pid:
            continue
        if pid not in engine.provider_ids:
            raise NotFoundError("provider", pid)
        if pid not in chosen:
            chosen.append(pid)
    return tuple(chosen) or engine.provider_ids


def validate(fmt: str, formats: Sequence[str], simulate_samples: int, seed: int) -> None:
    violations = []
    if fmt not in formats:
        violations.append(FieldViolation("format", fmt, f"must be one of {', '.join(formats)}"))
    if not 0 <= simulate_samples <= sim.MAX_SAMPLES:
        violations.append(
            FieldViolation(
                "simulate_samples",
                str(simulate_samples),
                f"must be within [0, {sim.MAX_SAMPLES:,}] (0 = no simulation)",
            )
        )
    if seed < 0:
        violations.append(FieldViolation("seed", str(seed), "must not be negative"))
    if violations:
        raise InvalidParameterError(violations)


def collect(
    engine: RiskEngine,
    *,
    providers: Sequence[str] | None,
    as_of: dt.date | None,
    simulate_samples: int,
    seed: int,
    progress: Progress,
    trajectory_range: tuple[Quarter, Quarter] | None = None,
    interval_draws: int = 0,
) -> ReportData:
    chosen = select_providers(engine, providers)
    params = engine.default_params(as_of)
    stored = engine
    engine = engine.at(params.as_of)  # the fleets and capacities of the date
    progress("assess", 0.0)
    assessments = []
    for k, pid in enumerate(chosen):
        assessments.append(engine.assess(pid, params))
        progress("assess", (k + 1) / len(chosen))
    assessments.sort(key=lambda a: (-a.composite, a.provider))
    order = tuple(a.provider for a in assessments)

    uncertainty = cached_uncertainty(engine, params, interval_draws, seed)

    progress("chokepoints", 0.0)
    chokepoints = _chokepoints(engine, order, DEFAULT_MIN_IMPACT)
    progress("chokepoints", 1.0)

    rows: tuple[TrajectoryPoint, ...] = ()
    if trajectory_range is not None:
        start, end = trajectory_range
        span = check_range(start, end)
        progress("trajectory", 0.0)
        rows = tuple(
            trajectory(
                stored,
                order,
                start,
                end,
                params,
                progress=lambda q: progress("trajectory", (q.index - start.index) / len(span)),
            )
        )
        progress("trajectory", 1.0)

    failures = sim.DEFAULT_NODE_FAILURES
    simulation = None
    if simulate_samples > 0:
        simulation = _simulate(engine, order, simulate_samples, seed, failures, progress)

    progress("sources", 0.0)
    sources = _cited_sources(engine, assessments)
    mitigations = {a.provider: mitigation(engine, a) for a in assessments}
    first = engine.provenance(params)
    return ReportData(
        assessments=tuple(assessments),
        params=params,
        min_impact=DEFAULT_MIN_IMPACT,
        chokepoints=chokepoints,
        simulation=simulation,
        sources=sources,
        mitigations=mitigations,
        dataset_name=first.dataset_name,
        dataset_version=first.dataset_version,
        dataset_hash=first.dataset_hash,
        model_version=first.model_version,
        graph_version=first.graph_version,
        seed=seed,
        simulate_samples=simulate_samples,
        node_failure_probability=failures.probability,
        trajectory=rows,
        uncertainty=uncertainty,
    )


# -- chokepoints ----------------------------------------------------------------------------


def _chokepoints(
    engine: RiskEngine, order: tuple[str, ...], min_impact: float
) -> dict[str, tuple[Chokepoint, ...]]:
    """The engine's rankings (as ListChokepoints), restricted to the report's providers and
    re-ranked on them: providers cut (impact >= min_impact), then mean impact, then key."""
    graph = engine.graph
    sources = {
        "node": engine.node_chokepoints,
        "firm": engine.firm_chokepoints,
        "country": engine.country_chokepoints,
    }
    out: dict[str, tuple[Chokepoint, ...]] = {}
    for kind, source in sources.items():
        rows = []
        for key, impacts in source(min_impact):
            by_provider = dict(impacts)
            mine = tuple((p, by_provider.get(p, 0.0)) for p in order)
            values = [v for _, v in mine]
            if max(values, default=0.0) <= 0.0:
                continue
            if kind == "node":
                name = graph.nodes[key].name
            elif kind == "country":
                country = graph.countries.get(key)
                name = country.name if country else key
            else:
                name = key
            cut, mean = chokepoint_rank(values, min_impact)
            rows.append(
                Chokepoint(
                    kind=kind,
                    key=key,
                    display_name=name,
                    impacts=mine,
                    providers_cut=cut,
                    mean_impact=mean,
                )
            )
        rows.sort(key=lambda c: (-c.providers_cut, -round(c.mean_impact, 12), c.key))
        out[kind] = tuple(rows[:TOP_CHOKEPOINTS])
    return out


# -- simulation -----------------------------------------------------------------------------


def _simulate(
    engine: RiskEngine,
    order: tuple[str, ...],
    samples: int,
    seed: int,
    failures: sim.NodeFailures,
    progress: Progress,
) -> SimulationView:
    progress("simulate", 0.0)

    def report(p: sim.Progress) -> None:
        progress("simulate", p.samples_done / max(1, p.n_samples))

    result = sim.simulate(
        engine,
        engine.supplements.events,
        samples,
        seed,
        providers=sorted(order),
        node_failures=failures,
        keep_drivers=True,  # the per-sample losses, for the histograms
        progress=report,
    )
    assert result.drivers is not None
    losses = result.drivers.loss
    column = {pid: k for k, pid in enumerate(result.drivers.providers)}
    distributions = []
    for pid in order:
        values = np.asarray(losses[:, column[pid]], dtype=np.float64)
        positive = values[values > sim.LOSS_EPSILON]
        # Bin k holds (k/B, (k+1)/B]; ceil puts a loss of exactly k/B in bin k-1.
        index = np.clip(np.ceil(positive * LOSS_BINS).astype(np.int64) - 1, 0, LOSS_BINS - 1)
        counts = np.bincount(index, minlength=LOSS_BINS)
        distributions.append(
            LossDistribution(
                provider=pid,
                risk=result.provider(pid),
                zero_count=int(values.size - positive.size),
                bins=tuple(int(c) for c in counts),
            )
        )
    return SimulationView(result=result, distributions=tuple(distributions))


# -- sources --------------------------------------------------------------------------------


def _cited_sources(
    engine: RiskEngine, assessments: Sequence[RiskAssessment]
) -> tuple[CitedSource, ...]:
    """Sources cited by the records the providers' scores rest on: the providers and their
    supply-tree nodes, the supply edges into them, their sites, the regimes reaching them and
    the country-risk rows of the countries they are exposed to."""
    graph = engine.graph
    members: set[str] = set()
    countries: set[str] = set()
    regimes: set[str] = set()
    for a in assessments:
        members.add(a.provider)
        members.update(i.node for i in a.structural_impacts)
        countries.update(c.country for c in a.geopolitical_contributions)
        regimes.update(r.regime for r in a.regimes if r.reached_nodes > 0)
    cited: dict[str, int] = defaultdict(int)
    kinds: dict[str, set[str]] = defaultdict(set)

    def cite(p: Provenance, kind: str) -> None:
        for sid in p.sources:
            cited[sid] += 1
            kinds[sid].add(kind)

    for nid in sorted(members):
        cite(graph.nodes[nid].provenance, "node")
        for site in graph.sites.get(nid, ()):
            cite(site.provenance, "site")
    for edge in graph.edges:
        if edge.consumer in members:
            cite(edge.provenance, "edge")
    for rid in sorted(regimes):
        cite(graph.regimes[rid].provenance, "regime")
    for iso3 in sorted(countries):
        if iso3 in graph.countries:
            cite(graph.countries[iso3].provenance, "country risk")
    rows = [
        CitedSource(graph.sources[sid], cited[sid], tuple(sorted(kinds[sid])))
        for sid in sorted(cited)
        if sid in graph.sources
    ]
    return tuple(sorted(rows, key=lambda r: (-r.records, r.source.id)))


# -- inherent vs residual -------------------------------------------------------------------


def mitigation(engine: RiskEngine, a: RiskAssessment) -> Mitigation:
    """The composite before and after the resilience sub-score's buffer credit."""
    resilience = a.sub_score("resilience")
    result = engine.resilience_result() if resilience.available else None
    if result is None:
        return Mitigation(a.composite, a.composite, None)
    impact = {i.node: i.impact for i in a.structural_impacts}
    unbuffered = 100.0 * max((impact.get(n.node, 0.0) for n in result.nodes), default=0.0)
    unbuffered = min(100.0, max(unbuffered, resilience.score))
    scores = {s.key: s.score for s in a.sub_scores if s.available}
    scores["resilience"] = unbuffered
    inherent = recompose(a, scores)
    return Mitigation(max(inherent, a.composite), a.composite, unbuffered)


def recompose(a: RiskAssessment, scores: dict[str, float]) -> float:
    """The composite rule (:func:`models.scoring.risk_engine.compose`) with the assessment's
    own renormalised weights, alpha and critical threshold, on other sub-score values."""
    weights = {s.key: s.weight for s in a.sub_scores if s.available}
    _, composite = compose(weights, scores, a.floor_alpha, a.critical_threshold)
    return composite / 1_000_000
