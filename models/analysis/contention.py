"""Buyer-side contention on shared bottlenecks (CoWoS lines, HBM products, ...).

Several providers buy from the same capacity-constrained node. For each bottleneck (a node, or
a named group of nodes taken together, e.g. every CoWoS line) and each provider P:

- **flow** ``x_P(B)``: the share of P's supply that passes through the bottleneck (the engine's
  effective-sourcing flows, summed over the group's nodes);
- **demand share**: P's part of the bottleneck's demand, ``x_P(B) w_P / sum_Q x_Q(B) w_Q``,
  with ``w`` the normalised provider demand weights (provider_demand.csv; default equal);
- **dependence**: the structural impact ``I_P(B) = 1 - a(P | B down)``;
- **pro-rata shortfall**: when the bottleneck is short by a fraction ``f`` and every buyer loses
  ``f`` of its allocation, P keeps ``a(P | up(B) = 1 - f)`` and loses the rest; computed for a
  grid of ``f`` (default 0.1, 0.25, 0.5).

A large dependence with a small demand share is the weak bargaining position: the provider
needs the bottleneck but is a minor buyer when allocations tighten. Every scenario of every
bottleneck (the shortfall grid plus a full loss) is evaluated in one batched call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sovrisk.models.analysis.resilience import demand_shares
from sovrisk.models.errors import FieldViolation, InvalidParameterError, NotFoundError
from sovrisk.models.graph.resilience_data import ProviderDemand
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, NodeKind

if TYPE_CHECKING:
    from sovrisk.models.engine.impacts import ImpactModel

#: Nodes with any of these tags are bottlenecks by default (each node, and a group per tag).
DEFAULT_BOTTLENECK_TAGS: tuple[str, ...] = ("cowos", "advanced_packaging", "hbm")
DEFAULT_SHORTFALLS: tuple[float, ...] = (0.1, 0.25, 0.5)
#: Prefix of a group bottleneck's id (``group:cowos``), so it never clashes with a node id.
GROUP_PREFIX = "group:"


@dataclass(frozen=True, slots=True)
class Shortfall:
    fraction: float  # f: the bottleneck's shortfall, every buyer pro rata
    retained: float  # a(P | up(B) = 1 - f)
    lost: float  # 1 - retained


@dataclass(frozen=True, slots=True)
class ProviderContention:
    provider: str
    flow: float  # share of the provider's supply passing through the bottleneck
    demand_weight: float  # w_P, normalised over providers
    demand_share: float  # the provider's share of the bottleneck's demand
    dependence: float  # I_P(B): supply lost if the bottleneck is lost
    shortfalls: tuple[Shortfall, ...]

    def lost_at(self, fraction: float) -> float:
        for s in self.shortfalls:
            if math.isclose(s.fraction, fraction, abs_tol=1e-12):
                return s.lost
        raise KeyError(fraction)


@dataclass(frozen=True, slots=True)
class BottleneckContention:
    bottleneck: str  # a node id, or "group:<name>"
    nodes: tuple[str, ...]
    is_group: bool
    aggregate_market: bool
    demand: float  # sum_P x_P(B) w_P: the bottleneck's load in units of combined demand
    buyer_hhi: float  # HHI of the demand shares (0-10,000)
    top_buyer: str | None
    providers: tuple[ProviderContention, ...]  # buyers (flow > 0), largest share first


@dataclass(frozen=True, slots=True)
class ContentionResult:
    shortfalls: tuple[float, ...]
    demand: tuple[tuple[str, float], ...]  # normalised w_P
    bottlenecks: tuple[BottleneckContention, ...]  # groups first, then nodes, by demand

    def bottleneck(self, key: str) -> BottleneckContention:
        for row in self.bottlenecks:
            if row.bottleneck == key:
                return row
        raise NotFoundError("bottleneck", key)


def contention_analysis(
    engine: ImpactModel,
    demand: ProviderDemand | Mapping[str, float] | None = None,
    *,
    nodes: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    tags: Sequence[str] = DEFAULT_BOTTLENECK_TAGS,
    shortfalls: Sequence[float] = DEFAULT_SHORTFALLS,
) -> ContentionResult:
    """Contention on each bottleneck node and group.

    Bottlenecks: the listed ``nodes`` and ``groups`` (name -> node ids); when neither is given,
    every node carrying one of ``tags`` plus one group per tag (``group:<tag>``).
    """
    graph, cg = engine.graph, engine.compiled
    grid = tuple(float(f) for f in shortfalls)
    violations = [
        FieldViolation("shortfalls", str(f), "must be in (0, 1]")
        for f in grid
        if not (math.isfinite(f) and 0.0 < f <= 1.0)
    ]
    if not grid:
        violations.append(FieldViolation("shortfalls", "", "give at least one fraction"))
    if violations:
        raise InvalidParameterError(violations)
    grid = tuple(sorted(set(grid)))

    bottlenecks: list[tuple[str, tuple[str, ...], bool]] = []
    if nodes is None and groups is None:
        for tag in tags:
            members = tuple(n.id for n in graph.nodes.values() if tag in n.tags)
            if members:
                bottlenecks.append((GROUP_PREFIX + tag, members, True))
        tagged = sorted({n.id for n in graph.nodes.values() if n.tags & set(tags)})
        bottlenecks += [(nid, (nid,), False) for nid in tagged]
    else:
        for name, listed in sorted((groups or {}).items()):
            bottlenecks.append((GROUP_PREFIX + name, tuple(sorted(set(listed))), True))
        bottlenecks += [(nid, (nid,), False) for nid in dict.fromkeys(nodes or ())]
    for key, members, _ in bottlenecks:
        if not members:
            raise InvalidParameterError([FieldViolation("groups", key, "group is empty")])
        for nid in members:
            if nid not in graph.nodes:
                raise NotFoundError("node", nid)
            if graph.nodes[nid].kind is NodeKind.PROVIDER:
                raise InvalidParameterError(
                    [FieldViolation("nodes", nid, "a provider is not a bottleneck")]
                )

    weights = demand_shares(engine, demand)
    omega = np.array([weights[p] for p in engine.provider_ids])
    prov_nodes = np.array([cg.index[p] for p in engine.provider_ids], dtype=np.int64)
    levels = (*grid, 1.0) if grid[-1] < 1.0 else grid  # a full loss gives the dependence
    up = cg.ones(len(bottlenecks) * len(levels))
    for b, (_, members, _) in enumerate(bottlenecks):
        idx = np.array([cg.index[n] for n in members], dtype=np.int64)
        for k, f in enumerate(levels):
            up[idx, b * len(levels) + k] = 1.0 - f
    retained = cg.evaluate(up)[prov_nodes] if bottlenecks else np.zeros((len(omega), 0))

    rows = []
    for b, (key, members, is_group) in enumerate(bottlenecks):
        rows_of = [cg.index[n] for n in members]
        flow = engine.flows[rows_of].sum(axis=0)  # providers
        load = flow * omega
        total = float(load.sum())
        block = retained[:, b * len(levels) : (b + 1) * len(levels)]
        buyers = []
        for k, pid in enumerate(engine.provider_ids):
            if flow[k] <= 0.0:
                continue
            shares = tuple(
                Shortfall(f, float(block[k, s]), max(0.0, 1.0 - float(block[k, s])))
                for s, f in enumerate(grid)
            )
            buyers.append(
                ProviderContention(
                    provider=pid,
                    flow=float(flow[k]),
                    demand_weight=weights[pid],
                    demand_share=float(load[k]) / total if total > 0 else 0.0,
                    dependence=max(0.0, 1.0 - float(block[k, len(levels) - 1])),
                    shortfalls=shares,
                )
            )
        buyers.sort(key=lambda c: (-round(c.demand_share, 12), c.provider))
        rows.append(
            BottleneckContention(
                bottleneck=key,
                nodes=members,
                is_group=is_group,
                aggregate_market=any(AGGREGATE_MARKET_TAG in graph.nodes[n].tags for n in members),
                demand=total,
                buyer_hhi=math.fsum((100.0 * c.demand_share) ** 2 for c in buyers),
                top_buyer=buyers[0].provider if buyers and total > 0 else None,
                providers=tuple(buyers),
            )
        )
    rows.sort(key=lambda r: (not r.is_group, -round(r.demand, 12), r.bottleneck))
    return ContentionResult(
        shortfalls=grid,
        demand=tuple(sorted(weights.items())),
        bottlenecks=tuple(rows),
    )
