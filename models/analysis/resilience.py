"""Resilience over time: time to recover (TTR), time to survive (TTS) and the risk-exposure
index (METHODS §6; Simchi-Levi et al., Interfaces 45(5), 2015; HBR, Jan 2014).

For every disrupted node *n* (down for ``TTR_n`` weeks) one linear program, aggregated over the
disruption window, routes the supply graph's flow around the loss:

- variables: the flow ``x_e`` on every supply edge (supplier -> consumer in one category), the
  production ``p_i`` of every node and the buffer drawdown ``v_e`` of every edge;
- AND: a consumer cannot produce more than any one of its input categories delivers,
  ``p_j <= sum_{e in (j, b)} (x_e + v_e)`` for every category ``b``;
- OR: within a category any qualified supplier (an existing edge) may deliver any amount, up
  to its capacity; the baseline shares only set the baseline outputs;
- flow: a node ships at most what it produces, ``sum_out x_e <= p_i``;
- capacity: ``p_i <= q_i (1 + spare_i) t`` and ``v_e <= c_e s_e q_j``, where ``q`` is a node's
  weekly baseline output (its flow for the providers' combined demand) and ``c_e`` the edge's
  buffer in weeks: the same buffers as the capacity engine (METHODS v2 §2, §6): a flow
  edge's inventory cover, an installed base's service buffer, a licence's life;
- the disrupted node produces nothing, ``p_n = 0`` (what its consumers hold is still usable);
- providers' demand: ``p_P <= w_P t`` (``w_P`` = normalised demand weight, so combined demand
  is 1 per week and a unit of lost supply is worth the same whoever loses it).

The optimum's lost demand is the performance impact ``PI_n`` (weeks of combined demand);
``REI_n = PI_n / max_m PI_m``. The time to survive ``TTS_n`` is the longest window with no lost
demand, found by one LP that maximises ``t`` subject to ``p_P = w_P t`` (the feasible ``t`` form
an interval because every constraint is linear in the flows and ``t``); unbounded = infinite.
Nodes with ``TTS < TTR`` are flagged.

The provider sub-score (0–100, higher = riskier) is the provider's lost share of its own
demand over the window of its worst single-node disruption, with the network's buffers shared
pro rata:  ``100 * max_n I_P(n) * u_n``, where ``I_P(n)`` is the structural impact and
``u_n = PI_n / (TTR_n * sum_Q w_Q I_Q(n))`` the share of the structural loss that inventory,
spare capacity and re-routing cannot buffer. docs/resilience.md explains the choice.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.compiled import FloatArray
from sovrisk.models.errors import FieldViolation, InvalidParameterError, NotFoundError
from sovrisk.models.graph.resilience_data import ProviderDemand, ResilienceData
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, NodeKind

if TYPE_CHECKING:
    from sovrisk.models.engine.impacts import ImpactModel

#: TTS LPs stop at this horizon; a TTS that reaches it is reported as infinite.
DEFAULT_HORIZON_WEEKS = 520.0
#: Lost demand below this (weeks of combined demand) is solver noise, reported as 0.
PI_TOLERANCE = 1e-7
#: TTS < TTR is flagged only when it is shorter by more than this (weeks).
FLAG_TOLERANCE = 1e-6
#: How many drivers each provider's resilience sub-score lists.
DEFAULT_TOP_DRIVERS = 5


def demand_shares(
    engine: ImpactModel, demand: ProviderDemand | Mapping[str, float] | None = None
) -> dict[str, float]:
    """Normalised demand weights ``w_P`` (summing to 1) for every provider of the engine.

    ``None`` gives every provider the same weight. A mapping may leave providers out (weight
    0); unknown ids, negative or non-finite weights, or an all-zero mapping are rejected.
    """
    if demand is None:
        return {pid: 1.0 / len(engine.provider_ids) for pid in engine.provider_ids}
    raw = demand.weights() if isinstance(demand, ProviderDemand) else dict(demand)
    violations = [
        FieldViolation(f"demand.{pid}", str(w), "unknown provider")
        for pid, w in sorted(raw.items())
        if pid not in engine.provider_ids
    ]
    violations += [
        FieldViolation(f"demand.{pid}", str(w), "must be a finite number >= 0")
        for pid, w in sorted(raw.items())
        if not (math.isfinite(w) and w >= 0.0)
    ]
    total = math.fsum(w for pid, w in raw.items() if pid in engine.provider_ids and w > 0)
    if not violations and total <= 0.0:
        violations.append(FieldViolation("demand", "", "at least one weight must be positive"))
    if violations:
        raise InvalidParameterError(violations)
    return {pid: raw.get(pid, 0.0) / total for pid in engine.provider_ids}


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeResilience:
    """TTR/TTS analysis of one disrupted node (weeks; PI in weeks of combined demand)."""

    node: str
    display_name: str
    kind: str
    ttr_weeks: float
    ttr_low: float
    ttr_high: float
    tts_weeks: float  # math.inf when the network survives the loss indefinitely
    pi: float  # performance impact: lost demand over the TTR window, weeks of combined demand
    lost_fraction: float  # pi / ttr: share of combined demand lost over the window
    rei: float  # pi / max pi, in [0, 1]
    flag: bool  # tts < ttr
    flag_at_ttr_low: bool  # flagged even at the optimistic recovery time
    flag_at_ttr_high: bool  # flagged at the pessimistic recovery time
    baseline_output: float  # q_n, weekly output in units of combined provider demand
    inventory_weeks: float  # the node's buffer_weeks (the default of the edges out of it)
    spare_capacity: float
    structural_loss: float  # sum_P w_P I_P(n): the combined loss with no buffer at all
    unbuffered: float  # u_n = pi / (ttr * structural_loss), in [0, 1]
    quality: str
    aggregate_market: bool
    provider_losses: tuple[tuple[str, float], ...]  # (provider, I_P(n) * u_n) where > 0


@dataclass(frozen=True, slots=True)
class ResilienceDriver:
    """A node behind a provider's resilience sub-score."""

    node: str
    impact: float  # I_P(n), structural
    unbuffered: float  # u_n
    lost_fraction: float  # I_P(n) * u_n: the provider's lost share over the window
    ttr_weeks: float
    tts_weeks: float


@dataclass(frozen=True, slots=True)
class ProviderResilience:
    """The resilience sub-score: 100 x the provider's largest pro-rata window loss."""

    provider: str
    score: float  # 0-100, higher = riskier
    demand_weight: float  # w_P (normalised)
    worst_node: str | None
    flagged_in_tree: int  # flagged nodes this provider depends on (I_P(n) > 0)
    drivers: tuple[ResilienceDriver, ...]
    explanation: str


@dataclass(frozen=True, slots=True)
class ResilienceResult:
    """Everything :func:`resilience_analysis` computes for one graph version."""

    nodes: tuple[NodeResilience, ...]  # ranked by PI (desc), then TTS gap, then id
    providers: tuple[ProviderResilience, ...]  # ranked by score (desc), then id
    demand: tuple[tuple[str, float], ...]  # normalised w_P
    horizon_weeks: float
    unused: tuple[str, ...]  # rows whose node carries no provider's flow
    without_data: tuple[str, ...]  # producing nodes in some supply tree with no row
    lp_solves: int

    def node(self, node_id: str) -> NodeResilience:
        for row in self.nodes:
            if row.node == node_id:
                return row
        raise NotFoundError("node", node_id)

    def provider(self, provider_id: str) -> ProviderResilience:
        for row in self.providers:
            if row.provider == provider_id:
                return row
        raise NotFoundError("provider", provider_id)

    @property
    def flagged(self) -> tuple[NodeResilience, ...]:
        return tuple(n for n in self.nodes if n.flag)


# -- the linear programs -------------------------------------------------------------------------


_STDOUT_LOCK = threading.Lock()


def _quiet_highs() -> highspy.Highs:
    """A HiGHS instance without its banner: the C++ constructor prints it on file descriptor
    1 before any option can be set, which would corrupt ``sovrisk ... --json`` output. The
    descriptor is pointed at /dev/null for the constructor only (microseconds; another
    thread's write to stdout in that window would be lost, which the service never does: it
    logs to stderr)."""
    with _STDOUT_LOCK:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            model = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
    model.setOptionValue("output_flag", False)
    # One thread per solve: the service solves on several worker threads at once, and HiGHS's
    # shared task scheduler is not meant to be entered from several threads (the LPs here are
    # small: its parallelism buys nothing).
    model.setOptionValue("threads", 1)
    model.setOptionValue("parallel", "off")
    return model


class _Network:
    """The LP's constraint matrices for one graph, demand and resilience table.

    Only nodes that carry some provider's flow (``q > 0``) take part. Variable layout:
    ``[x_e for active edges] [p_i for active nodes] [v_e for active edges]`` (+ ``t``).
    """

    def __init__(
        self,
        engine: ImpactModel,
        data: ResilienceData,
        weights: Mapping[str, float],
    ) -> None:
        graph, cg = engine.graph, engine.compiled
        omega = np.array([weights[p] for p in engine.provider_ids], dtype=np.float64)
        q_all: FloatArray = engine.flows @ omega  # weekly baseline output, combined demand = 1
        self.q_all = q_all
        active = [i for i in range(cg.n_nodes) if q_all[i] > 0.0]
        self.nodes = [cg.ids[i] for i in active]
        self.col = {nid: k for k, nid in enumerate(self.nodes)}
        n = len(self.nodes)
        self.q = q_all[np.asarray(active, dtype=np.int64)] if active else np.zeros(0)
        self.is_provider = np.array(
            [graph.nodes[nid].kind is NodeKind.PROVIDER for nid in self.nodes], dtype=bool
        )
        edges = [e for e in graph.edges if e.consumer in self.col and e.supplier in self.col]
        m = len(edges)
        self.m, self.n = m, n
        self.x0, self.p0, self.v0 = 0, m, m + n
        self.n_vars = 2 * m + n
        self._tts: tuple[highspy.Highs, float] | None = None  # the TTS LP, built on first use

        # AND rows: p_j - sum_{e in segment} (x_e + v_e) <= 0, one per (consumer, category).
        segments: dict[tuple[str, str], list[int]] = {}
        for e, edge in enumerate(edges):
            segments.setdefault((edge.consumer, edge.category), []).append(e)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        r = 0
        for (consumer, _), members in sorted(segments.items()):
            rows.append(r)
            cols.append(self.p0 + self.col[consumer])
            vals.append(1.0)
            for e in members:
                rows += [r, r]
                cols += [self.x0 + e, self.v0 + e]
                vals += [-1.0, -1.0]
            r += 1
        # Flow rows: sum_out x_e - p_i <= 0, one per supplying node.
        outgoing: dict[str, list[int]] = {}
        for e, edge in enumerate(edges):
            outgoing.setdefault(edge.supplier, []).append(e)
        for supplier, members in sorted(outgoing.items()):
            k = self.col[supplier]
            for e in members:
                rows.append(r)
                cols.append(self.x0 + e)
                vals.append(1.0)
            rows.append(r)
            cols.append(self.p0 + k)
            vals.append(-1.0)
            r += 1
        self.a_ub = sp.csc_matrix((vals, (rows, cols)), shape=(r, self.n_vars))

        spare = np.zeros(n)
        for nid, k in self.col.items():
            record = data.get(nid)
            if record is not None:
                spare[k] = record.spare_capacity
        self.capacity_rate = self.q * (1.0 + spare)  # max production per week
        # What each consumer holds of each input: buffer weeks x the edge's baseline flow.
        self.stock = np.array(
            [
                graph.edge_buffer(edge) * edge.share * self.q[self.col[edge.consumer]]
                for edge in edges
            ],
            dtype=np.float64,
        )
        self.demand = np.where(self.is_provider, self.q, 0.0)  # w_P for providers
        self.providers = np.flatnonzero(self.is_provider)

        # TTS: the same rows plus capacity rows p_i - rate_i t <= 0 for producing nodes and
        # demand rows p_P - w_P t = 0; one more variable, t.
        producing = np.flatnonzero(~self.is_provider)
        t_col = self.n_vars
        cap = sp.csr_matrix(
            (
                np.concatenate([np.ones(len(producing)), -self.capacity_rate[producing]]),
                (
                    np.concatenate([np.arange(len(producing))] * 2),
                    np.concatenate([self.p0 + producing, np.full(len(producing), t_col)]),
                ),
            ),
            shape=(len(producing), self.n_vars + 1),
        )
        self.tts_a_ub = sp.vstack(
            [sp.hstack([self.a_ub, sp.csc_matrix((r, 1))]), cap], format="csc"
        )
        provs = self.providers
        self.tts_a_eq = sp.csr_matrix(
            (
                np.concatenate([np.ones(len(provs)), -self.demand[provs]]),
                (
                    np.concatenate([np.arange(len(provs))] * 2),
                    np.concatenate([self.p0 + provs, np.full(len(provs), t_col)]),
                ),
            ),
            shape=(len(provs), self.n_vars + 1),
        ).tocsc()

    def performance_impact(self, node: str, weeks: float) -> float:
        """Lost demand (weeks of combined demand) with ``node`` down for ``weeks``."""
        k = self.col[node]
        bounds = np.zeros((self.n_vars, 2))
        bounds[: self.m, 1] = np.inf
        p_hi = np.where(self.is_provider, self.demand * weeks, self.capacity_rate * weeks)
        p_hi[k] = 0.0
        bounds[self.p0 : self.p0 + self.n, 1] = p_hi
        bounds[self.v0 : self.v0 + self.m, 1] = self.stock
        c = np.zeros(self.n_vars)
        c[self.p0 + self.providers] = -1.0
        res = linprog(
            c, A_ub=self.a_ub, b_ub=np.zeros(self.a_ub.shape[0]), bounds=bounds, method="highs"
        )
        if res.status != 0:  # pragma: no cover - the LP is always feasible (all zero) and bounded
            raise RuntimeError(f"resilience LP for {node} failed: {res.message}")
        total = float(self.demand.sum()) * weeks
        lost = total + float(res.fun)
        return 0.0 if lost < PI_TOLERANCE * max(1.0, total) else lost

    def _tts_model(self, horizon: float) -> highspy.Highs:
        """The TTS LP, passed to HiGHS once: each node's solve only changes one column's
        bounds and starts from the previous basis (warm start), ~10x faster than a fresh
        ``scipy.optimize.linprog`` per node on the bundled graph (same solver, same optimum)."""
        if self._tts is None:
            nv = self.n_vars + 1
            upper = np.zeros(nv)
            upper[: self.m] = np.inf
            upper[self.p0 : self.p0 + self.n] = np.inf
            upper[self.v0 : self.v0 + self.m] = self.stock
            upper[nv - 1] = horizon
            cost = np.zeros(nv)
            cost[nv - 1] = -1.0
            a = sp.vstack([self.tts_a_ub, self.tts_a_eq], format="csc")
            n_ub, n_eq = self.tts_a_ub.shape[0], self.tts_a_eq.shape[0]
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = nv, n_ub + n_eq
            lp.col_cost_ = cost
            lp.col_lower_ = np.zeros(nv)
            lp.col_upper_ = np.where(np.isinf(upper), highspy.kHighsInf, upper)
            lp.row_lower_ = np.concatenate([np.full(n_ub, -highspy.kHighsInf), np.zeros(n_eq)])
            lp.row_upper_ = np.zeros(n_ub + n_eq)
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_ = a.indptr
            lp.a_matrix_.index_ = a.indices
            lp.a_matrix_.value_ = a.data
            model = _quiet_highs()
            model.passModel(lp)
            self._tts = (model, horizon)
        model, built_for = self._tts
        if built_for != horizon:
            model.changeColBounds(self.n_vars, 0.0, horizon)
            self._tts = (model, horizon)
        return model

    def time_to_survive(self, node: str, horizon: float) -> float:
        """The longest window with no lost demand while ``node`` is down (inf if >= horizon)."""
        column = self.p0 + self.col[node]
        model = self._tts_model(horizon)
        model.changeColBounds(column, 0.0, 0.0)
        try:
            model.run()
            status = model.getModelStatus()
            if status != highspy.HighsModelStatus.kOptimal:  # pragma: no cover - t = 0 is feasible
                raise RuntimeError(f"TTS LP for {node} failed: {model.modelStatusToString(status)}")
            t = float(-model.getInfo().objective_function_value)
        finally:
            model.changeColBounds(column, 0.0, highspy.kHighsInf)
        return math.inf if t >= horizon * (1.0 - 1e-9) else max(0.0, t)


# -- the analysis --------------------------------------------------------------------------------


def resilience_analysis(
    engine: ImpactModel,
    resilience_data: ResilienceData,
    demand: ProviderDemand | Mapping[str, float] | None = None,
    *,
    nodes: Sequence[str] | None = None,
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS,
    top_drivers: int = DEFAULT_TOP_DRIVERS,
) -> ResilienceResult:
    """TTR/TTS, PI and REI for every node with resilience data (or the listed ``nodes``),
    and the per-provider resilience sub-score.

    ``demand`` weights the providers (a :class:`ProviderDemand`, a mapping provider -> weight,
    or ``None`` for equal weights). One LP per node for TTS (max ``t``) and, when
    ``TTS < TTR``, one for PI at ``t = TTR`` (otherwise PI = 0: no loss is feasible up to TTS).
    """
    if not (math.isfinite(horizon_weeks) and horizon_weeks > 0):
        raise InvalidParameterError(
            [FieldViolation("horizon_weeks", str(horizon_weeks), "must be a positive number")]
        )
    if top_drivers < 0:
        raise InvalidParameterError(
            [FieldViolation("top_drivers", str(top_drivers), "must be >= 0")]
        )
    graph, cg = engine.graph, engine.compiled
    weights = demand_shares(engine, demand)
    selected = list(resilience_data.records) if nodes is None else list(dict.fromkeys(nodes))
    violations = [
        FieldViolation("nodes", nid, "no resilience data for this node")
        for nid in selected
        if nid not in resilience_data
    ]
    if violations:
        raise InvalidParameterError(violations)
    net = _Network(engine, resilience_data, weights)
    omega = np.array([weights[p] for p in engine.provider_ids], dtype=np.float64)

    solves = 0
    rows: list[NodeResilience] = []
    drivers: dict[str, list[ResilienceDriver]] = {pid: [] for pid in engine.provider_ids}
    flagged_in_tree = dict.fromkeys(engine.provider_ids, 0)
    unused: list[str] = []
    for nid in sorted(selected):
        checkpoint()  # one or two LPs per node: milliseconds each
        if nid not in net.col:
            unused.append(nid)
            continue
        record = resilience_data.records[nid]
        ttr = record.ttr_weeks
        tts = net.time_to_survive(nid, horizon_weeks)
        flag = tts < ttr - FLAG_TOLERANCE
        # The windows with no loss form the interval [0, TTS]: when TTS >= TTR the PI LP's
        # optimum is 0 and need not be solved.
        pi = net.performance_impact(nid, ttr) if flag else 0.0
        solves += 2 if flag else 1
        j = cg.index[nid]
        impacts = engine.node_impact[:, j]
        structural = float(omega @ impacts)
        unbuffered = min(1.0, pi / (ttr * structural)) if structural > 0 and pi > 0 else 0.0
        losses: list[tuple[str, float]] = []
        for k, pid in enumerate(engine.provider_ids):
            impact = float(impacts[k])
            if impact <= 0.0:
                continue
            flagged_in_tree[pid] += flag
            if impact * unbuffered > 0.0:
                losses.append((pid, impact * unbuffered))
                drivers[pid].append(
                    ResilienceDriver(nid, impact, unbuffered, impact * unbuffered, ttr, tts)
                )
        node = graph.nodes[nid]
        rows.append(
            NodeResilience(
                node=nid,
                display_name=node.name,
                kind=str(node.kind),
                ttr_weeks=ttr,
                ttr_low=record.ttr_low,
                ttr_high=record.ttr_high,
                tts_weeks=tts,
                pi=pi,
                lost_fraction=pi / ttr,
                rei=0.0,  # filled below, once the largest PI is known
                flag=flag,
                flag_at_ttr_low=tts < record.ttr_low - FLAG_TOLERANCE,
                flag_at_ttr_high=tts < record.ttr_high - FLAG_TOLERANCE,
                baseline_output=float(net.q_all[j]),
                inventory_weeks=graph.nodes[nid].buffer_weeks or 0.0,
                spare_capacity=record.spare_capacity,
                structural_loss=structural,
                unbuffered=unbuffered,
                quality=str(record.provenance.quality),
                aggregate_market=AGGREGATE_MARKET_TAG in node.tags,
                provider_losses=tuple(losses),
            )
        )
    top = max((r.pi for r in rows), default=0.0)
    rows = [replace(r, rei=r.pi / top if top > 0 else 0.0) for r in rows]
    rows.sort(key=lambda r: (-round(r.pi, 9), -_gap(r), r.node))

    providers = tuple(
        sorted(
            (
                _provider_score(pid, weights[pid], drivers[pid], flagged_in_tree[pid], top_drivers)
                for pid in engine.provider_ids
            ),
            key=lambda p: (-round(p.score, 9), p.provider),
        )
    )
    in_trees = np.flatnonzero(net.q_all > 0.0)
    without = tuple(
        sorted(
            cg.ids[i]
            for i in in_trees
            if graph.nodes[cg.ids[i]].kind is not NodeKind.PROVIDER
            and cg.ids[i] not in resilience_data
        )
    )
    return ResilienceResult(
        nodes=tuple(rows),
        providers=providers,
        demand=tuple(sorted(weights.items())),
        horizon_weeks=horizon_weeks,
        unused=tuple(unused),
        without_data=without,
        lp_solves=solves,
    )


def _gap(row: NodeResilience) -> float:
    return row.ttr_weeks - row.tts_weeks if math.isfinite(row.tts_weeks) else -math.inf


def _provider_score(
    pid: str, weight: float, drivers: list[ResilienceDriver], flagged: int, top: int
) -> ProviderResilience:
    ranked = sorted(drivers, key=lambda d: (-round(d.lost_fraction, 12), d.node))
    worst = ranked[0] if ranked else None
    if worst is None:
        text = "No single-node disruption with resilience data outlasts the network's buffers."
    else:
        text = (
            f"Worst single-node disruption: {worst.node} (down {worst.ttr_weeks:g} weeks, "
            f"network survives {worst.tts_weeks:.1f}); {100 * worst.impact:.0f} % of supply "
            f"depends on it and {100 * worst.unbuffered:.0f} % of that loss cannot be buffered, "
            f"so {100 * worst.lost_fraction:.1f} % of demand is lost over the window."
        )
    score = 100.0 * worst.lost_fraction if worst else 0.0
    return ProviderResilience(
        provider=pid,
        score=min(100.0, max(0.0, score)),
        demand_weight=weight,
        worst_node=worst.node if worst else None,
        flagged_in_tree=flagged,
        drivers=tuple(ranked[:top]),
        explanation=text,
    )
