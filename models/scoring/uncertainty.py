"""Ranges, not points, applied to the scores themselves (METHODS v2 §11).

The data carry ranges: supply shares (``share_low``/``share_high``), fleet units
(``units_low``/``units_high``) and pool capacities and demands (``capacity_low``/``_high``,
``demand_low``/``_high``). :func:`score_uncertainty` draws every range at once (seeded,
triangular with the recorded value as its mode; supply shares renormalised per category so
each category still sums to 1), rescores every provider on each draw, and reports

* a 90 % interval (5th-95th percentile, linear interpolation) of every sub-score and the
  composite;
* for each pair of providers, the share of draws in which their order in the point ranking
  holds;
* a rank as *certain* only when every pairwise order it takes part in holds in at least
  :data:`CERTAIN` of the draws.

The draws score with :data:`DRAW_TAIL_SAMPLES` tail samples on common random numbers (the
same seed in every draw), and the tail's difference from the full-sample point estimate is
added back (a control variate), so the interval shows the data's spread, not Monte Carlo noise.
Event probabilities carry no ranges in the data and are not drawn.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.executor import LocalExecutor, default_executor
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.bundle import Supplements
from sovrisk.models.graph.series import DatedSeries
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.limits import DEFAULT_DRAWS, DEFAULT_SEED, MAX_DRAWS
from sovrisk.models.scoring.params import SUB_SCORES, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine, compose, timed_analysis

#: The tail samples per draw.
DRAW_TAIL_SAMPLES = 2_000
#: Draws scored at once (the LP solver and the kernels release the GIL: ~1.4x on 2 cores).
DRAW_THREADS = 2
#: The interval's quantiles, and the probability above which an order counts as certain.
INTERVAL = (0.05, 0.95)
CERTAIN = 0.9
#: What an interval is given for: the composite and every sub-score.
COMPOSITE = "composite"


@dataclass(frozen=True, slots=True)
class ScoreInterval:
    key: str  # "composite" or a sub-score key
    point: float  # the score on the recorded values
    low: float  # 5th percentile over the draws
    high: float  # 95th percentile over the draws


@dataclass(frozen=True, slots=True)
class PairOrder:
    """``higher`` scores above ``lower`` in the point ranking; ``probability`` is the share of
    draws in which it still does (ties count half)."""

    higher: str
    lower: str
    probability: float


@dataclass(frozen=True, slots=True)
class ProviderUncertainty:
    provider: str
    rank: int  # in the point ranking, 1 = riskiest
    rank_certain: bool  # every pairwise order it takes part in holds with >= CERTAIN
    rank_low: int  # best (smallest) rank over the draws' 5th-95th percentile
    rank_high: int
    intervals: tuple[ScoreInterval, ...]

    def interval(self, key: str) -> ScoreInterval:
        return next(i for i in self.intervals if i.key == key)


@dataclass(frozen=True, slots=True)
class Uncertainty:
    draws: int
    seed: int
    providers: tuple[ProviderUncertainty, ...]  # in point-ranking order
    pairs: tuple[PairOrder, ...]  # every pair, in point-ranking order
    drawn: tuple[tuple[str, int], ...]  # what was drawn: (kind, count of ranges)
    notes: tuple[str, ...]

    def of(self, provider: str) -> ProviderUncertainty:
        return next(p for p in self.providers if p.provider == provider)

    def order(self, higher: str, lower: str) -> float:
        """Probability that ``higher`` scores above ``lower`` (either order may be asked)."""
        for pair in self.pairs:
            if (pair.higher, pair.lower) == (higher, lower):
                return pair.probability
            if (pair.higher, pair.lower) == (lower, higher):
                return 1.0 - pair.probability
        raise KeyError((higher, lower))


def check_draws(draws: int, field: str = "draws") -> int:
    if not 0 <= draws <= MAX_DRAWS:
        raise InvalidParameterError(
            [FieldViolation(field, str(draws), f"must be between 0 and {MAX_DRAWS}")]
        )
    return draws


def _triangular(rng: np.random.Generator, low: float, mode: float, high: float) -> float:
    mode = min(max(mode, low), high)
    return float(rng.triangular(low, mode, high)) if high > low else mode


def draw_graph(graph: SupplyGraph, rng: np.random.Generator) -> tuple[SupplyGraph, int]:
    """``graph`` with every ranged supply share drawn and each category renormalised; the
    number of ranges drawn."""
    drawn = 0
    shares: list[float] = []
    for edge in graph.edges:
        if edge.share_low < edge.share_high:
            shares.append(_triangular(rng, edge.share_low, edge.share, edge.share_high))
            drawn += 1
        else:
            shares.append(edge.share)
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for edge, share in zip(graph.edges, shares, strict=True):
        totals[(edge.consumer, edge.category)] += share
    edges = [
        dataclasses.replace(edge, share=share / totals[(edge.consumer, edge.category)])
        if totals[(edge.consumer, edge.category)] > 0
        else edge
        for edge, share in zip(graph.edges, shares, strict=True)
    ]
    drawn_graph = SupplyGraph(
        info=graph.info,
        sources=graph.sources,
        countries=graph.countries,
        nodes=graph.nodes,
        edges=edges,
        sites=graph.sites,
        regimes=graph.regimes,
    )
    return drawn_graph, drawn


def draw_series(series: DatedSeries, rng: np.random.Generator) -> tuple[DatedSeries, int, int]:
    """``series`` with fleet units and pool capacities/demands drawn from their ranges; the
    counts of fleet and capacity ranges drawn."""
    fleet_drawn = capacity_drawn = 0
    fleet = []
    for p in series.fleet:
        if (
            p.units is not None
            and p.units_low is not None
            and p.units_high is not None
            and p.units_low < p.units_high
        ):
            fleet_drawn += 1
            p = dataclasses.replace(p, units=_triangular(rng, p.units_low, p.units, p.units_high))
        fleet.append(p)
    capacity = []
    for c in series.capacity:
        if c.capacity_low < c.capacity_high:
            capacity_drawn += 1
            c = dataclasses.replace(
                c, capacity=_triangular(rng, c.capacity_low, c.capacity, c.capacity_high)
            )
        if (
            c.demand is not None
            and c.demand_low is not None
            and c.demand_high is not None
            and c.demand_low < c.demand_high
        ):
            c = dataclasses.replace(
                c, demand=_triangular(rng, c.demand_low, c.demand, c.demand_high)
            )
        capacity.append(c)
    drawn = DatedSeries(
        fleet=tuple(fleet),
        capacity=tuple(capacity),
        allocation=series.allocation,
        alternates=series.alternates,
        capex=series.capex,
    )
    return drawn, fleet_drawn, capacity_drawn


def _scores(a: RiskAssessment) -> dict[str, float]:
    scores = {s.key: s.score for s in a.sub_scores if s.available}
    scores[COMPOSITE] = a.composite
    return scores


def _recompose(scores: dict[str, float], weights: Mapping[str, float], p: ScoringParams) -> float:
    available = {k: weights[k] for k in SUB_SCORES if k in scores}
    _, composite = compose(available, scores, p.alpha, p.critical)
    return composite / 1_000_000  # compose works in micro-points


def score_uncertainty(
    engine: RiskEngine,
    params: ScoringParams,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> Uncertainty:
    """Intervals and rank probabilities of every provider of ``engine`` as of ``params``
    (module docstring). The same engine, parameters, draws and seed give the same result."""
    check_draws(draws)
    point = engine.assess_all(params)
    order = [a.provider for a in point]
    base = {a.provider: _scores(a) for a in point}
    weights = {
        s.key: s.weight for s in point[0].sub_scores if s.available
    }  # renormalised weights, the same for every provider of one dataset
    shared = params.with_published_weights()
    drawn, counts = _drawn_scores(engine.origin, shared, draws, seed)
    # Under other weights every draw's composite is recombined from its sub-scores (which do
    # not depend on the weights); under the published ones only when the tail moved it.
    recombine = params != shared
    samples: dict[str, dict[str, list[float]]] = {pid: defaultdict(list) for pid in order}
    for per_provider in drawn:
        for pid, drawn_scores in per_provider:
            scores = dict(drawn_scores)
            if recombine or "tail" in scores:
                scores[COMPOSITE] = _recompose(scores, weights, params)
            for key, value in scores.items():
                samples[pid][key].append(value)
    return _summarise(order, base, samples, draws, seed, counts)


DrawnScores = tuple[tuple[tuple[str, tuple[tuple[str, float], ...]], ...], ...]


@lru_cache(maxsize=8)
def _drawn_scores(
    origin: RiskEngine, params: ScoringParams, draws: int, seed: int
) -> tuple[DrawnScores, tuple[int, int, int]]:
    """Every draw's scores per provider (the tail corrected by its control variate), on
    ``params`` with the published weights, and the counts of drawn edges, fleet rows and
    capacity rows. Computed once per (version, parameters other than the weights, draws,
    seed): a what-if weighting only recombines them, instead of rescoring every draw."""
    supplements = origin.supplements
    base = {a.provider: _scores(a) for a in origin.assess_all(params)}
    # The tail's control variate: the point estimate minus the draws' sample size on the
    # recorded values (common random numbers: the same seed in every draw).
    lean = RiskEngine(origin.graph, supplements, tail_samples=DRAW_TAIL_SAMPLES)
    tail_shift = {
        a.provider: base[a.provider].get("tail", 0.0) - _scores(a).get("tail", 0.0)
        for a in lean.assess_all(params)
    }
    # Inputs are drawn in one sequence from the seed, then scored in parallel: the result
    # does not depend on which thread finishes first.
    rng = np.random.default_rng(seed)
    inputs = []
    counts = (0, 0, 0)
    for _ in range(draws):
        checkpoint()
        graph, edges_drawn = draw_graph(origin.graph, rng)
        series, fleet_drawn, capacity_drawn = draw_series(supplements.series, rng)
        counts = (edges_drawn, fleet_drawn, capacity_drawn)
        inputs.append((graph, dataclasses.replace(supplements, series=series)))

    executor = default_executor()
    if isinstance(executor, LocalExecutor) and executor.threads == 1:
        executor = LocalExecutor(DRAW_THREADS)  # the LPs and numpy release the GIL
    with timed_analysis("intervals"):
        results = executor.map(_rescore_draw, params, inputs)
    drawn: list[tuple[tuple[str, tuple[tuple[str, float], ...]], ...]] = []
    for per_draw in results:
        per_provider = []
        for provider, scores in per_draw:
            if "tail" in scores:
                scores["tail"] = min(100.0, max(0.0, scores["tail"] + tail_shift[provider]))
            per_provider.append((provider, tuple(scores.items())))
        drawn.append(tuple(per_provider))
    return tuple(drawn), counts


def _rescore_draw(
    params: ScoringParams, drawn: tuple[SupplyGraph, Supplements]
) -> list[tuple[str, dict[str, float]]]:
    """One draw's sub-scores per provider: an executor's task (module-level, so a cluster
    worker imports it by name)."""
    checkpoint()
    engine = RiskEngine(drawn[0], drawn[1], tail_samples=DRAW_TAIL_SAMPLES)
    return [(a.provider, _scores(a)) for a in engine.assess_all(params)]


def _summarise(
    order: Sequence[str],
    base: Mapping[str, Mapping[str, float]],
    samples: Mapping[str, Mapping[str, list[float]]],
    draws: int,
    seed: int,
    counts: tuple[int, int, int],
) -> Uncertainty:
    pairs = []
    composite = {pid: np.asarray(samples[pid][COMPOSITE]) for pid in order}
    for i, higher in enumerate(order):
        for lower in order[i + 1 :]:
            if draws:
                wins = composite[higher] > composite[lower]
                ties = composite[higher] == composite[lower]
                p = float((wins.sum() + 0.5 * ties.sum()) / draws)
            else:
                p = 1.0
            pairs.append(PairOrder(higher, lower, p))
    ranks = (
        np.argsort(np.argsort(-np.stack([composite[pid] for pid in order]), axis=0), axis=0) + 1
        if draws
        else None
    )
    # One quantile call per provider over all its keys (and one for every rank): a call per
    # key and bound was 112 numpy calls, 30 ms of each what-if ScoreProvider.
    rank_bounds = np.quantile(ranks, INTERVAL, axis=1) if ranks is not None else None
    providers = []
    for i, pid in enumerate(order):
        certain = all(
            (pr.probability if pr.higher == pid or pr.lower == pid else 1.0) >= CERTAIN
            for pr in pairs
        )
        drawn_keys = [k for k in base[pid] if samples[pid].get(k)]
        bounds = (
            np.quantile(np.array([samples[pid][k] for k in drawn_keys]), INTERVAL, axis=1)
            if drawn_keys
            else None
        )
        column = {k: j for j, k in enumerate(drawn_keys)}
        intervals = []
        for key, value in base[pid].items():
            if key in column and bounds is not None:
                low, high = float(bounds[0, column[key]]), float(bounds[1, column[key]])
            else:
                low, high = value, value
            intervals.append(ScoreInterval(key, value, round(low, 6), round(high, 6)))
        intervals.sort(key=lambda s: (s.key != COMPOSITE, s.key))
        if rank_bounds is not None:
            rank_low = math.floor(float(rank_bounds[0, i]))
            rank_high = math.ceil(float(rank_bounds[1, i]))
        else:
            rank_low = rank_high = i + 1
        providers.append(
            ProviderUncertainty(pid, i + 1, certain, rank_low, rank_high, tuple(intervals))
        )
    edges, fleet, capacity = counts
    notes = (
        f"{draws} seeded draws (seed {seed}) of {edges} supply-share ranges (renormalised per "
        f"category), {fleet} fleet-unit ranges and {capacity} pool-capacity ranges; "
        f"intervals are the {100 * INTERVAL[0]:g}th-{100 * INTERVAL[1]:g}th percentiles.",
        f"A rank is certain when every pairwise order it takes part in holds in at least "
        f"{100 * CERTAIN:g} % of draws.",
        "Event probabilities carry no ranges in the data and are not drawn.",
    )
    return Uncertainty(
        draws=draws,
        seed=seed,
        providers=tuple(providers),
        pairs=tuple(pairs),
        drawn=(("supply_shares", edges), ("fleet_units", fleet), ("pool_capacity", capacity)),
        notes=notes,
    )


@lru_cache(maxsize=16)
def _cached(engine: RiskEngine, params: ScoringParams, draws: int, seed: int) -> Uncertainty:
    # kept with the version's analytics too: the draws take a minute for the bundled data
    return engine.persisted(
        "uncertainty",
        lambda: score_uncertainty(engine, params, draws, seed),
        json.dumps(params.as_strings(), sort_keys=True),
        str(draws),
        str(seed),
    )


def cached_uncertainty(
    engine: RiskEngine, params: ScoringParams, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
) -> Uncertainty | None:
    """:func:`score_uncertainty`, kept for the 16 most recent (version, parameters, draws,
    seed); None for ``draws == 0``."""
    check_draws(draws)
    if draws == 0:
        return None
    return _cached(engine.origin, params, draws, seed)
