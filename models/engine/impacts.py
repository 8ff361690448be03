"""The impact model of one graph version: what losing each node, firm, country or regime
does to every provider (METHODS §2, §5).

Everything here depends only on the graph, so it is evaluated once, as batches on the
compiled arrays, when the model is built: single-node, single-firm and single-country
knockouts for every provider, effective sourcing flows and each regime's bind. Analyses
(:mod:`models.analysis`) and the scorer (:mod:`models.scoring`) read these arrays.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from models.engine.compiled import FloatArray, compile_graph
from models.graph.schema import AGGREGATE_MARKET_TAG, NodeKind, Regime
from models.graph.supply_graph import SupplyGraph

#: Impacts at or above this count as a single point of failure (exactly 1 up to rounding).
SPOF_TOLERANCE = 1e-9


def chokepoint_rank(impacts: Sequence[float], min_impact: float) -> tuple[int, float]:
    """(providers cut to ``min_impact`` or more, mean impact): the order of chokepoints in
    ListChokepoints and the reports, most providers cut first, then the deepest."""
    cut = sum(1 for v in impacts if v >= min_impact - 1e-12)
    return cut, (math.fsum(impacts) / len(impacts) if impacts else 0.0)


class ImpactModel:
    """Provider impacts of every node, firm, country and regime of one :class:`SupplyGraph`."""

    def __init__(
        self,
        graph: SupplyGraph,
    ) -> None:
        self.graph = graph
        cg = compile_graph(graph)
        self.compiled = cg
        self.provider_ids = tuple(sorted(p.id for p in graph.providers()))
        self._prow = {pid: k for k, pid in enumerate(self.provider_ids)}
        prov_idx = [cg.index[p] for p in self.provider_ids]
        self._prov_idx = np.asarray(prov_idx, dtype=np.int64)
        n = cg.n_nodes

        self.baseline = cg.evaluate(np.ones(n))
        # Node impacts: one batch knocking out every node, read at every provider.
        knocked = cg.evaluate(cg.knockouts(range(n)))
        self.node_impact: FloatArray = 1.0 - knocked[self._prov_idx, :]  # providers x nodes
        # Country impacts: one batch losing every country's sites.
        lost = cg.evaluate(cg.country_losses())
        self.country_impact: FloatArray = 1.0 - lost[self._prov_idx, :]  # providers x countries
        # Firm impacts: every node a firm owns lost at once (e.g. all of TSMC's processes).
        owners: dict[str, list[str]] = defaultdict(list)
        for n_id in cg.ids:
            record = graph.nodes[n_id]
            if record.kind is not NodeKind.PROVIDER and AGGREGATE_MARKET_TAG not in record.tags:
                owners[record.owner].append(n_id)
        self.firms = tuple(sorted(owners))
        self._firm_nodes = {f: tuple(sorted(owners[f])) for f in self.firms}
        firm_up = np.ones((n, len(self.firms)))
        for f, owner in enumerate(self.firms):
            firm_up[[cg.index[i] for i in owners[owner]], f] = 0.0
        self.firm_impact: FloatArray = 1.0 - cg.evaluate(firm_up)[self._prov_idx, :]
        self.flows: FloatArray = cg.flows(prov_idx)  # nodes x providers
        self._site_dense = np.asarray(cg.sites.toarray())  # nodes x countries
        self._country_col = {c: k for k, c in enumerate(cg.countries)}
        # Regimes: node-level bound fractions (whatever the destination, for jurisdictional
        # vetoes) and edge-level scales (deliveries to the regime's destinations only). A
        # regime's veto does not depend on the date, so each is evaluated once, for every
        # provider; the date only decides which of them are in force.
        self._bound = {r.id: self._bound_vector(r) for r in graph.regimes.values()}
        self._edge_scale = {r.id: self._regime_edge_scale(r) for r in graph.regimes.values()}
        self._regime_veto = {
            rid: 1.0 - cg.evaluate(np.ones(n), edge_scale=scale)[self._prov_idx]
            for rid, scale in self._edge_scale.items()
        }
        self._jurisdictions = tuple(
            sorted(set(cg.countries) | {r.issuer for r in graph.regimes.values()})
        )
        self._in_force_effects = lru_cache(maxsize=256)(self._in_force_effects_uncached)

    def node_chokepoints(self, min_impact: float) -> list[tuple[str, list[tuple[str, float]]]]:
        """Supply nodes (not providers) with the impact each provider would suffer, ranked by
        how many providers they cut to ``min_impact`` or more, then by mean impact."""
        rows = []
        for j, nid in enumerate(self.compiled.ids):
            if self.graph.nodes[nid].kind is NodeKind.PROVIDER:
                continue
            impacts = [(p, float(self.node_impact[k, j])) for k, p in enumerate(self.provider_ids)]
            rows.append((nid, impacts))
        return _rank(rows, min_impact)

    def firm_chokepoints(self, min_impact: float) -> list[tuple[str, list[tuple[str, float]]]]:
        rows = []
        for f, firm in enumerate(self.firms):
            impacts = [(p, float(self.firm_impact[k, f])) for k, p in enumerate(self.provider_ids)]
            rows.append((firm, impacts))
        return _rank(rows, min_impact)

    def country_chokepoints(self, min_impact: float) -> list[tuple[str, list[tuple[str, float]]]]:
        rows = []
        for c, iso3 in enumerate(self.compiled.countries):
            impacts = [
                (p, float(self.country_impact[k, c])) for k, p in enumerate(self.provider_ids)
            ]
            rows.append((iso3, impacts))
        return _rank(rows, min_impact)

    # -- regimes ----------------------------------------------------------------------------

    def _bound_vector(self, regime: Regime) -> FloatArray:
        """Fraction of each node's capacity the regime binds (before the destination test)."""
        cg = self.compiled
        bound = np.zeros(cg.n_nodes)
        cols = [self._country_col[c] for c in regime.origin_countries if c in self._country_col]
        for nid in self.graph.reached_nodes(regime):
            i = cg.index[nid]
            share = self._site_dense[i, cols].sum() if regime.origin_countries else 1.0
            bound[i] = regime.severity * min(1.0, float(share))
        return bound

    def _destination_share(self, regime: Regime, consumer: str) -> float:
        """How much of a consumer's intake a regime's destination list covers: the share of
        its capacity sited in the destinations (a provider: its home country)."""
        if not regime.destination_countries:
            return 1.0
        node = self.graph.nodes[consumer]
        if node.kind is NodeKind.PROVIDER:
            return 1.0 if node.hq_country in regime.destination_countries else 0.0
        return self.graph.site_share(consumer, regime.destination_countries)

    def _regime_edge_scale(self, regime: Regime) -> FloatArray:
        """Per supply share: ``1 - bound(supplier) x destination share(consumer)``."""
        cg = self.compiled
        bound = self._bound[regime.id]
        scale = np.ones(cg.shares.nnz)
        for e, edge in enumerate(self.graph.edges):
            b = bound[cg.index[edge.supplier]]
            if b > 0.0:
                scale[cg.edge_position[e]] = 1.0 - b * self._destination_share(
                    regime, edge.consumer
                )
        return scale

    def _scale(self, in_force: frozenset[str]) -> FloatArray:
        """Per-share scale of every listed regime binding together."""
        scale = np.ones(self.compiled.shares.nnz)
        for rid in sorted(in_force):
            scale *= self._edge_scale[rid]
        return scale

    def available(self, up: FloatArray, as_of: dt.date) -> FloatArray:
        """``a(P)`` for every provider (``provider_ids`` order) when nodes run at ``up`` and
        every regime in force on ``as_of`` binds."""
        in_force = frozenset(r.id for r in self.graph.regimes.values() if r.in_force(as_of))
        a = self.compiled.evaluate(up, edge_scale=self._scale(in_force))
        return np.asarray(a[self._prov_idx], dtype=np.float64)

    def _in_force_effects_uncached(self, in_force: frozenset[str]) -> tuple[FloatArray, FloatArray]:
        """For a set of regimes in force: (capacity bound now per provider, jurisdictional
        veto per provider x jurisdiction). Cached: many dates share one set."""
        cg = self.compiled
        n = cg.n_nodes
        bound_now = 1.0 - cg.evaluate(np.ones(n), edge_scale=self._scale(in_force))[self._prov_idx]
        columns = []
        for j in self._jurisdictions:
            col = self._country_col.get(j)
            up = 1.0 - self._site_dense[:, col] if col is not None else np.ones(n)
            for rid in sorted(in_force):
                if self.graph.regimes[rid].issuer == j:
                    up = up * (1.0 - self._bound[rid])
            columns.append(up)
        veto = 1.0 - cg.evaluate(np.stack(columns, axis=1))[self._prov_idx]
        return bound_now, veto


def _rank(
    rows: list[tuple[str, list[tuple[str, float]]]], min_impact: float
) -> list[tuple[str, list[tuple[str, float]]]]:
    def key(row: tuple[str, list[tuple[str, float]]]) -> tuple[int, float, str]:
        impacts = [v for _, v in row[1]]
        cut = sum(1 for v in impacts if v >= min_impact - 1e-12)
        return (-cut, -round(math.fsum(impacts) / max(1, len(impacts)), 12), row[0])

    kept = [r for r in rows if max((v for _, v in r[1]), default=0.0) > 0.0]
    return sorted(kept, key=key)
