"""Correlated Monte Carlo of each provider's lost accelerator supply (METHODS §7).

For each scenario (sample) s:

* every event e occurs with ``X_e ~ Bernoulli(p_e)`` (``p_e`` rescaled to the simulation
  horizon), with a severity ``sev_e ~ BetaPERT`` and a duration ``d_e ~ BetaPERT``;
* every eligible producing node j fails independently, ``Y_j ~ Bernoulli(q_j)``, with its own
  severity and duration (:class:`NodeFailures`);
* ``up_j = prod_e (1 - sev_e X_e m_ej) x (1 - sev_j Y_j)``, where ``m_ej`` in [0, 1] is how
  much of node j event e's member set covers (see :func:`member_exposure`);
* the compiled AND/OR graph gives ``a(P)`` for every provider P and the **loss** is
  ``1 - a(P)``. A second measure, the **duration-weighted loss**, is the capacity lost over
  the horizon (lost fraction x weeks / horizon) if all of the scenario's shocks start together.

Per provider the result holds the mean loss (with its Monte Carlo standard error), P50, P95 =
VaR95, CVaR95 (mean of the worst 5 %), ``Pr(a < threshold)`` with its standard error
``sqrt(p (1 - p) / N)``, and per-driver attribution: the same draws with one event (or all
independent failures) switched off, compared on mean loss and CVaR95.

Reproducibility: the random numbers are drawn in blocks of :data:`DRAW_BLOCK` samples, block
``k`` from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(k,)))`` (the k-th child of
the seed), always in the same order. A sample's draws therefore depend only on the seed, the
inputs and its index: the result is the same whatever ``batch_size`` (the evaluation batch),
and the first N samples of a longer run are the N samples of a shorter one. Each batch is
reduced to provider losses at once (nothing of size ``nodes x samples`` is kept): the run keeps
the per-sample provider losses, the duration-weighted losses and, per driver, the losses of the
samples it occurred in with it switched off; every statistic is computed once from them at the
end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.engine.compiled import CompiledGraph, FloatArray, IntArray, compile_graph
from models.engine.impacts import ImpactModel
from models.errors import FieldViolation, InvalidParameterError, NotFoundError
from models.graph.events import (
    DEFAULT_DURATION,
    DEFAULT_HORIZON_WEEKS,
    FULL_OUTAGE,
    INDEPENDENT_FAILURES_ID,
    Event,
    EventContext,
    Pert,
    event_violations,
    pert_problems,
)
from models.graph.schema import AGGREGATE_MARKET_TAG, PRODUCING_KINDS
from models.graph.supply_graph import SupplyGraph

BoolArray = npt.NDArray[np.bool_]

#: Samples per random-number block. Part of the model: changing it changes every result.
DRAW_BLOCK = 1024
#: Scenarios evaluated per batch by default (fastest on the bundled graph; any value gives
#: the same result).
DEFAULT_BATCH_SIZE = 512
MAX_SAMPLES = 1_000_000
#: Progress is reported after every batch, but no more than about this many times a run.
MAX_PROGRESS_REPORTS = 100
#: Driver id of the independent node failures in attributions and the driver matrix.
NODE_FAILURES_ID = INDEPENDENT_FAILURES_ID
#: BetaPERT shape parameter (the classic PERT / FAIR value).
PERT_LAMBDA = 4.0
#: The tail of VaR and CVaR: the worst 5 % of samples.
TAIL = 0.05
#: A provider loss above this counts as "some loss" (Pr(any loss)).
LOSS_EPSILON = 1e-12


class Cancelled(Exception):
    """The caller's ``should_stop`` asked the simulation to stop (checked between batches)."""

    def __init__(self, samples_done: int) -> None:
        self.samples_done = samples_done
        super().__init__(f"simulation cancelled after {samples_done} samples")


@dataclass(frozen=True, slots=True)
class NodeFailures:
    """Independent node failures: every eligible producing node fails on its own.

    Default: probability 0.02 over 52 weeks per producing node, the whole node down
    (severity 1), for BetaPERT(1, 4, 12) weeks. Providers never fail; nodes tagged
    ``aggregate_market`` (a whole commodity market by region) are not eligible unless
    ``include_aggregate_markets``: losing a market is a country or regime event. ``overrides``
    sets the probability of named nodes (0 excludes a node; an aggregate market named here is
    included).
    """

    probability: float = 0.005
    severity: Pert = FULL_OUTAGE
    duration: Pert = DEFAULT_DURATION
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
    mean_loss_delta: float  # mean loss minus mean loss without the driver
    cvar95_delta: float  # CVaR95 minus CVaR95 without the driver


@dataclass(frozen=True, slots=True)
class ProviderRisk:
    """Distribution of one provider's loss ``1 - a(P)`` over the samples."""

    provider: str
    mean_loss: float
    mean_loss_se: float  # Monte Carlo standard error of the mean
    p50: float
    p95: float
    var95: float  # = p95: the loss exceeded in 5 % of samples
    cvar95: float  # mean of the worst 5 % of samples
    prob_shortfall: float  # Pr(a(P) < threshold)
    prob_shortfall_se: float  # sqrt(p (1 - p) / N)
    prob_any_loss: float  # Pr(loss > 0)
    prob_any_loss_se: float
    mean_duration_weighted_loss: float  # lost fraction x weeks / horizon
    mean_duration_weighted_loss_se: float
    p95_duration_weighted_loss: float
    attributions: tuple[Attribution, ...]  # largest CVaR95 delta first, then mean-loss delta

    def attribution(self, driver: str) -> Attribution:
        for a in self.attributions:
            if a.driver == driver:
                return a
        raise NotFoundError("driver", driver)


@dataclass(frozen=True, eq=False)
class DriverSamples:
    """Per-sample drivers and losses for sensitivity analysis (only when asked for).

    ``x[s, d]``: for an event, its realised severity x occurrence (``sev_e X_e``); for
    ``node-failures``, the sum of the severities of the nodes that failed. ``loss[s, k]``:
    provider k's loss. Read-only arrays.
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
    """``m_ej`` for every node j (compiled order): how much of j the event's members cover.

    A member node: 1. A node with a member tag: 1. Member countries: the node's capacity
    share sited there. A regime: the regime's node-level reach (the share of a reached node's
    capacity in the regime's origin countries, 1 without origins), its destination filter
    dropped; this is ``ImpactModel._bound`` of the regime divided by the regime's severity. A
    node covered several ways takes the largest.
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
    if columns:
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


# -- the plan: everything fixed before the first draw -------------------------------------------


@dataclass(frozen=True, eq=False)
class _Plan:
    compiled: CompiledGraph
    provider_ids: tuple[str, ...]
    provider_index: IntArray
    events: tuple[Event, ...]
    exposure: FloatArray  # events x nodes: m_ej
    event_p: FloatArray  # per event, over the simulation horizon
    event_severity: _PertVector
    event_duration: _PertVector
    fail_nodes: IntArray  # eligible nodes (compiled index)
    fail_p: FloatArray  # per eligible node, over the simulation horizon
    fail_severity: Pert
    fail_duration: Pert
    horizon: float

    @property
    def drivers(self) -> tuple[str, ...]:
        ids = tuple(e.id for e in self.events)
        return (*ids, NODE_FAILURES_ID) if len(self.fail_nodes) else ids


@dataclass(frozen=True, eq=False)
class _Draws:
    """The random draws of a run of consecutive samples."""

    occurs: BoolArray  # samples x events
    severity: FloatArray  # samples x events (drawn whether or not the event occurs)
    duration: FloatArray  # samples x events
    fail_sample: IntArray  # one entry per failure: sample (relative to the run's start)
    fail_node: IntArray  # compiled node index
    fail_severity: FloatArray
    fail_duration: FloatArray

    def slice(self, start: int, stop: int) -> _Draws:
        lo, hi = np.searchsorted(self.fail_sample, [start, stop])
        return _Draws(
            occurs=self.occurs[start:stop],
            severity=self.severity[start:stop],
            duration=self.duration[start:stop],
            fail_sample=self.fail_sample[lo:hi] - start,
            fail_node=self.fail_node[lo:hi],
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
    failed = rng.random((size, len(plan.fail_nodes))) < plan.fail_p
    rows, cols = np.nonzero(failed)  # row-major: by sample, then node
    k = len(rows)
    return _Draws(
        occurs=occurs,
        severity=severity,
        duration=duration,
        fail_sample=rows.astype(np.int64),
        fail_node=plan.fail_nodes[cols],
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
                    part.fail_node,
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
            fail_node=np.concatenate([p.fail_node for p in parts]),
            fail_severity=np.concatenate([p.fail_severity for p in parts]),
            fail_duration=np.concatenate([p.fail_duration for p in parts]),
        )


# -- one batch ----------------------------------------------------------------------------------


class _Batch:
    """Evaluates one batch of samples: losses, losses with each driver off, duration-weighted
    losses. Every sample's numbers depend on its own draws only."""

    def __init__(self, plan: _Plan, draws: _Draws) -> None:
        self.plan = plan
        self.draws = draws
        self.size = len(draws.occurs)
        self.hit = np.where(draws.occurs, draws.severity, 0.0)  # sev_e X_e, samples x events

    def _event_up(self, cols: IntArray, skip: int = -1) -> FloatArray:
        """prod_e (1 - sev_e X_e m_ej) for the samples ``cols``, without event ``skip``."""
        up = np.ones((self.plan.compiled.n_nodes, len(cols)), dtype=np.float64)
        for e in range(len(self.plan.events)):
            if e == skip:
                continue
            hit = self.hit[cols, e]
            if hit.any():
                up *= 1.0 - np.outer(self.plan.exposure[e], hit)
        return up

    def _apply_failures(self, up: FloatArray, cols: IntArray) -> FloatArray:
        """Multiply in ``1 - sev_j Y_j`` for the failures of the samples ``cols``."""
        d = self.draws
        where = np.full(self.size, -1, dtype=np.int64)
        where[cols] = np.arange(len(cols), dtype=np.int64)
        column = where[d.fail_sample]
        keep = column >= 0
        up[d.fail_node[keep], column[keep]] *= 1.0 - d.fail_severity[keep]
        return up

    def _loss(self, up: FloatArray) -> FloatArray:
        """Provider losses ``1 - a(P)``, samples x providers."""
        a = self.plan.compiled.evaluate(up)
        return np.ascontiguousarray((1.0 - a[self.plan.provider_index]).T)

    def run(self) -> tuple[FloatArray, list[tuple[IntArray, FloatArray]], FloatArray]:
        """(losses, per driver: (samples it changes, their losses without it), duration-
        weighted losses)."""
        everyone = np.arange(self.size, dtype=np.int64)
        events_up = self._event_up(everyone)
        loss = self._loss(self._apply_failures(events_up.copy(), everyone))
        off: list[tuple[IntArray, FloatArray]] = []
        for e in range(len(self.plan.events)):
            cols = np.flatnonzero(self.hit[:, e] > 0.0)
            if len(cols):
                up = self._apply_failures(self._event_up(cols, skip=e), cols)
                off.append((cols, self._loss(up)))
            else:
                off.append((cols, np.zeros((0, len(self.plan.provider_ids)))))
        if len(self.plan.fail_nodes):
            cols = np.unique(self.draws.fail_sample)
            changed = self._loss(events_up[:, cols]) if len(cols) else loss[:0]
            off.append((cols, changed))
        return loss, off, self._duration_weighted(loss)

    def _duration_weighted(self, loss: FloatArray) -> FloatArray:
        """Capacity lost over the horizon if the scenario's shocks all start at week 0.

        With the shocks of a sample sorted by duration ``d_1 >= ... >= d_k`` (capped at the
        horizon H), the top m shocks are active during ``[d_{m+1}, d_m)``, so the
        duration-weighted loss is ``sum_m (d_m - d_{m+1}) L_m / H`` with ``L_m`` the loss
        with the top m shocks only (``L_k`` = the sample's loss, ``d_{k+1} = 0``).
        """
        plan, d = self.plan, self.draws
        horizon = plan.horizon
        n_events = len(plan.events)
        ev_sample, ev_index = np.nonzero(d.occurs)
        # Shocks of the batch: events first (member = event index), then node failures
        # (member = -1 - node index).
        sample = np.concatenate([ev_sample, d.fail_sample]).astype(np.int64)
        member = np.concatenate([ev_index, -1 - d.fail_node]).astype(np.int64)
        severity = np.concatenate([d.severity[ev_sample, ev_index], d.fail_severity])
        weeks = np.minimum(
            np.concatenate([d.duration[ev_sample, ev_index], d.fail_duration]), horizon
        )
        order = np.lexsort((-weeks, sample))  # by sample, longest first (stable on ties)
        sample, member, severity, weeks = (
            sample[order],
            member[order],
            severity[order],
            weeks[order],
        )
        counts = np.bincount(sample, minlength=self.size)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        rank = np.arange(len(sample), dtype=np.int64) - first[sample]
        k = counts[sample]
        nxt = np.where(rank + 1 < k, np.roll(weeks, -1), 0.0)
        width = weeks - nxt  # how long exactly the top (rank + 1) shocks are active

        # Partial sets: for sample s, columns m = 1 .. k_s - 1 (the top m shocks active).
        partial = np.maximum(counts - 1, 0)
        offset = np.concatenate([[0], np.cumsum(partial)[:-1]]).astype(np.int64)
        n_cols = int(partial.sum())
        result = np.zeros_like(loss)
        if n_cols:
            up = np.ones((plan.compiled.n_nodes, n_cols), dtype=np.float64)
            # A shock of rank r is active in the sample's columns m = r + 1 .. k - 1.
            spans = np.maximum(k - 1 - rank, 0)
            pair_shock = np.repeat(np.arange(len(sample)), spans)
            starts = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
            within = np.arange(len(pair_shock), dtype=np.int64) - starts[pair_shock]
            pair_col = offset[sample[pair_shock]] + rank[pair_shock] + within
            pair_member = member[pair_shock]
            pair_sev = severity[pair_shock]
            for e in range(n_events):
                sel = pair_member == e
                if sel.any():
                    cols = pair_col[sel]
                    up[:, cols] *= 1.0 - np.outer(plan.exposure[e], pair_sev[sel])
            sel = pair_member < 0
            up[-1 - pair_member[sel], pair_col[sel]] *= 1.0 - pair_sev[sel]
            partial_loss = self._loss(up)  # n_cols x providers
        else:
            partial_loss = np.zeros((0, loss.shape[1]))
        is_last = rank == k - 1
        step_loss = np.empty((len(sample), loss.shape[1]), dtype=np.float64)
        step_loss[is_last] = loss[sample[is_last]]
        not_last = ~is_last
        step_loss[not_last] = partial_loss[offset[sample[not_last]] + rank[not_last]]
        np.add.at(result, sample, step_loss * (width / horizon)[:, None])
        return result


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
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep_drivers: bool = False,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SimulationResult:
    """Simulate ``n_samples`` scenarios of ``events`` plus independent node failures.

    ``model``: a :class:`ImpactModel` or :class:`SupplyGraph` (providers = every provider;
    events may use tags and regimes), or a bare :class:`CompiledGraph` (``providers`` is then
    required, and only node and country members are understood). ``node_failures=None``
    switches independent failures off. ``threshold``: ``prob_shortfall = Pr(a(P) <
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
    n_prov = len(plan.provider_ids)
    drivers = plan.drivers
    losses = np.empty((n_samples, n_prov), dtype=np.float64)
    weighted = np.empty((n_samples, n_prov), dtype=np.float64)
    # Per driver, the samples it occurred in and their losses without it (sample order).
    changed_at: list[list[IntArray]] = [[] for _ in drivers]
    changed_to: list[list[FloatArray]] = [[] for _ in drivers]
    x = np.zeros((n_samples, len(drivers)), dtype=np.float64) if keep_drivers else None
    occurrences = np.zeros(len(drivers), dtype=np.int64)
    source = _DrawSource(plan, seed)

    done = batch_no = 0
    # Progress after every batch, but at most about MAX_PROGRESS_REPORTS times in all (each
    # report scans every sample so far), and always after the last one.
    report_every = max(1, math.ceil(math.ceil(n_samples / batch_size) / MAX_PROGRESS_REPORTS))
    while done < n_samples:
        if should_stop is not None and should_stop():
            raise Cancelled(done)
        stop = min(n_samples, done + batch_size)
        draws = source.take(done, stop)
        batch = _Batch(plan, draws)
        loss, off, dw = batch.run()
        losses[done:stop] = loss
        weighted[done:stop] = dw
        for d, (cols, changed) in enumerate(off):
            changed_at[d].append(done + cols)
            changed_to[d].append(changed)
            occurrences[d] += len(cols)
        if x is not None:
            x[done:stop, : len(plan.events)] = batch.hit
            if len(plan.fail_nodes):
                x[done:stop, -1] = np.bincount(
                    draws.fail_sample, weights=draws.fail_severity, minlength=stop - done
                )
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

    names = {e.id: e.label for e in plan.events} | {NODE_FAILURES_ID: "independent node failures"}
    off_mean = np.zeros((len(drivers), n_prov), dtype=np.float64)
    off_cvar = np.zeros((len(drivers), n_prov), dtype=np.float64)
    for d in range(len(drivers)):
        switched = losses.copy()
        switched[np.concatenate(changed_at[d])] = np.concatenate(changed_to[d])
        off_mean[d] = switched.mean(axis=0)
        off_cvar[d] = _tail_mean(np.sort(switched, axis=0))
    risks = _summarise(plan, losses, weighted, off_mean, off_cvar, occurrences, threshold, names)
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
        node_failures=node_failures if len(plan.fail_nodes) else None,
        providers=risks,
        drivers=kept,
    )


def _summarise(
    plan: _Plan,
    losses: FloatArray,
    weighted: FloatArray,
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
    dw_mean = weighted.mean(axis=0)
    dw_p95 = _quantile(np.sort(weighted, axis=0), 0.95)
    se_mean, se_short, se_any = _se_mean(losses), _se_prob(shortfall, n), _se_prob(any_loss, n)
    se_dw = _se_mean(weighted)
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
                mean_duration_weighted_loss=float(dw_mean[k]),
                mean_duration_weighted_loss_se=float(se_dw[k]),
                p95_duration_weighted_loss=float(dw_p95[k]),
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
    batch_size: int,
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
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
    event_p = np.array(
        [horizon_probability(e.probability, e.horizon_weeks, horizon_weeks) for e in events],
        dtype=np.float64,
    )
    fail_nodes, fail_p = _failure_nodes(
        compiled, graph, set(all_providers) | set(chosen), node_failures, horizon_weeks
    )
    nf = node_failures or DEFAULT_NODE_FAILURES
    return _Plan(
        compiled=compiled,
        provider_ids=chosen,
        provider_index=np.array([compiled.index[p] for p in chosen], dtype=np.int64),
        events=tuple(events),
        exposure=exposure,
        event_p=event_p,
        event_severity=_PertVector([e.severity for e in events]),
        event_duration=_PertVector([e.duration for e in events]),
        fail_nodes=fail_nodes,
        fail_p=fail_p,
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


def _failure_nodes(
    compiled: CompiledGraph,
    graph: SupplyGraph | None,
    provider_ids: set[str],
    nf: NodeFailures | None,
    horizon_weeks: float,
) -> tuple[IntArray, FloatArray]:
    """Eligible nodes (compiled order) and their failure probability over the horizon."""
    if nf is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    overrides = dict(nf.overrides)
    nodes: list[int] = []
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
        nodes.append(i)
        probs.append(horizon_probability(p, nf.horizon_weeks, horizon_weeks))
    return np.array(nodes, dtype=np.int64), np.array(probs, dtype=np.float64)
