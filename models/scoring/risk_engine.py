"""The risk engine: scores each provider of one graph version (METHODS v2 §2-§5, §8).

Everything that depends only on the graph (node, firm and country knockouts for every
provider at every horizon, effective sourcing flows, regime reach) is evaluated once, as
batches on the compiled arrays, when the engine is built (:class:`ImpactModel`). A score
then only combines those arrays for the requested date, horizon and weights; results are
cached per (provider, parameters). docs/methodology.md explains every sub-score.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from sovrisk.models.analysis.allocation import (
    RULES,
    AllocationRule,
    Pool,
    pools_at,
    standing_shortfall,
)
from sovrisk.models.analysis.concentration import CR1_FLAG_PERCENT, bands, cr1, hhi, n_eff
from sovrisk.models.analysis.geopolitics import (
    GEO_HALF,
    GOVERNANCE_PREFIX,
    GOVERNANCE_RATE,
    CountryEventSpec,
    country_events,
    event_loss_curves,
    geo_score,
)
from sovrisk.models.analysis.sovereignty import sovereignty
from sovrisk.models.cancellation import checkpoint, holding
from sovrisk.models.engine.compiled import FloatArray
from sovrisk.models.engine.impacts import (
    CURVE_HORIZONS,
    HORIZONS,
    LONG,
    NEAR_SPOF,
    SPOF_TOLERANCE,
    CountryEvent,
    ImpactModel,
    horizon_index,
)
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.bundle import Supplements
from sovrisk.models.graph.dated import DatedGraph, graph_at
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, Quality
from sovrisk.models.graph.series import Quarter
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring import checks as checks_mod
from sovrisk.models.scoring.analytics_cache import COMPUTE_ALWAYS, AnalyticsCache, AnalyticsKey
from sovrisk.models.scoring.assessment import (
    CategoryConcentration,
    ContentionView,
    CountryContribution,
    CountryImpact,
    Coverage,
    CutSetView,
    FirmImpact,
    JurisdictionVeto,
    LayerConcentration,
    LossUnits,
    NodeImpact,
    PoolShortfall,
    RegimeExposure,
    ResultProvenance,
    RiskAssessment,
    RiskBand,
    RiskVector,
    Share,
    SubScore,
)
from sovrisk.models.scoring.params import MODEL_VERSION, SUB_SCORES, ScoringParams

if TYPE_CHECKING:
    from sovrisk.models.analysis.contention import ContentionResult
    from sovrisk.models.analysis.cutsets import CutSetResult
    from sovrisk.models.analysis.resilience import ResilienceResult
    from sovrisk.models.analysis.simulation import ProviderRisk, SimulationResult
    from sovrisk.models.graph.events import Event

R = TypeVar("R")
T = TypeVar("T")


def _find(rows: Sequence[R], provider: str) -> R | None:
    return next((r for r in rows if getattr(r, "provider", None) == provider), None)


#: The tail sub-score's Monte Carlo: fixed so that a score is reproducible byte for byte.
TAIL_SAMPLES = 10_000
#: Dated engines (one per quarter) kept per stored graph: 2023Q1-2027Q4 and a few more.
MAX_DATED_ENGINES = 24
#: Cut sets listed per provider in an assessment (the counts cover all of them).
MAX_CUT_SETS = 20
TAIL_SEED = 0
#: Assessments cached per engine: published parameters (every provider at a few dates and
#: horizons), and what-if parameters (weight overrides, regime overrides, ...).
STANDARD_CACHE = 256
CUSTOM_CACHE = 32
#: The tail sub-score: ``100 x CVaR95 / (CVaR95 + TAIL_HALF)``: 50 when the worst year in 20
#: loses a quarter of the year's supply on average.
TAIL_HALF = 0.25
#: How to read SimulateDisruptions' figures beside the tail sub-score: both come from the
#: same kind of distribution (simulated annual losses), but the simulation's P95 is a
#: quantile and the sub-score's CVaR95 the mean beyond it; saying so stops the two being
#: read as one measure that disagrees with itself.
SIMULATION_MEASURES = (
    "Loss = the share of the provider's annual AI-accelerator supply lost in one simulated year "
    "(duration-weighted, after each edge's buffer; 0-1, higher = riskier). P50 and P95 are the "
    "median and the 95th percentile (VaR95) of the annual losses over the sampled years: P95 is "
    "the loss exceeded in 1 sampled year in 20. CVaR95 is the mean loss of the worst 5 % of "
    "sampled years; the tail sub-score scores the CVaR95 of this annual-loss distribution "
    f"(100 x CVaR95 / (CVaR95 + {TAIL_HALF:g}), {TAIL_SAMPLES:,} samples, seed {TAIL_SEED}), "
    "not its P95."
)
#: The export-control sub-score's breadth: the mean veto of this many largest foreign
#: jurisdictions (the largest alone is about the same for every provider of one region).
EXPORT_TOP_JURISDICTIONS = 3
#: Points are kept to 1e-6 so that contributions and the floor uplift add up exactly.
_MICRO = 1_000_000


def _micro(value: float) -> int:
    return round(value * _MICRO)


#: Called with (analysis name, seconds) after each per-version analysis (cut sets,
#: contention, resilience LPs, the tail simulation) is computed: the service's metrics
#: subscribe; the domain knows nothing of them.
ANALYSIS_OBSERVERS: list[Callable[[str, float], None]] = []


def _timed(analysis: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` inside :func:`timed_analysis` (for the persisted analyses' closures)."""
    with timed_analysis(analysis):
        return fn(*args)


@contextmanager
def timed_analysis(analysis: str) -> Iterator[None]:
    """Time the body and tell :data:`ANALYSIS_OBSERVERS`."""
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    for observe in ANALYSIS_OBSERVERS:
        observe(analysis, seconds)


class RiskEngine(ImpactModel):
    """Scores providers on one :class:`SupplyGraph` version.

    >>> engine = RiskEngine(graph)                       # doctest: +SKIP
    >>> engine.assess("aws", engine.default_params())    # doctest: +SKIP
    """

    def __init__(
        self,
        graph: SupplyGraph,
        supplements: Supplements | None = None,
        *,
        graph_version: str = "",
        origin: RiskEngine | None = None,
        dated: DatedGraph | None = None,
        tail_samples: int = TAIL_SAMPLES,
        analytics: AnalyticsCache | None = None,
    ) -> None:
        supplements = supplements or Supplements()
        #: Where the per-version analytics are kept (the store, for a served version: a
        #: restarted process or another replica reads them back instead of recomputing).
        self.analytics: AnalyticsCache = analytics or COMPUTE_ALWAYS
        #: Samples of the tail simulation (fewer for the uncertainty draws, which compare
        #: draws on common random numbers).
        self.tail_samples = tail_samples
        super().__init__(graph, supplements.series.alternates)
        self.supplements = supplements
        #: Name of the stored version this graph is (e.g. "graph/versions/3"), if any.
        self.graph_version = graph_version
        #: The engine of the stored graph this one was dated from (itself if not dated): its
        #: graph is the dataset the provenance names.
        self.origin: RiskEngine = origin or self
        #: The quarter whose fleets and capacities this engine speaks for, and its dated view
        #: (None without dated series). The stored graph's engine speaks for the quarter of
        #: the dataset's as-of date when its fleet edges are that quarter's mixes.
        self.dated = dated
        self._dated: dict[Quarter, RiskEngine] = {}
        if origin is None and dated is None and supplements.series:
            view = graph_at(graph, supplements.series, graph.info.as_of)
            self.dated = view if view.graph is graph else None
        self._pool_list: tuple[Pool, ...] | None = None
        self._pools: dict[str, tuple[Pool, dict[AllocationRule, FloatArray]]] | None = None
        self._resilience: ResilienceResult | bool | None = False  # False: not computed yet
        self._tail: SimulationResult | bool | None = False
        self._cut_sets: CutSetResult | None = None
        self._contention: ContentionResult | None = None
        self._geo: tuple[tuple[CountryEventSpec, ...], FloatArray] | None = None
        # Held through the lazy analyses below (seconds for the tail and the LPs); the dated
        # engines have their own lock so a lookup never waits behind an analysis.
        self._lazy_lock = threading.Lock()
        self._dated_lock = threading.Lock()
        # Two caches: the published parameters at any date and horizon (shared by every
        # caller), and a few what-ifs (each distinct weighting would otherwise keep ~90 KB
        # per provider: 4,096 of them once grew a server by 2 GB).
        self._assess_standard = lru_cache(maxsize=STANDARD_CACHE)(self._assess_published)
        self._assess_custom = lru_cache(maxsize=CUSTOM_CACHE)(self._assess_what_if)

    def default_params(self, as_of: dt.date | None = None) -> ScoringParams:
        return ScoringParams.build(as_of=as_of or self.graph.info.as_of)

    # -- dates ------------------------------------------------------------------------------

    def at(self, as_of: dt.date) -> RiskEngine:
        """The engine for the quarter of ``as_of``: each provider's fleet set to its dated mix
        (fleet.csv, METHODS v2 §10) and the pools' capacities of that quarter, built once per
        quarter and kept (at most :data:`MAX_DATED_ENGINES`). Without dated series, or for the
        dataset's own quarter when its fleet edges are that quarter's mixes, the stored
        graph's engine itself."""
        quarter = Quarter.of(as_of)
        if self.dated is not None and self.dated.quarter == quarter:
            return self  # a dated (or what-if) engine for this very quarter
        origin = self.origin
        series = origin.supplements.series
        if not series:
            return origin
        if origin.dated is not None and origin.dated.quarter == quarter:
            return origin
        with origin._dated_lock:
            engine = origin._dated.get(quarter)
        if engine is not None:
            return engine
        dated = graph_at(origin.graph, series, quarter)
        engine = RiskEngine(
            dated.graph,
            origin.supplements,
            graph_version=origin.graph_version,
            origin=origin,
            dated=dated,
            tail_samples=origin.tail_samples,
            analytics=origin.analytics,
        )
        with origin._dated_lock:
            if len(origin._dated) >= MAX_DATED_ENGINES:
                origin._dated.pop(next(iter(origin._dated)))
            return origin._dated.setdefault(quarter, engine)

    # -- public API -------------------------------------------------------------------------

    def assess(self, provider_id: str, params: ScoringParams) -> RiskAssessment:
        """The full assessment of one provider as of ``params.as_of`` (fleets, capacities and
        regimes of that date); raises NotFoundError for an unknown id."""
        if provider_id not in self._prow:
            raise self.graph.not_found("provider", provider_id)
        engine = self.at(params.as_of)
        cached = engine._assess_standard if params.is_standard else engine._assess_custom
        return cached(provider_id, params)

    @cached_property
    def content_key(self) -> str:
        """What this engine's analytics are a function of: the model, the graph's records
        (the dated view's, for a dated engine), the supplementary files, the quarter and the
        tail's sample count. Engines that agree on it compute identical analytics."""
        quarter = str(self.dated.quarter) if self.dated is not None else ""
        parts = (
            MODEL_VERSION,
            self.graph.content_hash,
            self.supplements.digest,
            quarter,
            str(self.tail_samples),
        )
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def persisted(self, kind: str, compute: Callable[[], T], *parts: str) -> T:
        """``compute()`` once per (content, kind, parts) wherever :attr:`analytics` keeps
        results: a stored result is read back, a missing one computed (by one process) and
        stored."""
        return self.analytics.fetch(AnalyticsKey(kind, self.content_key, parts), compute)

    def _assess_published(self, pid: str, params: ScoringParams) -> RiskAssessment:
        """A published assessment, kept with the version's analytics. Its provenance names
        this engine's version: another version with the same content may have stored it."""
        stored = self.persisted(
            "assessment",
            lambda: self._assess_uncached(pid, params),
            pid,
            json.dumps(params.as_strings(), sort_keys=True),
        )
        if stored.provenance.graph_version == self.graph_version:
            return stored
        return replace(
            stored, provenance=replace(stored.provenance, graph_version=self.graph_version)
        )

    def _assess_what_if(self, pid: str, params: ScoringParams) -> RiskAssessment:
        """A caller's own parameters. When only the composite weights differ from the
        published ones, every sub-score is the published assessment's (weights only combine
        them): that one is reweighed (~1 ms) instead of recomputed (~35 ms for one provider
        of the bundled data), with an identical result."""
        published = params.with_published_weights()
        if not published.is_standard:
            return self._assess_uncached(pid, params)
        return self._reweighed(self._assess_standard(pid, published), params)

    def _reweighed(self, base: RiskAssessment, params: ScoringParams) -> RiskAssessment:
        """``base`` under ``params``' composite weights: composite, band, contributions,
        floor, vector, provenance and notes recomputed, the rest is ``base``'s. The checks
        too: they read the sub-scores' values and explanations, never the weights
        (tests/test_reweighing.py compares every field with a full computation)."""
        explanations = {s.key: s.explanation for s in base.sub_scores}
        sub_scores, composite, uplift = _composite(dict(base.raw_scores), explanations, params)
        vector = RiskVector(
            provider=base.provider,
            composite=composite,
            sub_scores=tuple((s.key, s.score) for s in sub_scores if s.available),
            as_of=params.as_of,
            dataset_hash_prefix=self.origin.graph.content_hash[:12],
        )
        return replace(
            base,
            composite=composite,
            band=RiskBand.of(composite),
            sub_scores=sub_scores,
            floor_uplift=uplift,
            floor_applied=uplift > 0.0,
            provenance=self.provenance(params),
            risk_vector=str(vector),
            notes=_weight_notes(params, sub_scores),
        )

    def assess_all(self, params: ScoringParams) -> list[RiskAssessment]:
        """Every provider, riskiest first (ties by id, so the order is reproducible)."""
        results = [self.assess(pid, params) for pid in self.provider_ids]
        return sorted(results, key=lambda r: (-r.composite, r.provider))

    def derived(self, graph: SupplyGraph, supplements: Supplements | None = None) -> RiskEngine:
        """An engine for a what-if variant of this engine's graph, speaking for the same
        quarter (it is never re-dated: its fleet edges are the scenario's)."""
        if graph is self.graph and supplements is None:
            return self
        return RiskEngine(
            graph,
            supplements or self.supplements,
            graph_version=self.graph_version,
            origin=self.origin,
            dated=self.dated or DatedGraph(Quarter.of(self.graph.info.as_of), graph, {}, ()),
            tail_samples=self.tail_samples,
        )

    def pools(self) -> tuple[Pool, ...]:
        """The constrained pools with capacity data as of this engine's quarter, claimants
        weighted by provider demand (computed once)."""
        with holding(self._lazy_lock):
            if self._pool_list is None:
                quarter = self.dated.quarter if self.dated else Quarter.of(self.graph.info.as_of)
                demand = self.supplements.demand
                weights = demand.weights() if demand else dict.fromkeys(self.provider_ids, 1.0)
                self._pool_list = tuple(
                    pool
                    for pool in pools_at(self, self.supplements.series, quarter, weights)
                    if pool.capacity is not None
                )
            return self._pool_list

    def pool_shortfalls(self) -> dict[str, tuple[Pool, dict[AllocationRule, FloatArray]]]:
        """Per pool of :meth:`pools`: the pool and, per rule (priority lists excepted), each
        provider's supply lost to it (computed once)."""
        pools = self.pools()
        with holding(self._lazy_lock):
            if self._pools is None:
                self._pools = {
                    pool.id: (
                        pool,
                        {
                            rule: standing_shortfall(self, [pool], rule)
                            for rule in RULES
                            if rule is not AllocationRule.PRIORITY
                        },
                    )
                    for pool in pools
                }
            return self._pools

    def cut_set_result(self) -> CutSetResult:
        """Minimal cut sets (size <= 2, a(P) < 0.5) of every provider, computed once."""
        with holding(self._lazy_lock):
            if self._cut_sets is None:
                from sovrisk.models.analysis.cutsets import minimal_cut_sets

                self._cut_sets = self.persisted(
                    "cut_sets", lambda: _timed("cut_sets", minimal_cut_sets, self)
                )
            return self._cut_sets

    def contention_result(self) -> ContentionResult:
        """Buyer-side contention on CoWoS-class and HBM bottlenecks, computed once."""
        with holding(self._lazy_lock):
            if self._contention is None:
                from sovrisk.models.analysis.contention import contention_analysis

                with timed_analysis("contention"):
                    self._contention = contention_analysis(self, self.supplements.demand)
            return self._contention

    def resilience_result(self) -> ResilienceResult | None:
        """The TTR/TTS analysis of this version (computed once, on first use), or None
        without resilience data."""
        with holding(self._lazy_lock):
            if self._resilience is False:
                from sovrisk.models.analysis.resilience import resilience_analysis

                data = self.supplements.resilience
                demand = self.supplements.demand
                self._resilience = (
                    self.persisted(
                        "resilience",
                        lambda: _timed("resilience", resilience_analysis, self, data, demand),
                    )
                    if data
                    else None
                )
            assert not isinstance(self._resilience, bool)
            return self._resilience

    def tail_result(self) -> SimulationResult | None:
        """The Monte Carlo behind the tail sub-score (fixed samples and seed, computed once),
        or None without events."""
        with holding(self._lazy_lock):
            if self._tail is False:
                from sovrisk.models.analysis.simulation import simulate

                events = self.supplements.events
                self._tail = (
                    self.persisted(
                        "tail",
                        lambda: _timed(
                            "tail", simulate, self, events, self.tail_samples, TAIL_SEED
                        ),
                        str(TAIL_SEED),
                    )
                    if events
                    else None
                )
            assert not isinstance(self._tail, bool)
            return self._tail

    def provenance(self, params: ScoringParams, **extra: str) -> ResultProvenance:
        """What a result rests on: model, dataset version and hash, date, every parameter."""
        parameters = {**params.as_strings(), **extra}
        if self.supplements.digest:
            parameters["supplements_sha256"] = self.supplements.digest
        parameters["tail_samples"] = str(self.tail_samples)
        parameters["tail_seed"] = str(TAIL_SEED)
        if self.dated is not None:
            parameters["fleet_quarter"] = str(self.dated.quarter)
        stored = self.origin.graph
        return ResultProvenance(
            model_version=MODEL_VERSION,
            dataset_name=stored.info.name,
            dataset_version=stored.version_id,
            dataset_hash=stored.content_hash,
            as_of=params.as_of,
            parameters=tuple(sorted(parameters.items())),
            graph_version=self.graph_version,
        )

    # -- the assessment ---------------------------------------------------------------------

    def geopolitical_events(self) -> tuple[CountryEventSpec, ...]:
        """The country events of the geopolitical sum (explicit and governance), once."""
        with holding(self._lazy_lock):
            if self._geo is None:
                specs = country_events(self, self.supplements.events)
                self._geo = (specs, event_loss_curves(self, specs))
            return self._geo[0]

    def _geo_curves(self) -> FloatArray:
        self.geopolitical_events()
        assert self._geo is not None
        return self._geo[1]

    def _assess_uncached(self, pid: str, params: ScoringParams) -> RiskAssessment:
        checkpoint()
        g, cg = self.graph, self.compiled
        node = g.nodes[pid]
        k = self._prow[pid]
        h = horizon_index(params.horizon_weeks)
        x = self.flows[:, k]
        tree = [i for i in np.flatnonzero(x > 0).tolist() if cg.ids[i] != pid]

        layers, conc_score, exposure = self._layers(x, tree, params)
        categories = self._categories(x, [cg.index[pid], *tree])
        impacts = self._node_impacts(pid, k, tree, h)
        # Aggregate market nodes (a whole commodity market) are reported but not scored as
        # single points of failure: losing a whole market is a country or regime event.
        firm_level = [i for i in impacts if not i.aggregate_market]
        spofs = [i for i in firm_level if i.is_spof]
        near = [i for i in firm_level if i.near_spof]
        structural = structural_score([i.headline for i in firm_level], spofs, near, params.top_k)
        firms = self._firm_impacts(k)
        cuts = _find(self.cut_set_result().providers, pid)
        contention = tuple(
            ContentionView(
                b.bottleneck,
                b.nodes,
                c.demand_share,
                c.dependence,
                tuple((s.fraction, s.lost) for s in c.shortfalls),
            )
            for b in self.contention_result().bottlenecks
            for c in b.providers
            if c.provider == pid
        )
        countries = self._country_impacts(pid, k, x, exposure, h)
        geo_rows, geo_loss = self._geopolitical(k, h, exposure)
        regimes, bound_now, jurisdictions = self._export_controls(
            pid, node.hq_country, tree, params, exposure
        )
        foreign = [j for j in jurisdictions if j.foreign]
        largest = foreign[0] if foreign else None  # already ranked by veto, then country
        top_vetoes = [j.veto for j in foreign[:EXPORT_TOP_JURISDICTIONS]]
        breadth = math.fsum(top_vetoes) / EXPORT_TOP_JURISDICTIONS if top_vetoes else 0.0
        export = 100.0 * (
            params.export_now_weight * bound_now + (1.0 - params.export_now_weight) * breadth
        )
        raw: dict[str, float | None] = {
            "concentration": conc_score,
            "structural": structural,
            "geopolitical": geo_score(geo_loss),
            "export_control": export,
        }
        resilience = self.resilience_result()
        provider_resilience = _find(resilience.providers, pid) if resilience else None
        raw["resilience"] = provider_resilience.score if provider_resilience else None
        tail = self.tail_result()
        provider_tail = _find(tail.providers, pid) if tail else None
        raw["tail"] = tail_score(provider_tail.cvar95) if provider_tail else None
        horizon = f"{params.horizon_weeks:g} weeks"
        explanations = {
            "concentration": _explain_concentration(layers),
            "structural": _explain_structural(spofs, near, firm_level, params.top_k),
            "geopolitical": _explain_geo(geo_rows, geo_loss, horizon),
            "resilience": (
                provider_resilience.explanation
                if provider_resilience
                else "Unavailable: no resilience data (resilience.csv)."
            ),
            "tail": (
                _explain_tail(provider_tail, self.tail_samples)
                if provider_tail
                else "Unavailable: no disruption events (events.csv)."
            ),
            "export_control": (
                f"{100 * bound_now:.1f} % of supply bound by regimes in force on "
                f"{params.as_of.isoformat()}; mean veto of the {EXPORT_TOP_JURISDICTIONS} "
                f"largest foreign jurisdictions at {horizon} {100 * breadth:.1f} %"
                + (f" (largest {largest.country} {100 * largest.veto:.1f} %)." if largest else ".")
            ),
        }
        sub_scores, composite, uplift = _composite(raw, explanations, params)
        coverage = self._coverage(pid, x, tree)
        provenance = self.provenance(params)
        vector = RiskVector(
            provider=pid,
            composite=composite,
            sub_scores=tuple((s.key, s.score) for s in sub_scores if s.available),
            as_of=params.as_of,
            dataset_hash_prefix=self.origin.graph.content_hash[:12],
        )
        partial = RiskAssessment(
            provider=pid,
            display_name=node.name,
            home_country=node.hq_country,
            composite=composite,
            band=RiskBand.of(composite),
            sub_scores=sub_scores,
            floor_alpha=params.alpha,
            floor_uplift=uplift,
            retained_capacity=1.0 - bound_now,
            layers=layers,
            structural_impacts=impacts,
            spof_count=len(spofs),
            firm_impacts=firms,
            cut_sets=tuple(
                CutSetView(c.nodes, c.retained, c.aggregate_market)
                for c in (cuts.cut_sets[:MAX_CUT_SETS] if cuts else ())
            ),
            singleton_cuts=cuts.singletons if cuts else 0,
            pair_cuts=cuts.pairs if cuts else 0,
            contention=contention,
            country_impacts=countries,
            geopolitical_contributions=geo_rows,
            regimes=regimes,
            bound_now=bound_now,
            jurisdictions=jurisdictions,
            largest_foreign_veto=largest,
            jurisdictions_over_half=sum(1 for j in foreign if j.veto >= 0.5),
            checks=(),
            coverage=coverage,
            provenance=provenance,
            risk_vector=str(vector),
            horizon_weeks=params.horizon_weeks,
            near_spof_count=len(near),
            floor_applied=uplift > 0.0,
            critical_threshold=params.critical,
            categories=categories,
            geopolitical_expected_loss=geo_loss,
            loss_units=self._loss_units(pid, provider_tail, params.as_of),
            quarter=str(self.dated.quarter if self.dated else Quarter.of(params.as_of)),
            series_notes=self._series_notes(pid, params.as_of),
            sovereignty=sovereignty(self, pid, horizon=params.horizon_weeks),
            capacity=self._capacity(k),
            notes=_weight_notes(params, sub_scores),
            raw_scores=tuple(raw.items()),
        )
        return replace(partial, checks=checks_mod.run_checks(g, partial))

    def _layers(
        self, x: FloatArray, tree: Sequence[int], params: ScoringParams
    ) -> tuple[tuple[LayerConcentration, ...], float, dict[str, float]]:
        """Per-layer concentration, the layer-weighted concentration score, and the provider's
        layer-weighted exposure to each country (sourcing sited there)."""
        g, cg = self.graph, self.compiled
        by_layer: dict[str, list[int]] = defaultdict(list)
        for i in tree:
            by_layer[g.nodes[cg.ids[i]].layer].append(i)
        # Every layer present is reported (and checked) even at weight 0; only the sums weigh.
        weights = {k: w for k, w in params.layer_weights if k in by_layer}
        total_w = math.fsum(weights.values())
        layers: list[LayerConcentration] = []
        conc = 0.0
        exposure: dict[str, float] = defaultdict(float)
        for layer in sorted(weights):
            members = by_layer[layer]
            flow = math.fsum(x[i] for i in members)
            firms: dict[str, float] = defaultdict(float)
            nations: dict[str, float] = defaultdict(float)
            for i in members:
                share = x[i] / flow
                firms[g.nodes[cg.ids[i]].owner] += share
                for c in np.flatnonzero(self._location_dense[i]).tolist():
                    nations[cg.countries[c]] += share * self._location_dense[i, c]
            w = weights[layer] / total_w if total_w > 0 else 0.0
            firm_hhi, country_hhi = hhi(firms), hhi(nations)
            top_firm, top_firm_pct = cr1(firms)
            top_country, top_country_pct = cr1(nations)
            score = (firm_hhi + country_hhi) / 200.0
            conc += w * score
            for iso3, share in nations.items():
                exposure[iso3] += w * share
            layers.append(
                LayerConcentration(
                    layer=layer,
                    weight=w,
                    firm_hhi=firm_hhi,
                    country_hhi=country_hhi,
                    firm_n_eff=n_eff(firm_hhi),
                    country_n_eff=n_eff(country_hhi),
                    firm_top=Share(top_firm, top_firm, top_firm_pct / 100.0),
                    country_top=Share(
                        top_country, self._country_name(top_country), top_country_pct / 100.0
                    ),
                    cr1_over_65=max(top_firm_pct, top_country_pct) > CR1_FLAG_PERCENT,
                    firm_bands=bands(firm_hhi),
                    country_bands=bands(country_hhi),
                    firm_shares=_shares(firms, lambda s: s),
                    country_shares=_shares(nations, self._country_name),
                    score=score,
                )
            )
        return tuple(layers), conc, dict(exposure)

    def _categories(self, x: FloatArray, tree: Sequence[int]) -> tuple[CategoryConcentration, ...]:
        """Concentration of every input category over the provider's sourcing (METHODS v2 §3):
        checks run per category, so one category's monopoly is never averaged away in its
        layer. A consumer's suppliers count by ``x_consumer x share``."""
        g, cg = self.graph, self.compiled
        firms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        nations: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        flow: dict[str, float] = defaultdict(float)
        consumers: dict[str, set[str]] = defaultdict(set)
        members = {cg.ids[i] for i in tree}
        for i in tree:  # the provider (its fleet) and every consumer in its supply tree
            nid = cg.ids[i]
            for edge in g.inputs(nid):
                if edge.supplier not in members:
                    continue
                weight = float(x[i]) * edge.share
                flow[edge.category] += weight
                consumers[edge.category].add(nid)
                supplier = g.nodes[edge.supplier]
                firms[edge.category][supplier.owner] += weight
                for country, share in g.location(edge.supplier).items():
                    nations[edge.category][country] += weight * share
        rows = []
        for category in sorted(flow):
            total = flow[category]
            if total <= 0.0:
                continue
            f = {k: v / total for k, v in firms[category].items()}
            c = {k: v / total for k, v in nations[category].items()}
            top_firm, firm_pct = cr1(f)
            top_country, country_pct = cr1(c)
            rows.append(
                CategoryConcentration(
                    category=category,
                    flow=total,
                    consumers=tuple(sorted(consumers[category])),
                    firm_hhi=hhi(f),
                    country_hhi=hhi(c),
                    firm_top=Share(top_firm, top_firm, firm_pct / 100.0),
                    country_top=Share(
                        top_country, self._country_name(top_country), country_pct / 100.0
                    ),
                    cr1_over_65=max(firm_pct, country_pct) > CR1_FLAG_PERCENT,
                )
            )
        return tuple(rows)

    def _node_impacts(
        self, pid: str, k: int, tree: Sequence[int], h: int
    ) -> tuple[NodeImpact, ...]:
        g, cg = self.graph, self.compiled
        paths = g.supply_paths(pid)
        rows = []
        for i in tree:
            impact = float(self.node_impact[k, i])
            if impact <= 0.0:
                continue
            nid = cg.ids[i]
            market = AGGREGATE_MARKET_TAG in g.nodes[nid].tags
            spof = impact >= 1.0 - SPOF_TOLERANCE and not market
            rows.append(
                NodeImpact(
                    node=nid,
                    display_name=g.nodes[nid].name,
                    kind=str(g.nodes[nid].kind),
                    impact=impact,
                    is_spof=spof,
                    evidence_path=tuple(paths.get(nid, ())),
                    aggregate_market=market,
                    near_spof=not spof and not market and impact >= NEAR_SPOF,
                    curve=_curve_of(self.node_curve[:, k, i]),
                    headline=float(self.node_curve[h, k, i]),
                )
            )
        # Equal impacts: the node nearest the provider first (the most actionable), then id.
        return tuple(
            sorted(rows, key=lambda r: (-round(r.impact, 12), len(r.evidence_path), r.node))
        )

    def _firm_impacts(self, k: int) -> tuple[FirmImpact, ...]:
        rows = [
            FirmImpact(
                firm=owner, impact=float(self.firm_impact[k, f]), nodes=self._firm_nodes[owner]
            )
            for f, owner in enumerate(self.firms)
            if self.firm_impact[k, f] > 0.0
        ]
        return tuple(sorted(rows, key=lambda r: (-round(r.impact, 12), r.firm)))

    def _country_impacts(
        self, pid: str, k: int, x: FloatArray, exposure: dict[str, float], h: int
    ) -> tuple[CountryImpact, ...]:
        g, cg = self.graph, self.compiled
        paths = g.supply_paths(pid)
        site_loss = self.country_curve[CountryEvent.SITE_LOSS]
        blockade = self.country_curve[CountryEvent.BLOCKADE]
        rows = []
        for c, iso3 in enumerate(cg.countries):
            impact = float(site_loss[h, k, c])
            if max(float(site_loss[LONG, k, c]), float(blockade[LONG, k, c])) <= 0.0:
                continue
            # Evidence: the node carrying the most of this provider's flow in that country.
            weight = x * self._site_dense[:, c]
            driver = cg.ids[int(np.argmax(weight))]
            path = (*paths.get(driver, ()), f"country:{iso3}")
            rows.append(
                CountryImpact(
                    iso3,
                    self._country_name(iso3),
                    impact,
                    g.countries[iso3].risk,
                    tuple(path),
                    blockade=float(blockade[h, k, c]),
                    site_loss_curve=_curve_of(site_loss[:, k, c]),
                    blockade_curve=_curve_of(blockade[:, k, c]),
                    long_run=float(site_loss[LONG, k, c]),
                )
            )
        # Equal impacts: the country carrying more of the provider's sourcing first.
        return tuple(
            sorted(
                rows,
                key=lambda r: (-round(r.impact, 12), -exposure.get(r.country, 0.0), r.country),
            )
        )

    def _export_controls(
        self,
        pid: str,
        home: str,
        tree: Sequence[int],
        params: ScoringParams,
        exposure: dict[str, float],
    ) -> tuple[tuple[RegimeExposure, ...], float, tuple[JurisdictionVeto, ...]]:
        g, cg = self.graph, self.compiled
        k = self._prow[pid]
        h = horizon_index(params.horizon_weeks)
        in_tree = np.zeros(cg.n_nodes, dtype=bool)
        in_tree[list(tree)] = True
        state = self.regime_state(params.as_of, params.regime_overrides)
        in_force = state.in_force
        weeks = self.regime_weeks(params.as_of, in_force)
        # A regime held in force by an override counts as long in force (fully felt).
        forced = {rid for rid, on in params.regime_overrides if on}
        weeks = tuple((rid, math.inf if rid in forced else w) for rid, w in weeks)
        bound_now = float(self.bound_now(weeks)[k])
        veto = self.jurisdiction_veto(in_force)
        regimes = []
        for r in g.regimes.values():
            active = r.id in in_force
            replaced_by = state.replaced_by.get(r.id, frozenset())
            curve = (
                self.regime_veto_curve(r.id, replaced_by)[:, k]
                if r.binds
                else np.zeros(len(CURVE_HORIZONS))
            )
            cut = float(curve[LONG]) if active else 0.0
            reached = self._bound[r.id] > 0 if r.binds else np.zeros(cg.n_nodes, dtype=bool)
            regimes.append(
                RegimeExposure(
                    regime=r.id,
                    display_name=r.name,
                    issuer=r.issuer,
                    citation=r.citation,
                    in_force=active,
                    binds_provider=cut > 0.0,
                    veto=cut,
                    reached_nodes=int(np.count_nonzero(reached & in_tree)),
                    effective_from=r.effective_from,
                    effective_to=r.effective_to,
                    curve=_curve_of(curve),
                    status=state.status(r),
                    action=str(r.action),
                    measure=str(r.measure),
                    suspended_by=state.suspended.get(r.id, ()),
                    replaced_by=tuple(sorted(replaced_by)),
                    replaces=tuple(sorted(r.replaces)),
                    suspends=tuple(sorted(r.suspends)),
                )
            )
        regimes.sort(key=lambda r: (not r.in_force, -r.veto, r.effective_from, r.regime))

        # Jurisdictions: every country with sites in the tree, and every issuer of a regime.
        exposed = {cg.countries[c] for c in np.flatnonzero(self._site_dense[list(tree)].sum(0))}
        issuers = {r.issuer for r in g.regimes.values()}
        jurisdictions = tuple(
            sorted(
                (
                    JurisdictionVeto(
                        j,
                        self._country_name(j),
                        float(veto[h, k, c]),
                        j != home,
                        curve=_curve_of(veto[:, k, c]),
                        long_run=float(veto[LONG, k, c]),
                    )
                    for c, j in enumerate(self.jurisdictions)
                    if j in exposed or j in issuers
                ),
                # equal vetoes: the longer-run one, then the more of the provider's sourcing
                key=lambda v: (
                    -round(v.veto, 12),
                    -round(v.long_run, 12),
                    -exposure.get(v.country, 0.0),
                    v.country,
                ),
            )
        )
        return tuple(regimes), max(0.0, bound_now), jurisdictions

    def _geopolitical(
        self, k: int, h: int, exposure: dict[str, float]
    ) -> tuple[tuple[CountryContribution, ...], float]:
        """Per-country contributions to the expected loss and the total (METHODS v2 §4). A
        governance event's probability is the country's rating as the provider's home
        country sees it (a ``perspective`` row of country_risk.csv, when there is one)."""
        specs = self.geopolitical_events()
        losses = self._geo_curves()[h, k]  # per event
        home = self.graph.nodes[self.provider_ids[k]].hq_country
        by_country: dict[str, float] = defaultdict(float)
        events: dict[str, list[str]] = defaultdict(list)
        for spec, loss in zip(specs, losses.tolist(), strict=True):
            probability = spec.probability
            if spec.id.startswith(GOVERNANCE_PREFIX) and spec.countries[0] in self.graph.countries:
                record = self.graph.countries[spec.countries[0]]
                if record.perspectives:
                    probability = GOVERNANCE_RATE * record.seen_from(home)[0] / 100.0
            term = probability * max(0.0, loss)
            if term <= 0.0:
                continue
            for iso3 in spec.countries:
                by_country[iso3] += term / len(spec.countries)
                events[iso3].append(spec.id)
        for iso3, share in exposure.items():  # every country the provider sources from
            if share > 0.0:
                by_country[iso3] += 0.0
        total = math.fsum(by_country.values())
        score = geo_score(total)
        rows = tuple(
            sorted(
                (
                    CountryContribution(
                        c,
                        self._country_name(c),
                        exposure.get(c, 0.0),
                        self.graph.countries[c].seen_from(home)[1]
                        if c in self.graph.countries
                        else 0.0,
                        score * value / total if total > 0 else 0.0,
                        expected_loss=value,
                        events=tuple(events[c]),
                    )
                    for c, value in by_country.items()
                ),
                key=lambda r: (-r.expected_loss, -r.exposure, r.country),
            )
        )
        return rows, total

    def _loss_units(self, pid: str, risk: ProviderRisk | None, as_of: dt.date) -> LossUnits | None:
        """EAL and the tail in units: supply-weeks, capex at risk, accelerators. Capex is the
        year's (capex.csv) and intake four times the quarter's new units (fleet.csv) where
        the series give them, else provider_demand.csv's."""
        if risk is None:
            return None
        demand = self.supplements.demand
        record = demand.records.get(pid) if demand else None
        capex = record.capex_usd_bn if record else None
        intake = record.intake_units if record else None
        # Outside a series the nearest point is used, as everywhere, and series_notes says so.
        series = self.supplements.series
        year_capex = series.capex_at(pid, as_of.year)
        if year_capex is not None:
            capex = year_capex.value
        mix = self.dated.fleets.get(pid) if self.dated else None
        if mix is not None and mix.value.total_units is not None:
            intake = 4.0 * mix.value.total_units
        eal = risk.mean_loss
        return LossUnits(
            expected_annual_loss=eal,
            expected_annual_loss_se=risk.mean_loss_se,
            cvar95=risk.cvar95,
            return_period_losses=risk.return_period_losses,
            supply_weeks_per_year=52.0 * eal,
            capex_usd_bn=capex,
            capex_at_risk_usd_bn=None if capex is None else capex * eal,
            intake_units=intake,
            accelerators_lost_per_year=None if intake is None else intake * eal,
            samples=self.tail_samples,
            seed=TAIL_SEED,
        )

    def _series_notes(self, pid: str, as_of: dt.date) -> tuple[str, ...]:
        """What the dated series could not give for this date, said so (never silently)."""
        notes = []
        if self.dated is not None and pid in self.dated.fleets and self.dated.fleets[pid].note:
            notes.append(self.dated.fleets[pid].note)
        year_capex = self.supplements.series.capex_at(pid, as_of.year)
        if year_capex is not None and year_capex.note:
            notes.append(year_capex.note + " (capex)")
        for pool in self.pools():
            notes.extend(pool.notes)
        return tuple(notes)

    def _capacity(self, k: int) -> tuple[PoolShortfall, ...]:
        rows = []
        for pool, by_rule in self.pool_shortfalls().values():
            state = pool.capacity.value if pool.capacity else None
            rows.append(
                PoolShortfall(
                    pool=pool.id,
                    quarter=str(pool.quarter),
                    unit=state.unit if state else "",
                    capacity=state.capacity if state else None,
                    yield_=state.yield_ if state else None,
                    demand=state.demand if state else None,
                    output=pool.output,
                    shortfall=tuple((str(r), float(v[k])) for r, v in by_rule.items()),
                    note="; ".join(pool.notes),
                )
            )
        return tuple(rows)

    def _coverage(self, pid: str, x: FloatArray, tree: Sequence[int]) -> Coverage:
        """How much of what the score rests on is sourced (A/B), by flow (data/README.md,
        "Coverage"): supply edges (flow into the consumer x share), production sites (flow of
        the node x site share), regimes (flow of the tree nodes each reaches) and events (flow
        of the tree nodes each takes capacity from)."""
        g, cg = self.graph, self.compiled
        members = {cg.ids[i] for i in tree} | {pid}
        weight: dict[Quality, float] = defaultdict(float)
        edges = with_range = 0
        for e in g.edges:
            if e.consumer not in members:
                continue
            edges += 1
            with_range += e.share_low < e.share_high
            weight[e.provenance.quality] += float(x[cg.index[e.consumer]]) * e.share
        total = math.fsum(weight.values()) or 1.0
        share_c = weight[Quality.C] / total
        site_w: dict[Quality, float] = defaultdict(float)
        # In id order: a set's order follows the process's string hashing, and the sum's last
        # bits its order (a Ray worker, another replica must get the same bits).
        for nid in sorted(members):
            for site in g.sites.get(nid, ()):
                site_w[site.provenance.quality] += float(x[cg.index[nid]]) * site.share
        regime_w: dict[Quality, float] = defaultdict(float)
        for rid, bound in self._bound.items():
            reached = float(np.dot(x, bound > 0.0))
            regime_w[g.regimes[rid].provenance.quality] += reached
        event_w: dict[Quality, float] = defaultdict(float)
        for event in self.supplements.events:
            exposure = _event_members(self, event)
            event_w[event.quality] += float(np.dot(x, exposure))
        parts = {
            "edges": _ab_share(weight),
            "sites": _ab_share(site_w),
            "regimes": _ab_share(regime_w),
            "events": _ab_share(event_w),
        }
        known = [v for v in parts.values() if v is not None]
        overall = math.fsum(known) / len(known) if known else 0.0
        return Coverage(
            flow_share_a=weight[Quality.A] / total,
            flow_share_b=weight[Quality.B] / total,
            flow_share_c=share_c,
            edges_total=edges,
            edges_with_range=with_range,
            nodes_total=len(tree),
            notes=(
                f"{100 * share_c:.0f} % of the supply flow rests on C-quality estimates; "
                + ", ".join(f"{k} {100 * v:.0f} % A/B" for k, v in parts.items() if v is not None)
                + f" by flow (mean {100 * overall:.0f} %); coverage is reported beside the "
                "score, not folded into it."
            ),
            sites_share_ab=parts["sites"],
            regimes_share_ab=parts["regimes"],
            events_share_ab=parts["events"],
            overall_share_ab=overall,
        )

    def _country_name(self, iso3: str) -> str:
        record = self.graph.countries.get(iso3)
        return record.name if record else iso3


def _ab_share(weights: Mapping[Quality, float]) -> float | None:
    """Share of the weight on A- or B-rated records (None when nothing weighs)."""
    total = math.fsum(weights.values())
    if total <= 0.0:
        return None
    return (weights.get(Quality.A, 0.0) + weights.get(Quality.B, 0.0)) / total


def _event_members(engine: RiskEngine, event: Event) -> FloatArray:
    """How much of each node's capacity an event takes (a blockade: its countries' sites)."""
    from sovrisk.models.analysis.simulation import member_exposure

    exposure = member_exposure(event, engine.compiled, engine.graph)
    if event.member_countries:
        columns = [
            k for k, c in enumerate(engine.compiled.countries) if c in event.member_countries
        ]
        sited = np.asarray(engine.compiled.sites[:, columns].sum(axis=1), dtype=np.float64)
        exposure = np.maximum(exposure, np.minimum(sited.ravel(), 1.0))
    return exposure


def _shares(values: dict[str, float], namer: Callable[[str], str]) -> tuple[Share, ...]:
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Share(key, namer(key), share) for key, share in ordered if share > 0)


def compose(
    weights: Mapping[str, float], scores: Mapping[str, float], alpha: float, critical: float
) -> tuple[dict[str, int], int]:
    """The composite rule on given weights and scores, in micro-points (1e-6): each
    contribution ``w_k s_k`` and the composite ``sum w_k s_k``, raised to ``alpha max_k s_k``
    only when ``max_k s_k >= critical`` (METHODS v2 §8). Shared by scoring and the reports'
    inherent-risk recomposition so that the rule lives in one place."""
    contributions = {k: _micro(weights[k] * scores[k]) for k in weights}
    weighted = sum(contributions.values())
    worst = max((scores[k] for k in weights), default=0.0)
    floor = _micro(alpha * worst) if worst >= critical else 0
    return contributions, max(weighted, floor)


def _composite(
    raw: dict[str, float | None], explanations: dict[str, str], params: ScoringParams
) -> tuple[tuple[SubScore, ...], float, float]:
    """``sum w_k s_k``, raised to ``alpha max_k s_k`` only when a sub-score is critical
    (``>= params.critical``), with contributions that add up exactly (METHODS v2 §8).

    A sub-score without data (``None``) is reported as unavailable and the weights are
    renormalised over the available ones, so missing data neither counts as zero risk nor
    silently shifts the scale. Scores and contributions are kept to 1e-6 points and summed as
    integers, so the contributions plus the floor uplift equal the composite exactly.
    """
    available = [k for k in SUB_SCORES if raw[k] is not None]
    total = math.fsum(params.weight(k) for k in available)
    if total <= 0.0:
        shown = ", ".join(f"{k}={params.weight(k):g}" for k in available)
        raise InvalidParameterError(
            [FieldViolation("weights", shown, "every sub-score with data has weight 0")]
        )
    weight = {k: params.weight(k) / total if total > 0 else 0.0 for k in available}
    scores = {k: min(100.0, max(0.0, float(raw[k] or 0.0))) for k in available}
    contributions, composite = compose(weight, scores, params.alpha, params.critical)
    weighted = sum(contributions.values())
    subs = tuple(
        SubScore(k, round(scores[k], 6), weight[k], contributions[k] / _MICRO, explanations[k])
        if k in scores
        else SubScore(k, 0.0, 0.0, 0.0, explanations[k], available=False)
        for k in SUB_SCORES
    )
    return subs, composite / _MICRO, (composite - weighted) / _MICRO


def _explain_tail(tail: ProviderRisk, samples: int) -> str:
    """The tail sub-score's measure named exactly, with the simulation's P95 of the same
    distribution beside it (a different statistic: see :data:`SIMULATION_MEASURES`)."""
    return (
        f"CVaR95 of the simulated annual-loss distribution {tail.cvar95:.3f}: in the worst 5 % "
        f"of simulated years (1 in 20) the provider loses {100 * tail.cvar95:.1f} % of its "
        "annual supply on average; the P95 (VaR95) of the same annual losses, the loss exceeded "
        f"in 1 year in 20 that SimulateDisruptions reports, is {tail.p95:.3f}. Expected annual "
        f"loss {100 * tail.mean_loss:.2f} %, 1-in-100-year loss {100 * tail.loss_at(100):.1f} % "
        f"({samples:,} samples, seed {TAIL_SEED}; 100 x CVaR95 / (CVaR95 + {TAIL_HALF:g}))."
    )


def _weight_notes(params: ScoringParams, subs: Sequence[SubScore]) -> tuple[str, ...]:
    """The parameters' renormalisation note, and, when sub-scores without data moved the
    weights again, that too: the effective weights are the sub-scores' ``weight``."""
    notes = params.weight_notes()
    missing = [s.key for s in subs if not s.available]
    if notes and missing:
        effective = ", ".join(f"{s.key} {s.weight:.3f}" for s in subs if s.available)
        notes += (
            f"no data for {', '.join(missing)}: the weights renormalised again over the "
            f"sub-scores with data: {effective}",
        )
    return notes


def _explain_concentration(layers: Sequence[LayerConcentration]) -> str:
    worst = sorted(layers, key=lambda lc: -lc.weight * lc.score)[:3]
    parts = [
        f"{lc.layer}: firm HHI {lc.firm_hhi:,.0f} (top {lc.firm_top.key} "
        f"{100 * lc.firm_top.share:.0f} %), country HHI {lc.country_hhi:,.0f} "
        f"(top {lc.country_top.key} {100 * lc.country_top.share:.0f} %)"
        for lc in worst
    ]
    return "Layer-weighted mean of firm and country HHI/100. Heaviest: " + "; ".join(parts) + "."


def _curve_of(values: FloatArray) -> tuple[float, ...]:
    """The five reporting horizons of a curve (the long run dropped)."""
    return tuple(float(v) for v in values[: len(HORIZONS)])


def structural_score(
    headline: Sequence[float], spofs: Sequence[object], near: Sequence[object], top_k: int
) -> float:
    """Banded by the worst single failure in the long run, placed in the band by breadth:
    ``[50, 100]`` with a single point of failure (``50 + 50 b``), ``[40, 50)`` with near-SPOFs
    (>= 0.95) only (``40 + 10 b``), ``[0, 40)`` otherwise (``40 b``); the breadth ``b`` is the
    mean impact at the headline horizon of the ``top_k`` most critical supplier nodes (0-1).
    A provider with a SPOF therefore always ranks above one without (METHODS v2 §12), a
    near-SPOF (a 95 % loss) sits just below that line rather than far from it, and within a band
    the breadth of the critical core, after buffers, orders providers."""
    top = sorted(headline, reverse=True)[:top_k]
    breadth = min(1.0, math.fsum(top) / top_k) if top else 0.0
    below = min(breadth, 1.0 - 1e-9)  # stays inside its band
    if spofs:
        return 50.0 + 50.0 * breadth
    if near:
        return 40.0 + 10.0 * below
    return 40.0 * below


def tail_score(cvar95: float) -> float:
    """The 0-100 tail sub-score of CVaR95 of annual loss: ``100 c / (c + TAIL_HALF)``."""
    c = max(0.0, cvar95)
    return 100.0 * c / (c + TAIL_HALF)


def _explain_structural(
    spofs: Sequence[NodeImpact], near: Sequence[NodeImpact], rows: Sequence[NodeImpact], k: int
) -> str:
    worst = spofs[0] if spofs else near[0] if near else rows[0] if rows else None
    tier = "single point(s) of failure" if spofs else "near single point(s) of failure"
    head = (
        f"{len(spofs) or len(near)} {tier} (long run), led by {worst.node}"
        if (spofs or near) and worst
        else "No node's loss cuts 95 % or more"
    )
    return (
        f"{head}; {len(near)} near-SPOF(s) >= 95 %. Band [50, 100] with a SPOF, [40, 50) with "
        f"near-SPOFs only, [0, 40) otherwise; placed by the mean headline impact of the {k} "
        "most critical nodes."
    )


def _explain_geo(rows: Sequence[CountryContribution], loss: float, horizon: str) -> str:
    parts = [
        f"{r.country} {100 * r.expected_loss:.2f} % ({', '.join(r.events[:2])})" for r in rows[:3]
    ]
    return (
        f"Expected annual loss from country events at {horizon}: {100 * loss:.2f} % of supply "
        f"(sum of probability x loss; 100 g / (g + {GEO_HALF:g})). Top: " + "; ".join(parts)
    )
