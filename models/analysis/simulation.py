"""Correlated Monte Carlo of each provider's annual loss of accelerator supply (METHODS v2 §7).

For each scenario (sample, one year) s:

* every event e occurs with ``X_e ~ Bernoulli(p_e)`` (``p_e`` rescaled to the simulation
  horizon), with a severity ``sev_e ~ BetaPERT`` and a duration ``d_e ~ BetaPERT``;
* every eligible production **site** (a node's capacity in one country) fails independently,
  ``Y ~ Bernoulli(q)``, losing a BetaPERT share of the site for a BetaPERT number of weeks
  (:class:`NodeFailures`): a fab fire or an earthquake takes out part of one site for weeks,
  not a whole product line for good;
* a shock is a **site loss** (its members' capacity: ``up_j *= 1 - sev m_ej``, where ``m_ej``
  is how much of node j the event covers, :func:`member_exposure`) or a **blockade** (the
  edges that cross a member country's border deliver ``1 - sev`` of their flow; an edge term
  of the compiled evaluation, :func:`blockade_exposure`).

The **annual loss** of a sample is the duration-weighted share of the year's supply lost,
after each edge's buffer (METHODS v2 §2): with the sample's shocks sorted by duration
``d_1 >= ... >= d_k`` (rounded up to whole weeks, capped at the horizon H), the top m shocks
are active together during ``[d_{m+1}, d_m)`` and that step adds
``(d_m L_m(d_m) - d_{m+1} L_m(d_{m+1})) / H``, where ``L_m(h)`` is ``1 - a(P)`` with the top m
shocks evaluated at horizon h: the loss averaged over an ``h``-week window behind each edge's
inventory or service buffer, so ``h L_m(h)`` is what the set would cost over its first h
weeks. A single shock of d weeks therefore loses ``d / H x L(d)`` exactly; for several, the
steps telescope, so a shock that reaches no provider changes nothing (docs/simulation.md).
Evaluations are grouped by horizon (whole weeks), so a batch is a few compiled evaluations.

Per provider the result holds the expected annual loss (EAL, the mean, with its Monte Carlo
standard error), P50, P95 = VaR95, CVaR95 (mean of the worst 5 % of years), the 1-in-10,
1-in-25 and 1-in-100-year losses (exceedance curve), ``Pr(annual loss > 1 - threshold)`` with
its standard error ``sqrt(p (1 - p) / N)``, and per-driver attribution: the same draws with one
event (or all independent failures) switched off, compared on EAL and CVaR95. CVaR95 sees an
event of a few percent a year (a Taiwan blockade); a 95th percentile does not.

Reproducibility: the random numbers are drawn in blocks of :data:`DRAW_BLOCK` samples, block
``k`` from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(k,)))`` (the k-th child of
the seed), always in the same order. A sample's draws therefore depend only on the seed, the
inputs and its index: the result is the same whatever ``batch_size`` (the evaluation batch),
and the first N samples of a longer run are the N samples of a shorter one. Each batch is
reduced to provider losses at once (nothing of size ``nodes x samples`` is kept).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from sovrisk.models.analysis.allocation import PoolAllocation
from sovrisk.models.cancellation import OperationCancelled, checkpoint, stop_requested
from sovrisk.models.engine.compiled import (
    CompiledGraph,
    EdgeTerm,
    FloatArray,
    IntArray,
    compile_graph,
)
from sovrisk.models.engine.executor import Executor, LocalExecutor, default_executor
from sovrisk.models.engine.impacts import ImpactModel
from sovrisk.models.errors import FieldViolation, InvalidParameterError, NotFoundError
from sovrisk.models.graph.events import (
    DEFAULT_HORIZON_WEEKS,
    INDEPENDENT_FAILURES_ID,
    Event,
    EventContext,
    EventMode,
    Pert,
    event_violations,
    pert_problems,
)
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, PRODUCING_KINDS
from sovrisk.models.graph.supply_graph import SupplyGraph

BoolArray = npt.NDArray[np.bool_]

#: Samples per random-number block. Part of the model: changing it changes every result.
DRAW_BLOCK = 1024
#: Samples evaluated per batch by default (any value gives the same result): as many as keep
#: the batch's ``up`` matrix (nodes x about two step columns a sample) within
#: :data:`BATCH_MEMORY`, between 64 and 8192. Wide batches pay because a batch is evaluated
#: once per distinct duration (whole weeks), whatever its size.
DEFAULT_BATCH_SIZE: int | None = None
BATCH_MEMORY = 256 * 2**20
MAX_BATCH = 8192


def default_batch_size(n_nodes: int) -> int:
    return int(max(64, min(MAX_BATCH, BATCH_MEMORY // max(1, n_nodes * 8 * 2 * 3))))


MAX_SAMPLES = 1_000_000
#: Custom events a run may take, and samples x events: attribution keeps a loss per sample and
#: event (and provider), so this product bounds a run's memory and time (100,000 samples of
#: 2,000 events once took 11 GB). The bundled 11 events allow the full MAX_SAMPLES.
MAX_EVENTS = 500
MAX_SAMPLE_EVENTS = 20_000_000
#: Progress is reported after every batch, but no more than about this many times a run.
MAX_PROGRESS_REPORTS = 100
#: Driver id of the independent site failures in attributions and the driver matrix.
NODE_FAILURES_ID = INDEPENDENT_FAILURES_ID
#: BetaPERT shape parameter (the classic PERT / FAIR value).
PERT_LAMBDA = 4.0
#: The tail of VaR and CVaR: the worst 5 % of years.
TAIL = 0.05
#: Return periods (years) of the exceedance curve: the loss exceeded once in that many years.
RETURN_PERIODS: tuple[int, ...] = (10, 25, 100)
#: A provider loss above this counts as "some loss" (Pr(any loss)).
LOSS_EPSILON = 1e-12


#: Simulations of at least this many samples go to the default executor (a cluster, when
#: ``--executor ray...`` set one); smaller ones run in the calling thread.
DISTRIBUTE_SAMPLES = 100_000


class Cancelled(OperationCancelled):
    """The caller's ``should_stop`` (or the thread's cancellation scope) asked the simulation
    to stop (checked between batches)."""

    def __init__(self, samples_done: int) -> None:
        self.samples_done = samples_done
        super().__init__(f"simulation cancelled after {samples_done} samples")


#: Default independent site failure: most incidents take part of one site for weeks (a fab
#: fire, contamination, a power cut, a local quake); a few take the whole site for months.
#: docs/simulation.md gives the incident history behind these figures.
SITE_SEVERITY = Pert(0.05, 0.3, 1.0)
SITE_DURATION = Pert(1.0, 4.0, 26.0)
SITE_PROBABILITY = 0.01


@dataclass(frozen=True, slots=True)
class NodeFailures:
    """Independent failures of production sites (a node's capacity in one country).

    Default (docs/simulation.md): each eligible site fails with probability 0.01 over 52
    weeks (the 2010-2025 record of reported fab, packaging and materials-plant disruptions
    puts the rate at about 0.8-1.5 % a site a year), losing BetaPERT(0.05, 0.3, 1) of the
    site for BetaPERT(1, 4, 26) weeks. A node's loss is the failed site's share of its
    capacity times the severity. Providers and nodes without sites (chip families, design
    teams, EDA licences) never fail; sites of nodes tagged ``aggregate_market`` (a whole
    commodity market by region) are not eligible unless ``include_aggregate_markets``.
    ``overrides`` sets the probability of every site of the named nodes (0 excludes a node;
    an aggregate market named here is included).
    """

    probability: float = SITE_PROBABILITY
    severity: Pert = SITE_SEVERITY
    duration: Pert = SITE_DURATION
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS
    overrides: tuple[tuple[str, float], ...] = ()
    include_aggregate_markets: bool = False


DEFAULT_NODE_FAILURES = NodeFailures()


@dataclass(frozen=True, slots=True)
class Progress:
    """Sent after each batch: samples done and running estimates per provider."""

    samples_done: int
    n_samples: int
    providers: tuple[str, ...]
    mean_loss: tuple[float, ...]
    p95_loss: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Attribution:
    """One driver switched off (same draws, ``X_e = 0``; or no independent failures)."""

    driver: str  # event id, or NODE_FAILURES_ID
    name: str
    occurrences: int  # samples in which the driver occurred (with a positive severity)
    mean_loss_without: float
    cvar95_without: float
    mean_loss_delta: float  # EAL minus EAL without the driver
    cvar95_delta: float  # CVaR95 minus CVaR95 without the driver


@dataclass(frozen=True, slots=True)
class ProviderRisk:
    """Distribution of one provider's annual loss over the samples (fractions of a year's
    supply, 0-1)."""

    provider: str
    mean_loss: float  # expected annual loss (EAL)
    mean_loss_se: float  # Monte Carlo standard error of the mean
    p50: float
    p95: float
    var95: float  # = p95: the loss exceeded in 5 % of years
    cvar95: float  # mean of the worst 5 % of years
    prob_shortfall: float  # Pr(annual loss > 1 - threshold)
    prob_shortfall_se: float  # sqrt(p (1 - p) / N)
    prob_any_loss: float  # Pr(annual loss > 0)
    prob_any_loss_se: float
    #: (years, loss exceeded once in that many years), for :data:`RETURN_PERIODS`.
    return_period_losses: tuple[tuple[int, float], ...]
    attributions: tuple[Attribution, ...]  # largest CVaR95 delta first, then EAL delta

    @property
    def eal(self) -> float:
        """Expected annual loss: the mean annual loss."""
        return self.mean_loss

    def loss_at(self, years: int) -> float:
        """The 1-in-``years`` loss of :data:`RETURN_PERIODS`."""
        return dict(self.return_period_losses)[years]

    def attribution(self, driver: str) -> Attribution:
        for a in self.attributions:
            if a.driver == driver:
                return a
        raise NotFoundError("driver", driver)


@dataclass(frozen=True, eq=False)
class DriverSamples:
    """Per-sample drivers and losses for sensitivity analysis (only when asked for).

    ``x[s, d]``: for an event, its realised severity x occurrence (``sev_e X_e``); for
    ``independent_failures``, the sum over failed sites of severity x the site's share of its
    node. ``loss[s, k]``: provider k's annual loss. Read-only arrays.
    """

    drivers: tuple[str, ...]
    providers: tuple[str, ...]
    x: FloatArray  # n_samples x drivers
    loss: FloatArray  # n_samples x providers


@dataclass(frozen=True, slots=True)
class SimulationResult:
    seed: int
    n_samples: int
    horizon_weeks: float
    threshold: float
    draw_block: int
    events: tuple[Event, ...]
    node_failures: NodeFailures | None
    providers: tuple[ProviderRisk, ...]
    drivers: DriverSamples | None = field(default=None, compare=False)

    def provider(self, provider_id: str) -> ProviderRisk:
        for p in self.providers:
            if p.provider == provider_id:
                return p
        raise NotFoundError("provider", provider_id)


# -- BetaPERT -----------------------------------------------------------------------------------


def pert_shape(pert: Pert, lam: float = PERT_LAMBDA) -> tuple[float, float]:
    """Beta parameters (alpha, beta) of a BetaPERT; (1, 1) for a fixed value."""
    span = pert.high - pert.low
    if span <= 0.0:
        return 1.0, 1.0
    return (
        1.0 + lam * (pert.mode - pert.low) / span,
        1.0 + lam * (pert.high - pert.mode) / span,
    )


def sample_pert(rng: np.random.Generator, pert: Pert, size: int | tuple[int, ...]) -> FloatArray:
    """Draws of ``low + (high - low) x Beta(alpha, beta)``: BetaPERT with lambda = 4."""
    a, b = pert_shape(pert)
    draws = rng.beta(a, b, size)
    return np.asarray(pert.low + (pert.high - pert.low) * draws, dtype=np.float64)


class _PertVector:
    """Several BetaPERTs drawn side by side (one column each)."""

    def __init__(self, perts: Sequence[Pert]) -> None:
        shapes = [pert_shape(p) for p in perts]
        self.low = np.array([p.low for p in perts], dtype=np.float64)
        self.span = np.array([p.high - p.low for p in perts], dtype=np.float64)
        self.alpha = np.array([s[0] for s in shapes], dtype=np.float64)
        self.beta = np.array([s[1] for s in shapes], dtype=np.float64)

    def draw(self, rng: np.random.Generator, rows: int) -> FloatArray:
        k = len(self.low)
        draws = rng.beta(self.alpha, self.beta, (rows, k)) if k else np.zeros((rows, 0))
        return np.asarray(self.low + self.span * draws, dtype=np.float64)


def horizon_probability(probability: float, weeks: float, horizon_weeks: float) -> float:
    """A probability over ``weeks`` rescaled to ``horizon_weeks`` at a constant hazard."""
    if probability >= 1.0:
        return 1.0
    return float(1.0 - (1.0 - probability) ** (horizon_weeks / weeks))


# -- members ------------------------------------------------------------------------------------


def member_exposure(
    event: Event, compiled: CompiledGraph, graph: SupplyGraph | None = None
) -> FloatArray:
    """``m_ej`` for every node j (compiled order): how much of j's capacity the event takes.

    A member node: 1. A node with a member tag: 1. Member countries of a site-loss event: the
    node's capacity share sited there (a blockade's countries act on edges instead, see
    :func:`blockade_exposure`). A regime: the regime's node-level reach (the share of a
    reached node's capacity in the regime's origin countries, 1 without origins), its
    destination filter dropped. A node covered several ways takes the largest.
    """
    n = compiled.n_nodes
    m = np.zeros(n, dtype=np.float64)
    for nid in event.member_nodes:
        m[compiled.index[nid]] = 1.0
    if event.member_tags:
        if graph is None:
            raise ValueError("member_tags need the SupplyGraph")
        for node in graph.nodes.values():
            if not event.member_tags.isdisjoint(node.tags):
                m[compiled.index[node.id]] = 1.0
    columns = [k for k, c in enumerate(compiled.countries) if c in event.member_countries]
    if columns and event.mode is EventMode.SITE_LOSS:
        sited = np.asarray(compiled.sites[:, columns].sum(axis=1), dtype=np.float64).ravel()
        m = np.maximum(m, np.minimum(sited, 1.0))
    if event.regime:
        if graph is None:
            raise ValueError("a regime member needs the SupplyGraph")
        regime = graph.regimes[event.regime]
        for nid in graph.reached_nodes(regime):
            share = (
                graph.site_share(nid, regime.origin_countries) if regime.origin_countries else 1.0
            )
            i = compiled.index[nid]
            m[i] = max(m[i], min(1.0, share))
    return m


def blockade_exposure(event: Event, compiled: CompiledGraph) -> FloatArray | None:
    """Per supply entry: the share of its flow a full blockade of the event's member countries
    stops (crossing any of their borders; capped at 1), or None for a site-loss event."""
    if event.mode is not EventMode.BLOCKADE:
        return None
    total = np.zeros(compiled.shares.nnz, dtype=np.float64)
    for k, country in enumerate(compiled.countries):
        if country in event.member_countries:
            total += compiled.border_exposure(k)
    return np.minimum(total, 1.0)


# -- the plan: everything fixed before the first draw -------------------------------------------


@dataclass(frozen=True, eq=False)
class _Plan:
    compiled: CompiledGraph
    provider_ids: tuple[str, ...]
    provider_index: IntArray
    events: tuple[Event, ...]
    exposure: FloatArray  # events x nodes: m_ej (capacity lost per unit severity)
    blockades: dict[int, FloatArray]  # event index -> per-entry border exposure
    event_p: FloatArray  # per event, over the simulation horizon
    event_severity: _PertVector
    event_duration: _PertVector
    site_node: IntArray  # eligible sites: compiled node index
    site_share: FloatArray  # the site's share of its node's capacity
    site_p: FloatArray  # per eligible site, over the simulation horizon
    fail_severity: Pert
    fail_duration: Pert
    horizon: float
    allocation: PoolAllocation | None = None

    @property
    def drivers(self) -> tuple[str, ...]:
        ids = tuple(e.id for e in self.events)
        return (*ids, NODE_FAILURES_ID) if len(self.site_node) else ids


@dataclass(frozen=True, eq=False)
class _Draws:
    """The random draws of a run of consecutive samples."""

    occurs: BoolArray  # samples x events
    severity: FloatArray  # samples x events (drawn whether or not the event occurs)
    duration: FloatArray  # samples x events
    fail_sample: IntArray  # one entry per site failure: sample (relative to the run's start)
    fail_site: IntArray  # index into the plan's eligible sites
    fail_severity: FloatArray
    fail_duration: FloatArray

    def slice(self, start: int, stop: int) -> _Draws:
        lo, hi = np.searchsorted(self.fail_sample, [start, stop])
        return _Draws(
            occurs=self.occurs[start:stop],
            severity=self.severity[start:stop],
            duration=self.duration[start:stop],
            fail_sample=self.fail_sample[lo:hi] - start,
            fail_site=self.fail_site[lo:hi],
            fail_severity=self.fail_severity[lo:hi],
            fail_duration=self.fail_duration[lo:hi],
        )


def _draw_block(plan: _Plan, seed: int, block: int) -> _Draws:
    """Block ``block`` of DRAW_BLOCK samples, always drawn whole and in this order."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))
    size = DRAW_BLOCK
    occurs = rng.random((size, len(plan.events))) < plan.event_p
    severity = plan.event_severity.draw(rng, size)
    duration = plan.event_duration.draw(rng, size)
    failed = rng.random((size, len(plan.site_node))) < plan.site_p
    rows, cols = np.nonzero(failed)  # row-major: by sample, then site
    k = len(rows)
    return _Draws(
        occurs=occurs,
        severity=severity,
        duration=duration,
        fail_sample=rows.astype(np.int64),
        fail_site=cols.astype(np.int64),
        fail_severity=sample_pert(rng, plan.fail_severity, k),
        fail_duration=sample_pert(rng, plan.fail_duration, k),
    )


class _DrawSource:
    """Draws for any sample range, built from whole blocks (the last block kept)."""

    def __init__(self, plan: _Plan, seed: int) -> None:
        self._plan = plan
        self._seed = seed
        self._cached: tuple[int, _Draws] | None = None

    def _block(self, block: int) -> _Draws:
        if self._cached is None or self._cached[0] != block:
            self._cached = (block, _draw_block(self._plan, self._seed, block))
        return self._cached[1]

    def take(self, start: int, stop: int) -> _Draws:
        parts: list[_Draws] = []
        offset = 0
        for block in range(start // DRAW_BLOCK, (stop - 1) // DRAW_BLOCK + 1):
            lo = max(start, block * DRAW_BLOCK) - block * DRAW_BLOCK
            hi = min(stop, (block + 1) * DRAW_BLOCK) - block * DRAW_BLOCK
            part = self._block(block).slice(lo, hi)
            parts.append(
                _Draws(
                    part.occurs,
                    part.severity,
                    part.duration,
                    part.fail_sample + offset,
                    part.fail_site,
                    part.fail_severity,
                    part.fail_duration,
                )
            )
            offset += hi - lo
        if len(parts) == 1:
            return parts[0]
        return _Draws(
            occurs=np.concatenate([p.occurs for p in parts]),
            severity=np.concatenate([p.severity for p in parts]),
            duration=np.concatenate([p.duration for p in parts]),
            fail_sample=np.concatenate([p.fail_sample for p in parts]),
            fail_site=np.concatenate([p.fail_site for p in parts]),
            fail_severity=np.concatenate([p.fail_severity for p in parts]),
            fail_duration=np.concatenate([p.fail_duration for p in parts]),
        )


# -- shocks and annual losses -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Shocks:
    """The shocks of some samples: one row per occurring event or failed site."""

    sample: IntArray  # sample index (within the batch)
    member: IntArray  # event index e >= 0, or -1 - k for eligible site k
    severity: FloatArray
    weeks: IntArray  # duration rounded up to whole weeks, 1 .. horizon

    def without(self, keep: BoolArray) -> _Shocks:
        return _Shocks(self.sample[keep], self.member[keep], self.severity[keep], self.weeks[keep])


def _shocks(plan: _Plan, draws: _Draws) -> _Shocks:
    ev_sample, ev_index = np.nonzero(draws.occurs & (draws.severity > 0.0))
    severity = np.concatenate([draws.severity[ev_sample, ev_index], draws.fail_severity])
    duration = np.concatenate([draws.duration[ev_sample, ev_index], draws.fail_duration])
    keep = severity > 0.0
    weeks = np.clip(np.ceil(np.minimum(duration, plan.horizon) - 1e-9), 1, math.ceil(plan.horizon))
    return _Shocks(
        sample=np.concatenate([ev_sample, draws.fail_sample]).astype(np.int64)[keep],
        member=np.concatenate([ev_index, -1 - draws.fail_site]).astype(np.int64)[keep],
        severity=severity[keep],
        weeks=weeks.astype(np.int64)[keep],
    )


def _annual_losses(plan: _Plan, shocks: _Shocks, n_samples: int) -> FloatArray:
    """Annual loss of every sample (``n_samples x providers``) from its shocks (module doc).

    Each shock of rank r (its sample's shocks ordered longest first) opens one step column:
    the top r + 1 shocks active, for ``weeks[r] - weeks[r + 1]`` weeks, read at horizon
    ``weeks[r]``. Columns are evaluated grouped by horizon.
    """
    n_prov = len(plan.provider_ids)
    result = np.zeros((n_samples, n_prov), dtype=np.float64)
    if len(shocks.sample) == 0:
        return result
    order = np.lexsort((shocks.member, -shocks.weeks, shocks.sample))
    sample, member = shocks.sample[order], shocks.member[order]
    severity, weeks = shocks.severity[order], shocks.weeks[order]
    counts = np.bincount(sample, minlength=n_samples)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rank = np.arange(len(sample), dtype=np.int64) - first[sample]
    k = counts[sample]
    nxt = np.where(rank + 1 < k, np.roll(weeks, -1), 0)
    width = (weeks - nxt).astype(np.float64)
    opens = width > 0.0  # a step of zero length adds nothing
    col_of_shock = np.full(len(sample), -1, dtype=np.int64)
    col_of_shock[opens] = np.arange(int(opens.sum()), dtype=np.int64)
    n_cols = int(opens.sum())

    # Pairs (shock i active in the column of shock j): same sample, rank_i <= rank_j.
    spans = k - rank  # shock i is active in the steps of ranks rank_i .. k - 1
    pair_shock = np.repeat(np.arange(len(sample)), spans)
    starts = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
    within = np.arange(len(pair_shock), dtype=np.int64) - starts[pair_shock]
    step = pair_shock + within  # the shock that opens the step (same sample, higher rank)
    pair_col = col_of_shock[step]
    live = pair_col >= 0
    pair_shock, pair_col = pair_shock[live], pair_col[live]
    pair_member, pair_sev = member[pair_shock], severity[pair_shock]

    up = np.ones((plan.compiled.n_nodes, n_cols), dtype=np.float64)
    coefficients: dict[int, FloatArray] = {}
    for e in range(len(plan.events)):
        sel = pair_member == e
        if not sel.any():
            continue
        cols = pair_col[sel]
        if e in plan.blockades:
            coef = coefficients.setdefault(e, np.zeros(n_cols, dtype=np.float64))
            coef[cols] = pair_sev[sel]
        if plan.exposure[e].any():
            up[:, cols] *= 1.0 - np.outer(plan.exposure[e], pair_sev[sel])
    # Failed sites of one node add up (two sites of half the node each, both lost: the node
    # is gone), then act like one more factor on the node.
    sel = pair_member < 0
    if sel.any():
        site = -1 - pair_member[sel]
        lost = np.zeros_like(up)
        np.add.at(
            lost, (plan.site_node[site], pair_col[sel]), pair_sev[sel] * plan.site_share[site]
        )
        up *= np.maximum(0.0, 1.0 - lost)
    # Constrained pools shared out by a rule: their members' losses become claimant terms.
    pool_terms = plan.allocation.apply(plan.compiled, up) if plan.allocation else []

    # Each step is read twice: its cumulative loss to its own end minus that to its start,
    # ``d_m L_m(d_m) - d_{m+1} L_m(d_{m+1})`` (T L(T) is the loss accumulated over T weeks
    # of a constant shock set), so a shock that touches no provider changes nothing.
    ends = weeks[opens].astype(np.float64)
    starts = nxt[opens].astype(np.float64)
    second = np.flatnonzero(starts > 0)
    col_of = np.concatenate([np.arange(n_cols), second])  # the step's column in ``up``
    at = np.concatenate([ends, starts[second]])
    loss = np.empty((len(col_of), n_prov), dtype=np.float64)
    cg = plan.compiled
    for h in np.unique(at).tolist():
        rows = np.flatnonzero(at == h)
        cols = col_of[rows]
        terms = [
            EdgeTerm(plan.blockades[e], coef[cols])
            for e, coef in sorted(coefficients.items())
            if coef[cols].any()
        ] + [
            EdgeTerm(t.exposure, t.coefficient[cols])
            for t in pool_terms
            if t.coefficient[cols].any()
        ]
        block = np.ascontiguousarray(up[:, cols])
        if terms:
            a = cg.evaluate(block, horizon=float(h), edge_terms=terms)[plan.provider_index]
        else:
            a = cg.evaluate_rows(block, plan.provider_index, horizon=float(h))
        loss[rows] = np.maximum(0.0, 1.0 - a.T)
    cumulative = loss * at[:, None]
    step = cumulative[:n_cols].copy()
    step[second] -= cumulative[n_cols:]
    step_weight = np.maximum(step, 0.0) / plan.horizon
    np.add.at(result, sample[opens], step_weight)
    return result


class _Batch:
    """One batch of samples: annual losses, and the same with each driver switched off."""

    def __init__(self, plan: _Plan, draws: _Draws) -> None:
        self.plan = plan
        self.draws = draws
        self.size = len(draws.occurs)
        self.hit = np.where(draws.occurs, draws.severity, 0.0)  # sev_e X_e, samples x events
        self.shocks = _shocks(plan, draws)

    def run(self) -> tuple[FloatArray, list[tuple[IntArray, FloatArray]]]:
        """(annual losses, per driver: (samples it occurred in, their losses without it))."""
        plan, shocks = self.plan, self.shocks
        loss = _annual_losses(plan, shocks, self.size)
        off: list[tuple[IntArray, FloatArray]] = []
        groups = [(shocks.member == e) for e in range(len(plan.events))]
        if len(plan.site_node):
            groups.append(shocks.member < 0)
        for mask in groups:
            cols = np.unique(shocks.sample[mask])
            if not len(cols):
                off.append((cols, np.zeros((0, len(plan.provider_ids)))))
                continue
            where = np.full(self.size, -1, dtype=np.int64)
            where[cols] = np.arange(len(cols), dtype=np.int64)
            rest = shocks.without(~mask & (where[shocks.sample] >= 0))
            moved = _Shocks(where[rest.sample], rest.member, rest.severity, rest.weeks)
            off.append((cols, _annual_losses(plan, moved, len(cols))))
        return loss, off

    def failure_load(self) -> FloatArray:
        """Per sample: the sum over failed sites of severity x the site's share of its node."""
        d, plan = self.draws, self.plan
        weights = d.fail_severity * plan.site_share[d.fail_site]
        return np.asarray(
            np.bincount(d.fail_sample, weights=weights, minlength=self.size), dtype=np.float64
        )


# -- statistics ---------------------------------------------------------------------------------


def _quantile(sorted_losses: FloatArray, q: float) -> FloatArray:
    """Empirical quantile ``L_(ceil(q N))`` of each column (ascending-sorted input)."""
    n = sorted_losses.shape[0]
    k = min(n, max(1, math.ceil(q * n - 1e-9)))
    return np.asarray(sorted_losses[k - 1], dtype=np.float64)


def _running_quantile(losses: FloatArray, q: float) -> FloatArray:
    """:func:`_quantile` of unsorted losses, by partial sort (O(N))."""
    n = losses.shape[0]
    k = min(n, max(1, math.ceil(q * n - 1e-9))) - 1
    return np.asarray(np.partition(losses, k, axis=0)[k], dtype=np.float64)


def _tail_mean(sorted_losses: FloatArray, tail: float = TAIL) -> FloatArray:
    """CVaR: the mean of the worst ``tail`` fraction of each column (ascending-sorted input),
    the boundary sample counted fractionally so it is exact for any N."""
    n = sorted_losses.shape[0]
    m = tail * n
    whole = math.floor(m + 1e-9)
    frac = m - whole if m - whole > 1e-9 else 0.0
    worst = sorted_losses[::-1]
    total = worst[:whole].sum(axis=0)
    if frac and whole < n:
        total = total + frac * worst[whole]
    return np.asarray(total / m, dtype=np.float64)


def _se_mean(losses: FloatArray) -> FloatArray:
    n = losses.shape[0]
    if n < 2:
        return np.zeros(losses.shape[1])
    return np.asarray(losses.std(axis=0, ddof=1) / math.sqrt(n), dtype=np.float64)


def _se_prob(p: FloatArray, n: int) -> FloatArray:
    return np.asarray(np.sqrt(p * (1.0 - p) / n), dtype=np.float64)


# -- the public entry point ---------------------------------------------------------------------


def simulate(
    model: ImpactModel | SupplyGraph | CompiledGraph,
    events: Sequence[Event],
    n_samples: int,
    seed: int,
    *,
    providers: Sequence[str] | None = None,
    node_failures: NodeFailures | None = DEFAULT_NODE_FAILURES,
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS,
    threshold: float = 0.5,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    keep_drivers: bool = False,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    allocation: PoolAllocation | None = None,
    executor: Executor | None = None,
) -> SimulationResult:
    """Simulate ``n_samples`` years of ``events`` plus independent site failures.

    ``executor`` (default: :func:`default_executor` for at least :data:`DISTRIBUTE_SAMPLES`
    samples, else this thread) runs the batches; any executor gives the same bits. With an
    executor, ``progress`` is reported per range of batches merged (in sample order), at most
    about :data:`MAX_PROGRESS_REPORTS` times.

    ``allocation`` (optional) shares out the constrained pools' losses by a rule
    (:class:`models.analysis.allocation.PoolAllocation`) instead of node by node.

    ``model``: a :class:`ImpactModel` or :class:`SupplyGraph` (providers = every provider;
    events may use tags and regimes), or a bare :class:`CompiledGraph` (``providers`` is then
    required, and only node and country members are understood). ``node_failures=None``
    switches independent failures off. ``threshold``: ``prob_shortfall = Pr(1 - annual loss <
    threshold)``. ``keep_drivers`` keeps the per-sample driver matrix and losses for
    :func:`models.sensitivity.sensitivity` (``n_samples x (drivers + providers)`` floats).
    ``progress`` is called after every batch (at most about :data:`MAX_PROGRESS_REPORTS`
    times, always after the last); ``should_stop`` is checked before every batch and raises
    :class:`Cancelled`.

    Raises :class:`InvalidParameterError` (fields ``n_samples``, ``seed``, ``batch_size``,
    ``horizon_weeks``, ``threshold``, ``providers``, ``node_failures.*``, ``events[i].*``) and
    :class:`NotFoundError` for an unknown provider.
    """
    plan = _plan(
        model,
        events,
        n_samples,
        seed,
        providers,
        node_failures,
        horizon_weeks,
        threshold,
        batch_size,
    )
    if allocation is not None:
        plan = replace(plan, allocation=allocation)
    n_prov = len(plan.provider_ids)
    drivers = plan.drivers
    losses = np.empty((n_samples, n_prov), dtype=np.float64)
    # Per driver, the samples it occurred in and their losses without it (sample order).
    changed_at: list[list[IntArray]] = [[] for _ in drivers]
    changed_to: list[list[FloatArray]] = [[] for _ in drivers]
    x = np.zeros((n_samples, len(drivers)), dtype=np.float64) if keep_drivers else None
    occurrences = np.zeros(len(drivers), dtype=np.int64)
    source = _DrawSource(plan, seed)

    done = batch_no = 0
    # Progress after every batch, but at most about MAX_PROGRESS_REPORTS times in all (each
    # report scans every sample so far), and always after the last one.
    if batch_size is None:
        batch_size = default_batch_size(plan.compiled.n_nodes)
    report_every = max(1, math.ceil(math.ceil(n_samples / batch_size) / MAX_PROGRESS_REPORTS))
    if executor is None and n_samples >= DISTRIBUTE_SAMPLES:
        executor = default_executor()
    if executor is not None and not (isinstance(executor, LocalExecutor) and executor.threads == 1):
        if (should_stop is not None and should_stop()) or stop_requested():
            raise Cancelled(0)
        ranges = _ranges(n_samples, batch_size, executor.parallelism)
        range_every = max(1, math.ceil(len(ranges) / MAX_PROGRESS_REPORTS))

        def merge(index: int, part: _RangeResult) -> None:
            # Called in sample order as the ranges come back: the samples so far are a prefix,
            # as in the loop below, so progress streams while the other ranges still run.
            losses[part.start : part.stop] = part.losses
            for d, (cols, changed) in enumerate(part.changed):
                changed_at[d].append(cols)
                changed_to[d].append(changed)
            occurrences[:] += part.occurrences
            if x is not None and part.x is not None:
                x[part.start : part.stop] = part.x
            if should_stop is not None and should_stop():
                raise Cancelled(part.stop)  # the executor drops the ranges still to run
            last = index == len(ranges) - 1
            if progress is not None and ((index + 1) % range_every == 0 or last):
                progress(
                    Progress(
                        samples_done=part.stop,
                        n_samples=n_samples,
                        providers=plan.provider_ids,
                        mean_loss=tuple(float(v) for v in losses[: part.stop].mean(axis=0)),
                        p95_loss=tuple(
                            float(v) for v in _running_quantile(losses[: part.stop], 0.95)
                        ),
                    )
                )

        executor.map(_run_range, (plan, seed, batch_size, keep_drivers), ranges, on_result=merge)
        done = n_samples
    while done < n_samples:
        if (should_stop is not None and should_stop()) or stop_requested():
            raise Cancelled(done)
        stop = min(n_samples, done + batch_size)
        draws = source.take(done, stop)
        batch = _Batch(plan, draws)
        loss, off = batch.run()
        losses[done:stop] = loss
        for d, (cols, changed) in enumerate(off):
            changed_at[d].append(done + cols)
            changed_to[d].append(changed)
            occurrences[d] += len(cols)
        if x is not None:
            x[done:stop, : len(plan.events)] = batch.hit
            if len(plan.site_node):
                x[done:stop, -1] = batch.failure_load()
        done = stop
        batch_no += 1
        if progress is not None and (batch_no % report_every == 0 or done == n_samples):
            progress(
                Progress(
                    samples_done=done,
                    n_samples=n_samples,
                    providers=plan.provider_ids,
                    mean_loss=tuple(float(v) for v in losses[:done].mean(axis=0)),
                    p95_loss=tuple(float(v) for v in _running_quantile(losses[:done], 0.95)),
                )
            )

    names = {e.id: e.label for e in plan.events} | {NODE_FAILURES_ID: "independent site failures"}
    off_mean = np.zeros((len(drivers), n_prov), dtype=np.float64)
    off_cvar = np.zeros((len(drivers), n_prov), dtype=np.float64)
    for d in range(len(drivers)):
        switched = losses.copy()
        switched[np.concatenate(changed_at[d])] = np.concatenate(changed_to[d])
        off_mean[d] = switched.mean(axis=0)
        off_cvar[d] = _tail_mean(np.sort(switched, axis=0))
    risks = _summarise(plan, losses, off_mean, off_cvar, occurrences, threshold, names)
    kept = None
    if x is not None:
        x.flags.writeable = False
        losses.flags.writeable = False
        kept = DriverSamples(drivers=drivers, providers=plan.provider_ids, x=x, loss=losses)
    return SimulationResult(
        seed=seed,
        n_samples=n_samples,
        horizon_weeks=horizon_weeks,
        threshold=threshold,
        draw_block=DRAW_BLOCK,
        events=plan.events,
        node_failures=node_failures if len(plan.site_node) else None,
        providers=risks,
        drivers=kept,
    )


@dataclass(frozen=True, eq=False)
class _RangeResult:
    """What the batches of samples ``[start, stop)`` contribute (merged in sample order)."""

    start: int
    stop: int
    losses: FloatArray
    changed: tuple[tuple[IntArray, FloatArray], ...]  # per driver: samples and losses without
    occurrences: IntArray
    x: FloatArray | None


def _ranges(n_samples: int, batch_size: int, parallelism: int) -> list[tuple[int, int]]:
    """Whole batches, about four ranges per worker (a slow worker does not hold the rest
    back): the batches, hence the bits, are those of the sequential loop."""
    batches = math.ceil(n_samples / batch_size)
    per = max(1, math.ceil(batches / max(1, 4 * parallelism)))
    step = per * batch_size
    return [(lo, min(n_samples, lo + step)) for lo in range(0, n_samples, step)]


def _run_range(shared: tuple[_Plan, int, int, bool], bounds: tuple[int, int]) -> _RangeResult:
    """The batches of ``bounds``: one task of an executor (module-level, so that a cluster
    worker imports it by name)."""
    plan, seed, batch_size, keep_drivers = shared
    start, stop = bounds
    source = _DrawSource(plan, seed)
    n_prov, drivers = len(plan.provider_ids), plan.drivers
    losses = np.empty((stop - start, n_prov), dtype=np.float64)
    at: list[list[IntArray]] = [[] for _ in drivers]
    to: list[list[FloatArray]] = [[] for _ in drivers]
    occurrences = np.zeros(len(drivers), dtype=np.int64)
    x = np.zeros((stop - start, len(drivers)), dtype=np.float64) if keep_drivers else None
    for lo in range(start, stop, batch_size):
        checkpoint()
        hi = min(stop, lo + batch_size)
        batch = _Batch(plan, source.take(lo, hi))
        loss, off = batch.run()
        losses[lo - start : hi - start] = loss
        for d, (cols, without) in enumerate(off):
            at[d].append(lo + cols)
            to[d].append(without)
            occurrences[d] += len(cols)
        if x is not None:
            x[lo - start : hi - start, : len(plan.events)] = batch.hit
            if len(plan.site_node):
                x[lo - start : hi - start, -1] = batch.failure_load()
    changed = tuple(
        (
            np.concatenate(at[d]) if at[d] else np.zeros(0, dtype=np.int64),
            np.concatenate(to[d]) if to[d] else np.zeros((0, n_prov)),
        )
        for d in range(len(drivers))
    )
    return _RangeResult(start, stop, losses, changed, occurrences, x)


def _summarise(
    plan: _Plan,
    losses: FloatArray,
    off_mean: FloatArray,  # drivers x providers: mean loss without each driver
    off_cvar: FloatArray,  # drivers x providers: CVaR95 without each driver
    occurrences: IntArray,
    threshold: float,
    names: dict[str, str],
) -> tuple[ProviderRisk, ...]:
    n = losses.shape[0]
    ordered = np.sort(losses, axis=0)
    mean = losses.mean(axis=0)
    cvar = _tail_mean(ordered)
    p50, p95 = _quantile(ordered, 0.5), _quantile(ordered, 0.95)
    shortfall = (1.0 - losses < threshold).mean(axis=0)
    any_loss = (losses > LOSS_EPSILON).mean(axis=0)
    se_mean, se_short, se_any = _se_mean(losses), _se_prob(shortfall, n), _se_prob(any_loss, n)
    returns = {years: _quantile(ordered, 1.0 - 1.0 / years) for years in RETURN_PERIODS}
    result = []
    for k, pid in enumerate(plan.provider_ids):
        attributions = [
            Attribution(
                driver=driver,
                name=names[driver],
                occurrences=int(occurrences[d]),
                mean_loss_without=float(off_mean[d, k]),
                cvar95_without=float(off_cvar[d, k]),
                mean_loss_delta=float(mean[k] - off_mean[d, k]),
                cvar95_delta=float(cvar[k] - off_cvar[d, k]),
            )
            for d, driver in enumerate(plan.drivers)
        ]
        attributions.sort(key=lambda a: (-a.cvar95_delta, -a.mean_loss_delta, a.driver))
        result.append(
            ProviderRisk(
                provider=pid,
                mean_loss=float(mean[k]),
                mean_loss_se=float(se_mean[k]),
                p50=float(p50[k]),
                p95=float(p95[k]),
                var95=float(p95[k]),
                cvar95=float(cvar[k]),
                prob_shortfall=float(shortfall[k]),
                prob_shortfall_se=float(se_short[k]),
                prob_any_loss=float(any_loss[k]),
                prob_any_loss_se=float(se_any[k]),
                return_period_losses=tuple(
                    (years, float(values[k])) for years, values in returns.items()
                ),
                attributions=tuple(attributions),
            )
        )
    return tuple(result)


# -- validation and planning --------------------------------------------------------------------


def _plan(
    model: ImpactModel | SupplyGraph | CompiledGraph,
    events: Sequence[Event],
    n_samples: int,
    seed: int,
    providers: Sequence[str] | None,
    node_failures: NodeFailures | None,
    horizon_weeks: float,
    threshold: float,
    batch_size: int | None,
) -> _Plan:
    graph: SupplyGraph | None
    if isinstance(model, ImpactModel):
        graph, compiled, all_providers = model.graph, model.compiled, model.provider_ids
    elif isinstance(model, SupplyGraph):
        graph, compiled = model, compile_graph(model)
        all_providers = tuple(sorted(p.id for p in model.providers()))
    else:
        graph, compiled, all_providers = None, model, ()

    bad: list[FieldViolation] = []
    if (
        isinstance(n_samples, bool)
        or not isinstance(n_samples, int)
        or not (1 <= n_samples <= MAX_SAMPLES)
    ):
        bad.append(FieldViolation("n_samples", str(n_samples), f"must be 1..{MAX_SAMPLES}"))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        bad.append(FieldViolation("seed", str(seed), "must be an integer >= 0"))
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        bad.append(FieldViolation("batch_size", str(batch_size), "must be an integer >= 1"))
    if not (math.isfinite(horizon_weeks) and horizon_weeks > 0.0):
        bad.append(FieldViolation("horizon_weeks", str(horizon_weeks), "must be > 0"))
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        bad.append(FieldViolation("threshold", str(threshold), "must be in (0, 1]"))
    if graph is None and providers is None:
        bad.append(FieldViolation("providers", "", "required when simulating on a compiled graph"))
    context = (
        EventContext.of_graph(graph)
        if graph
        else EventContext.of_ids(compiled.ids, compiled.countries)
    )
    bad += event_violations(events, context)
    if node_failures is not None:
        bad += _node_failure_violations(node_failures, context)
    if bad:
        raise InvalidParameterError(bad)

    chosen = tuple(providers) if providers is not None else all_providers
    for pid in chosen:
        if pid not in compiled.index or (graph is not None and pid not in all_providers):
            raise NotFoundError("provider", pid)
    if len(set(chosen)) != len(chosen) or not chosen:
        raise InvalidParameterError(
            [FieldViolation("providers", ",".join(chosen), "must be distinct and not empty")]
        )

    exposure = (
        np.stack([member_exposure(e, compiled, graph) for e in events])
        if events
        else np.zeros((0, compiled.n_nodes))
    )
    blockades = {
        k: exposure_k
        for k, e in enumerate(events)
        if (exposure_k := blockade_exposure(e, compiled)) is not None
    }
    event_p = np.array(
        [horizon_probability(e.probability, e.horizon_weeks, horizon_weeks) for e in events],
        dtype=np.float64,
    )
    site_node, site_share, site_p = _failure_sites(
        compiled, graph, set(all_providers) | set(chosen), node_failures, horizon_weeks
    )
    nf = node_failures or DEFAULT_NODE_FAILURES
    return _Plan(
        compiled=compiled,
        provider_ids=chosen,
        provider_index=np.array([compiled.index[p] for p in chosen], dtype=np.int64),
        events=tuple(events),
        exposure=exposure,
        blockades=blockades,
        event_p=event_p,
        event_severity=_PertVector([e.severity for e in events]),
        event_duration=_PertVector([e.duration for e in events]),
        site_node=site_node,
        site_share=site_share,
        site_p=site_p,
        fail_severity=nf.severity,
        fail_duration=nf.duration,
        horizon=horizon_weeks,
    )


def _node_failure_violations(nf: NodeFailures, context: EventContext) -> list[FieldViolation]:
    bad: list[FieldViolation] = []
    prefix = "node_failures"
    if not (math.isfinite(nf.probability) and 0.0 <= nf.probability <= 1.0):
        bad.append(
            FieldViolation(f"{prefix}.probability", str(nf.probability), "must be in [0, 1]")
        )
    if not (math.isfinite(nf.horizon_weeks) and nf.horizon_weeks > 0.0):
        bad.append(FieldViolation(f"{prefix}.horizon_weeks", str(nf.horizon_weeks), "must be > 0"))
    for name, value, message in pert_problems("severity", nf.severity, 0.0, 1.0):
        bad.append(FieldViolation(f"{prefix}.{name}", value, message))
    for name, value, message in pert_problems("duration", nf.duration, 0.0, None):
        bad.append(FieldViolation(f"{prefix}.{name}", value, message))
    for nid, p in nf.overrides:
        if nid not in context.nodes:
            bad.append(FieldViolation(f"{prefix}.overrides", nid, "unknown node id"))
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            bad.append(FieldViolation(f"{prefix}.overrides", f"{nid}={p}", "must be in [0, 1]"))
    return bad


def _failure_sites(
    compiled: CompiledGraph,
    graph: SupplyGraph | None,
    provider_ids: set[str],
    nf: NodeFailures | None,
    horizon_weeks: float,
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Eligible sites: (node, share of the node's capacity, failure probability over the
    horizon), in compiled node order then country order."""
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    if nf is None:
        return empty
    overrides = dict(nf.overrides)
    sites = compiled.sites.tocsr()
    nodes: list[int] = []
    shares: list[float] = []
    probs: list[float] = []
    for i, nid in enumerate(compiled.ids):
        if nid in provider_ids:
            continue
        if graph is not None:
            record = graph.nodes[nid]
            if record.kind not in PRODUCING_KINDS:
                continue
            if (
                AGGREGATE_MARKET_TAG in record.tags
                and not nf.include_aggregate_markets
                and nid not in overrides
            ):
                continue
        p = overrides.get(nid, nf.probability)
        if p <= 0.0:
            continue
        row = sites.data[sites.indptr[i] : sites.indptr[i + 1]]
        for share in row.tolist():
            if share > 0.0:
                nodes.append(i)
                shares.append(float(share))
                probs.append(horizon_probability(p, nf.horizon_weeks, horizon_weeks))
    if not nodes:
        return empty
    return (
        np.array(nodes, dtype=np.int64),
        np.array(shares, dtype=np.float64),
        np.array(probs, dtype=np.float64),
    )
