"""Allocation of constrained capacity by a named rule (METHODS v2 §10).

A **pool** (``capacity.csv``: a node id or a tag, e.g. ``cowos`` for TSMC's CoWoS-S/L/R) has a
capacity ``K`` per month, a yield ``y`` and a demand ``D`` in one quarter. Its **claimants**
(``allocation.csv``: designers or chips, plus ``other``) want ``d_c`` of the demand (shares sum
to 1) and may hold reservations ``r_c`` of the capacity. Everything here is in units of the
pool's demand, so the good output is ``S = K y / D`` (more than 1 is headroom) and claimant
``c`` wants ``d_c``. A rule turns ``S`` into each claimant's **fill** ``f_c`` in [0, 1]:

- ``pro_rata``: every claimant the same, ``f = min(1, S)``;
- ``reservations_first``: reservations ``R_c = r_c × K y / D`` (the capacity agreed before
  any shock) are served first (``min(d_c, R_c)``, scaled down pro rata if even they exceed
  ``S``); what is left is shared pro rata over the demand the reservations do not cover;
- ``custom_first``: claimants whose chips are custom silicon (owned by a cloud provider) are
  filled first, pro rata among them, then everyone else;
- ``priority``: claimants in the order given, each filled before the next; unlisted ones last,
  together, pro rata.

A chip belongs to the claimant that names it, else to the named claimant among its designers
and ASIC partners with the largest share (ties by id), else to ``other``; a chip of no claimant
(no ``other`` row either) takes the pool's pro-rata fill. Every edge from a pool node to a chip
then delivers ``f_c`` of its flow: ``1 - a(P)`` under those edge scales is the provider's
**shortfall**, the supply its chips' allocations cannot cover.

Fills are functions of ``S`` only, so a batch of supplies (one per scenario) is one array
operation per tier (:func:`fills`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sovrisk.models.engine.compiled import CompiledGraph, EdgeTerm, FloatArray
from sovrisk.models.engine.impacts import ImpactModel
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.schema import NodeKind
from sovrisk.models.graph.series import (
    OTHER_CLAIMANT,
    CapacityState,
    Claim,
    DatedSeries,
    Interpolated,
    Quarter,
    pool_members,
)
from sovrisk.models.graph.supply_graph import SupplyGraph

#: Categories whose suppliers name the firm that buys a chip's wafers and packaging.
DESIGN_CATEGORIES = ("design", "asic_partner")


class AllocationRule(enum.StrEnum):
    PRO_RATA = "pro_rata"
    RESERVATIONS_FIRST = "reservations_first"
    CUSTOM_FIRST = "custom_first"
    PRIORITY = "priority"


RULES = tuple(AllocationRule)


@dataclass(frozen=True, slots=True)
class Claimant:
    id: str
    demand: float  # share of the pool's demand
    reserved: float  # share of the pool's capacity under reservation
    custom: bool  # every chip it buys for is custom silicon (a cloud provider's own)
    chips: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Pool:
    """One constrained pool in one quarter, ready to allocate."""

    id: str
    quarter: Quarter
    members: tuple[str, ...]
    capacity: Interpolated[CapacityState] | None
    claims: Interpolated[tuple[Claim, ...]] | None
    claimants: tuple[Claimant, ...]
    #: Per claimant (same order), the compiled entries of its pool edges.
    entries: tuple[np.ndarray, ...]
    #: Compiled entries of pool edges to chips of no claimant (pro-rata fill).
    unclaimed: np.ndarray
    #: Each member's share of the pool's output (its combined flow), for pooling node losses.
    member_weights: dict[str, float]

    @property
    def output(self) -> float:
        """``S = K y / D``: good output in units of demand (1 without a demand figure)."""
        if self.capacity is None:
            return 1.0
        state = self.capacity.value
        if state.demand is None or state.demand <= 0.0:
            return 1.0
        return state.output / state.demand

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(x.note for x in (self.capacity, self.claims) if x is not None and x.note)


def fills(
    supply: FloatArray | float,
    claimants: Sequence[Claimant],
    rule: AllocationRule,
    *,
    capacity: float = 1.0,
    priority: Sequence[str] = (),
) -> FloatArray:
    """Fill of every claimant (``claimants x len(supply)``) when the pool's good output is
    ``supply`` (units of demand). ``capacity`` (units of demand) sizes the reservations."""
    s = np.atleast_1d(np.asarray(supply, dtype=np.float64))
    demand = np.array([c.demand for c in claimants], dtype=np.float64)
    out = np.zeros((len(claimants), len(s)))
    if not len(claimants):
        return out
    if rule is AllocationRule.PRO_RATA:
        total = demand.sum()
        out[:] = np.minimum(1.0, s / total)[None, :] if total > 0 else 1.0
        return out
    if rule is AllocationRule.RESERVATIONS_FIRST:
        held = np.minimum(demand, np.array([c.reserved for c in claimants]) * capacity)
        first = held.sum()
        scale = np.minimum(1.0, s / first) if first > 0 else np.ones_like(s)
        given = held[:, None] * scale[None, :]
        left = np.maximum(0.0, s - first)
        rest = demand - held
        rest_total = rest.sum()
        if rest_total > 0:
            given += rest[:, None] * np.minimum(1.0, left / rest_total)[None, :]
        return _ratio(given, demand)
    if rule is AllocationRule.CUSTOM_FIRST:
        tiers = [[k for k, c in enumerate(claimants) if c.custom]]
    else:
        ids = [c.id for c in claimants]
        tiers = [[ids.index(cid)] for cid in priority if cid in ids]
    listed = {k for tier in tiers for k in tier}
    tiers.append([k for k in range(len(claimants)) if k not in listed])
    left = s.copy()
    given = np.zeros_like(out)
    for tier in tiers:
        want = demand[tier].sum()
        if not tier or want <= 0:
            continue
        take = np.minimum(1.0, left / want)
        given[tier] = demand[tier][:, None] * take[None, :]
        left = np.maximum(0.0, left - want * take)
    return _ratio(given, demand)


def _ratio(given: FloatArray, demand: FloatArray) -> FloatArray:
    safe = np.where(demand > 0, demand, 1.0)
    return np.where(demand[:, None] > 0, np.minimum(1.0, given / safe[:, None]), 1.0)


def pools_at(
    model: ImpactModel, series: DatedSeries, quarter: Quarter, weights: Mapping[str, float]
) -> tuple[Pool, ...]:
    """Every pool with capacity or allocation data, as of ``quarter``. ``weights``: provider
    demand weights, to weigh each member's share of the pool's output."""
    graph, cg = model.graph, model.compiled
    owners = {p.owner for p in graph.providers()}
    position = {
        (e.consumer, e.category, e.supplier): int(cg.edge_position[k])
        for k, e in enumerate(graph.edges)
    }
    total = math.fsum(weights.get(p, 0.0) for p in model.provider_ids) or 1.0
    w = np.array([weights.get(p, 0.0) / total for p in model.provider_ids])
    combined = model.flows @ w if len(w) else np.zeros(cg.n_nodes)
    pools = []
    for pid in series.pools():
        members = tuple(pool_members(graph, pid))
        claims = series.claims_at(pid, quarter)
        named = {c.claimant: c for c in claims.value} if claims else {}
        chips: dict[str, list[str]] = {}
        edges: dict[str, list[int]] = {}
        for member in members:
            for edge in graph.outputs(member):
                owner = _claimant_of(graph, edge.consumer, named)
                key = position[(edge.consumer, edge.category, edge.supplier)]
                edges.setdefault(owner, []).append(key)
                if edge.consumer not in chips.setdefault(owner, []):
                    chips[owner].append(edge.consumer)
        claimants = tuple(
            Claimant(
                c.claimant,
                c.demand_share,
                c.reserved_share,
                bool(chips.get(c.claimant))
                and all(graph.nodes[x].owner in owners for x in chips[c.claimant]),
                tuple(sorted(chips.get(c.claimant, []))),
            )
            for c in (claims.value if claims else ())
        )
        flow = {m: float(combined[cg.index[m]]) for m in members}
        flow_total = math.fsum(flow.values())
        pools.append(
            Pool(
                pid,
                quarter,
                members,
                series.capacity_at(pid, quarter),
                claims,
                claimants,
                tuple(np.array(sorted(edges.get(c.id, [])), dtype=np.int64) for c in claimants),
                np.array(sorted(edges.get("", [])), dtype=np.int64),
                {
                    m: (v / flow_total if flow_total > 0 else 1.0 / len(members))
                    for m, v in flow.items()
                },
            )
        )
    return tuple(pools)


def _claimant_of(graph: SupplyGraph, chip: str, named: Mapping[str, Claim]) -> str:
    """The claimant that buys for ``chip`` ('' if none and no 'other' row)."""
    if chip in named:
        return chip
    designers = sorted(
        (-e.share, e.supplier)
        for e in graph.inputs(chip)
        if e.category in DESIGN_CATEGORIES and e.supplier in named
    )
    if designers:
        return designers[0][1]
    node = graph.nodes[chip]
    if OTHER_CLAIMANT in named and node.kind is not NodeKind.PROVIDER:
        return OTHER_CLAIMANT
    return ""


def pool_scale(
    pool: Pool,
    n_entries: int,
    rule: AllocationRule,
    *,
    supply: float | None = None,
    capacity: float | None = None,
    priority: Sequence[str] = (),
) -> FloatArray:
    """Per compiled entry: the fill of the claimant each of the pool's edges serves, when the
    pool's good output is ``supply`` (default: as of its quarter) and reservations are sized
    on ``capacity`` (default: the quarter's output)."""
    s = pool.output if supply is None else supply
    cap = pool.output if capacity is None else capacity
    f = fills(s, pool.claimants, rule, capacity=cap, priority=priority)[:, 0]
    scale = np.ones(n_entries)
    for k, entries in enumerate(pool.entries):
        scale[entries] = f[k]
    scale[pool.unclaimed] = min(1.0, s)
    return scale


def standing_shortfall(
    model: ImpactModel,
    pools: Sequence[Pool],
    rule: AllocationRule,
    *,
    priority: Sequence[str] = (),
) -> FloatArray:
    """``1 - a(P)`` (providers) when every pool serves its claimants by ``rule`` as of its
    quarter: the supply lost to capacity short of demand, whatever else happens."""
    cg = model.compiled
    scale = np.ones(cg.shares.nnz)
    for pool in pools:
        scale *= pool_scale(pool, cg.shares.nnz, rule, priority=priority)
    # Qualifiable alternates take no part: their spare answers a disruption, while a standing
    # shortfall is demand above everything qualified (the CoWoS-like lines have their own pool).
    scale[cg.ramp_entries] = 0.0
    a = cg.evaluate(np.ones(cg.n_nodes), edge_scale=scale)
    return np.asarray(1.0 - a[model.provider_rows], dtype=np.float64)


def parse_rule(value: str, field: str = "allocation_rule") -> AllocationRule:
    try:
        return AllocationRule(value)
    except ValueError:
        raise InvalidParameterError(
            [FieldViolation(field, value, f"must be one of {', '.join(r.value for r in RULES)}")]
        ) from None


@dataclass(frozen=True, eq=False)
class PoolAllocation:
    """Constrained pools shared out by ``rule`` in a batch of scenarios (the Monte Carlo):
    a pool member's own capacity loss becomes a loss of the pool, which the rule hands to
    the claimants (METHODS v2 §10) instead of each node's customers pro rata."""

    pools: tuple[Pool, ...]
    rule: AllocationRule
    priority: tuple[str, ...] = ()

    def apply(self, compiled: CompiledGraph, up: FloatArray) -> list[EdgeTerm]:
        """Take every pool member's loss out of ``up`` (nodes x scenarios, changed in place)
        and return it as edge terms, one per claimant: scenario ``k`` delivers
        ``fill_c(S (1 - L_k)) / fill_c(S)`` of each of the claimant's pool edges, where ``L_k``
        is the pool's output-weighted loss and ``S`` its output as of the quarter."""
        terms: list[EdgeTerm] = []
        nnz = compiled.shares.nnz
        for pool in self.pools:
            rows = np.array([compiled.index[m] for m in pool.members], dtype=np.int64)
            weights = np.array([pool.member_weights[m] for m in pool.members])
            lost = weights @ (1.0 - up[rows, :])
            if not lost.any():
                continue
            up[rows, :] = 1.0
            s0 = pool.output
            before = fills(s0, pool.claimants, self.rule, capacity=s0, priority=self.priority)
            after = fills(
                s0 * (1.0 - lost), pool.claimants, self.rule, capacity=s0, priority=self.priority
            )
            groups = [(pool.entries[k], before[k, 0], after[k]) for k in range(len(pool.claimants))]
            groups.append((pool.unclaimed, min(1.0, s0), np.minimum(1.0, s0 * (1.0 - lost))))
            for entries, f0, f1 in groups:
                if not len(entries) or f0 <= 0.0:
                    continue
                exposure = np.zeros(nnz)
                exposure[entries] = 1.0
                terms.append(EdgeTerm(exposure, np.maximum(0.0, 1.0 - f1 / f0)))
        return terms
