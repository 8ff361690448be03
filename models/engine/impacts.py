"""The impact model of one graph version: what losing each node, firm, country or regime
does to every provider, at every horizon (METHODS v2 §2, §5).

Everything here depends only on the graph, so it is evaluated once, as batches on the
compiled arrays, when the model is built: single-node, single-firm and single-country
knockouts (site loss and blockade) for every provider, effective sourcing flows and each
regime's bind. Analyses (:mod:`models.analysis`) and the scorer (:mod:`models.scoring`) read
these arrays.

Horizons. Every impact is a curve over :data:`HORIZONS` (4, 13, 26, 52 and 104 weeks) plus
the long run (no buffer hides anything), in that order along the first axis of every
``*_curve`` array. The headline is 13 weeks (one quarter, the procurement planning unit). The
long run is the structural dependence: a node is a single point of failure when losing it
for good cuts the provider's whole supply, whatever the buffers delay.

Country events come in two kinds (:class:`CountryEvent`): a **site loss** (conflict,
disaster) takes out the share of each node's capacity sited in the country; a **blockade**
(or embargo) stops the flow on every edge that crosses the country's border, while domestic
edges go on. A product without sites crosses where its packaging is, a provider where its
data centres are (its home country); see :meth:`SupplyGraph.location`. A node with sites in
and out of the country is split by share: the share inside ships abroad, the rest does not
cross (:meth:`CompiledGraph.border_exposure`).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from sovrisk.models.engine.compiled import EdgeTerm, FloatArray, compile_graph
from sovrisk.models.graph.regimes import RegimeState, regime_state
from sovrisk.models.graph.schema import (
    AGGREGATE_MARKET_TAG,
    DestinationBasis,
    NodeKind,
    Regime,
    RegimeMeasure,
)
from sovrisk.models.graph.series import Alternate
from sovrisk.models.graph.supply_graph import SupplyGraph

#: The reporting horizons in weeks (METHODS v2 §2).
HORIZONS: tuple[float, ...] = (4.0, 13.0, 26.0, 52.0, 104.0)
#: The headline horizon: one quarter, the procurement planning unit.
HEADLINE_HORIZON = 13.0
#: The long run: no buffer hides anything (structural dependence).
LONG_RUN = math.inf
#: The horizons of every ``*_curve`` array, in order along its first axis.
CURVE_HORIZONS: tuple[float, ...] = (*HORIZONS, LONG_RUN)
#: Index of the headline and of the long run in a curve.
HEADLINE = CURVE_HORIZONS.index(HEADLINE_HORIZON)
LONG = len(CURVE_HORIZONS) - 1

#: Impacts at or above this count as a single point of failure (exactly 1 up to rounding).
SPOF_TOLERANCE = 1e-9
#: A near single point of failure: losing the node cuts at least this share of supply.
NEAR_SPOF = 0.95


class CountryEvent(enum.StrEnum):
    """The two kinds of country event (METHODS v2 §2)."""

    SITE_LOSS = "site_loss"
    BLOCKADE = "blockade"


def horizon_index(horizon: float) -> int:
    """Position of ``horizon`` (weeks; ``inf`` = long run) in :data:`CURVE_HORIZONS`."""
    for k, h in enumerate(CURVE_HORIZONS):
        if h == horizon:
            return k
    shown = ", ".join(f"{h:g}" for h in HORIZONS)
    raise ValueError(f"horizon {horizon!r} is not one of {shown} weeks (or the long run)")


def chokepoint_rank(impacts: Sequence[float], min_impact: float) -> tuple[int, float]:
    """(providers cut to ``min_impact`` or more, mean impact): the order of chokepoints in
    ListChokepoints and the reports, most providers cut first, then the deepest."""
    cut = sum(1 for v in impacts if v >= min_impact - 1e-12)
    return cut, (math.fsum(impacts) / len(impacts) if impacts else 0.0)


class ImpactModel:
    """Provider impacts of every node, firm, country and regime of one :class:`SupplyGraph`.

    Arrays named ``*_curve`` have the horizons of :data:`CURVE_HORIZONS` first, then providers
    (``provider_ids`` order), then the knocked-out item.
    """

    def __init__(self, graph: SupplyGraph, alternates: Sequence[Alternate] = ()) -> None:
        self.graph = graph
        #: Qualifiable alternates (METHODS v2 §10), compiled in as entries that ramp in.
        self.alternates = tuple(alternates)
        cg = compile_graph(graph, self.alternates)
        self.compiled = cg
        self.provider_ids = tuple(sorted(p.id for p in graph.providers()))
        self._prow = {pid: k for k, pid in enumerate(self.provider_ids)}
        prov_idx = [cg.index[p] for p in self.provider_ids]
        self._prov_idx = np.asarray(prov_idx, dtype=np.int64)
        #: Compiled row of each provider (``provider_ids`` order).
        self.provider_rows = self._prov_idx
        n = cg.n_nodes

        self.baseline = cg.evaluate(np.ones(n))
        # Node impacts: one batch knocking out every node, per horizon.
        self.node_curve: FloatArray = 1.0 - self.curve(cg.knockouts(range(n)))
        #: Long-run node impacts (providers x nodes): the structural dependence.
        self.node_impact: FloatArray = self.node_curve[LONG]
        # Country impacts of both kinds, one batch each.
        self.country_curve: dict[CountryEvent, FloatArray] = {
            CountryEvent.SITE_LOSS: 1.0 - self.curve(cg.country_losses()),
            CountryEvent.BLOCKADE: 1.0 - self._blockade_curve(),
        }
        #: Headline country impacts of a site loss (providers x countries).
        self.country_impact: FloatArray = self.country_curve[CountryEvent.SITE_LOSS][HEADLINE]
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
        self.firm_curve: FloatArray = 1.0 - self.curve(firm_up)
        #: Long-run firm impacts (providers x firms).
        self.firm_impact: FloatArray = self.firm_curve[LONG]
        self.flows: FloatArray = cg.flows(prov_idx)  # nodes x providers
        self._site_dense = np.asarray(cg.sites.toarray())  # nodes x countries
        # where each node's output is (sites; a chip family at its packaging; a design team or
        # licence at home): the country view of concentration and exposure
        self._location_dense = np.asarray(cg.location.toarray())  # nodes x countries
        self._country_col = {c: k for k, c in enumerate(cg.countries)}
        # Regimes: node-level bound fractions (whatever the destination, for jurisdictional
        # vetoes) and edge-level scales (deliveries to the regime's destinations only). A
        # regime's veto does not depend on the date, so each is evaluated once, for every
        # provider and horizon; the date only decides which of them are in force.
        # A suspension record reaches nothing: its bound is zero and its scale one.
        self._bound = {r.id: self._bound_vector(r) for r in graph.regimes.values()}
        self._edge_scale = {r.id: self._regime_edge_scale(r) for r in graph.regimes.values()}
        self._masked_scale: dict[tuple[str, frozenset[str]], FloatArray] = {}
        self._masked_curve: dict[tuple[str, frozenset[str]], FloatArray] = {}
        self.regime_curve: dict[str, FloatArray] = {
            rid: self._veto_curve(scale) for rid, scale in self._edge_scale.items()
        }
        self._jurisdictions = tuple(
            sorted(set(cg.countries) | {r.issuer for r in graph.regimes.values()})
        )
        # Every sum of buffers along a path is a possible delay: the distinct delays bound the
        # dates at which a standing restriction reaches one more edge (cache keys).
        self._delay_steps = self._path_delays()
        self._standing_state = lru_cache(maxsize=256)(self._standing_state_uncached)
        self._jurisdiction_veto = lru_cache(maxsize=256)(self._jurisdiction_veto_uncached)

    # -- evaluation helpers -----------------------------------------------------------------

    def curve(
        self,
        up: FloatArray,
        *,
        edge_scale: FloatArray | None = None,
        edge_terms: Sequence[EdgeTerm] = (),
    ) -> FloatArray:
        """``a(P)`` for every provider, scenario (column of ``up``) and curve horizon:
        ``(horizons, providers, scenarios)``. One batch per horizon: a horizon only rescales
        the shares, so the plan and the ``up`` columns are shared."""
        cg = self.compiled
        return np.stack(
            [
                cg.evaluate(up, edge_scale, horizon=h, edge_terms=edge_terms)[self._prov_idx]
                for h in CURVE_HORIZONS
            ]
        )

    def _blockade_curve(self, severity: float = 1.0) -> FloatArray:
        """``a(P)`` with each country blockaded in turn (one scenario per country)."""
        cg = self.compiled
        k = len(cg.countries)
        terms = [EdgeTerm(severity * cg.border_exposure(c), np.eye(k)[c]) for c in range(k)]
        return self.curve(np.ones((cg.n_nodes, k)), edge_terms=terms)

    # -- chokepoints ------------------------------------------------------------------------

    def node_chokepoints(
        self, min_impact: float, horizon: float = LONG_RUN
    ) -> list[tuple[str, list[tuple[str, float]]]]:
        """Supply nodes (not providers) with the impact each provider would suffer at
        ``horizon`` (default the long run), ranked by how many providers they cut to
        ``min_impact`` or more, then by mean impact."""
        h = horizon_index(horizon)
        rows = []
        for j, nid in enumerate(self.compiled.ids):
            if self.graph.nodes[nid].kind is NodeKind.PROVIDER:
                continue
            impacts = [
                (p, float(self.node_curve[h, k, j])) for k, p in enumerate(self.provider_ids)
            ]
            rows.append((nid, impacts))
        return _rank(rows, min_impact)

    def firm_nodes(self, firm: str) -> tuple[str, ...]:
        """The nodes ``firm`` owns (aggregate markets and providers excluded)."""
        return self._firm_nodes[firm]

    def firm_chokepoints(
        self, min_impact: float, horizon: float = LONG_RUN
    ) -> list[tuple[str, list[tuple[str, float]]]]:
        h = horizon_index(horizon)
        rows = []
        for f, firm in enumerate(self.firms):
            impacts = [
                (p, float(self.firm_curve[h, k, f])) for k, p in enumerate(self.provider_ids)
            ]
            rows.append((firm, impacts))
        return _rank(rows, min_impact)

    def country_chokepoints(
        self,
        min_impact: float,
        horizon: float = HEADLINE_HORIZON,
        kind: CountryEvent = CountryEvent.SITE_LOSS,
    ) -> list[tuple[str, list[tuple[str, float]]]]:
        """Countries ranked as :meth:`node_chokepoints`, for a site loss (default) or a
        blockade at ``horizon`` (default the headline)."""
        curve = self.country_curve[kind][horizon_index(horizon)]
        rows = []
        for c, iso3 in enumerate(self.compiled.countries):
            impacts = [(p, float(curve[k, c])) for k, p in enumerate(self.provider_ids)]
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

    def _lifted_bound(self, regime_id: str, in_force: frozenset[str]) -> FloatArray:
        """The regime's node-level bound with the nodes its replacers in force reach left to
        them (the jurisdictional veto is destination-blind)."""
        bound = self._bound[regime_id]
        replacers = self.replacers(regime_id, in_force)
        if not replacers:
            return bound
        g, cg = self.graph, self.compiled
        lifted = bound.copy()
        for r in replacers:
            for nid in g.reached_nodes(g.regimes[r]):
                lifted[cg.index[nid]] = 0.0
        return lifted

    def _destination_share(self, regime: Regime, consumer: str) -> float:
        """How much of a consumer's intake a regime's destination list covers: the share of
        its capacity located in the destinations (a provider: its home country); all of it
        when the rule reaches buyers by ownership and the owner is headquartered there."""
        if not regime.destination_countries:
            return 1.0
        node = self.graph.nodes[consumer]
        home = node.hq_country in regime.destination_countries
        if node.kind is NodeKind.PROVIDER:
            return 1.0 if home else 0.0
        if home and regime.destination_basis is DestinationBasis.SITE_OR_OWNER:
            return 1.0
        where = self.graph.location(consumer)
        return math.fsum(where.get(c, 0.0) for c in regime.destination_countries)

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

    def _veto_curve(self, scale: FloatArray) -> FloatArray:
        """``1 - a(P)`` with one regime's deliveries degraded, as a new shock (horizons x
        providers)."""
        ones = np.ones((self.compiled.n_nodes, 1))
        return 1.0 - self.curve(ones, edge_terms=(EdgeTerm(1.0 - scale, np.ones(1)),))[:, :, 0]

    def replacers(self, regime_id: str, in_force: frozenset[str]) -> frozenset[str]:
        """The records in ``in_force`` that replace ``regime_id`` where they reach."""
        regimes = self.graph.regimes
        return frozenset(r for r in in_force if regime_id in regimes[r].replaces)

    def regime_scale(self, regime_id: str, replacers: frozenset[str] = frozenset()) -> FloatArray:
        """Per share: what the regime lets through (``1 - bound(supplier) x destination``).
        Where a record in ``replacers`` reaches the supplier, the destinations it names are
        left to it: the replaced regime keeps only the destinations the replacer does not
        name (METHODS v2 §5: a loosening replaces an earlier severity)."""
        if not replacers:
            return self._edge_scale[regime_id]
        key = (regime_id, replacers)
        if key not in self._masked_scale:
            g, cg = self.graph, self.compiled
            regime = g.regimes[regime_id]
            others = [g.regimes[r] for r in sorted(replacers)]
            bound = self._bound[regime_id]
            scale = np.ones(cg.shares.nnz)
            for e, edge in enumerate(g.edges):
                b = bound[cg.index[edge.supplier]]
                if b <= 0.0:
                    continue
                covered = self._destination_share(regime, edge.consumer)
                supplier = g.nodes[edge.supplier]
                lifted = max(
                    (
                        self._destination_share(r, edge.consumer)
                        for r in others
                        if g.regime_reaches(r, supplier)
                    ),
                    default=0.0,
                )
                scale[cg.edge_position[e]] = 1.0 - b * max(0.0, covered - lifted)
            self._masked_scale[key] = scale
        return self._masked_scale[key]

    def regime_veto_curve(
        self, regime_id: str, replacers: frozenset[str] = frozenset()
    ) -> FloatArray:
        """The regime's veto curve (horizons x providers), replaced where ``replacers`` reach."""
        if not replacers:
            return self.regime_curve[regime_id]
        key = (regime_id, replacers)
        if key not in self._masked_curve:
            self._masked_curve[key] = self._veto_curve(self.regime_scale(regime_id, replacers))
        return self._masked_curve[key]

    def regime_state(
        self, as_of: dt.date, overrides: Sequence[tuple[str, bool]] = ()
    ) -> RegimeState:
        """What binds on ``as_of`` (suspensions, lapses and replacements applied)."""
        return regime_state(self.graph.regimes, as_of, overrides)

    def regime_weeks(
        self, as_of: dt.date, in_force: frozenset[str] | None = None
    ) -> tuple[tuple[str, float], ...]:
        """Weeks each regime in force on ``as_of`` has been in force (``in_force`` overrides
        which ones; a regime held in force before its start date counts as long in force)."""
        state = self.regime_state(as_of)
        regimes = state.in_force if in_force is None else in_force
        weeks = []
        for rid in sorted(regimes):
            # back in force after a lapsed suspension: felt from the day it came back
            start = state.resumed.get(rid, self.graph.regimes[rid].effective_from)
            elapsed = (as_of - start).days / 7.0
            weeks.append((rid, elapsed if elapsed >= 0 else math.inf))
        return tuple(weeks)

    def standing_scale(self, weeks: Sequence[tuple[str, float]]) -> FloatArray:
        """Per-share scale of the regimes in force, each on the deliveries it binds whose
        buffer it has outlasted (``(regime, weeks in force)``; ``inf`` = every one)."""
        scale = np.ones(self.compiled.shares.nnz)
        active = frozenset(rid for rid, _ in weeks)
        for rid, elapsed in sorted(weeks):
            regime_scale = self.regime_scale(rid, self.replacers(rid, active))
            if math.isinf(elapsed):
                scale *= regime_scale
            else:
                scale *= np.where(self.compiled.buffers <= elapsed, regime_scale, 1.0)
        return scale

    def _felt_buffers(self, weeks: Sequence[tuple[str, float]]) -> FloatArray:
        """Per entry, for the standing evaluation: 0 where a regime's bind has reached the
        edge by now, ``inf`` where it has not (so the edge hides it).

        A standing restriction travels downstream along flow edges only, each delaying it by
        its buffer (delays add along a path): installed tools keep producing and products
        already designed keep shipping, so what a standing restriction of a tool maker or a
        licence costs is growth (new tools, new designs), not the installed base's output. A
        new shock (a knockout, a country event, a veto) is different: it passes every edge
        after that edge's buffer (:meth:`curve`)."""
        cg = self.compiled
        felt = np.zeros(cg.shares.nnz, dtype=bool)
        supplier = cg.shares.indices
        for rid, elapsed in sorted(weeks):
            bound = self._bound[rid] > 0.0
            start = np.where(bound, 0.0, np.inf)
            delay = cg.delays(start, cg.flow_entries)
            reached = delay[supplier] + cg.buffers <= elapsed
            felt |= reached & cg.flow_entries
        return np.where(felt, 0.0, np.inf)

    def _path_delays(self) -> FloatArray:
        """Sorted distinct path delays from any regime-bound node (0 included)."""
        cg = self.compiled
        steps = {0.0}
        for bound in self._bound.values():
            start = np.where(bound > 0.0, 0.0, np.inf)
            delay = cg.delays(start, cg.flow_entries)
            arrive = delay[cg.shares.indices] + cg.buffers
            steps.update(float(v) for v in np.unique(arrive[np.isfinite(arrive)]))
        return np.array(sorted(steps), dtype=np.float64)

    def in_force_regimes(self, ids: frozenset[str]) -> frozenset[str]:
        """The listed binding regimes this graph knows."""
        return frozenset(r for r in ids if r in self._edge_scale)

    def in_force(self, as_of: dt.date) -> frozenset[str]:
        """Binding regimes in force on ``as_of``, suspensions applied."""
        return self.regime_state(as_of).in_force

    def available(
        self,
        up: FloatArray,
        as_of: dt.date,
        *,
        horizon: float | None = HEADLINE_HORIZON,
        edge_terms: Sequence[EdgeTerm] = (),
        in_force: frozenset[str] | None = None,
        extra_scale: FloatArray | None = None,
    ) -> FloatArray:
        """``a(P)`` for every provider (``provider_ids`` order) at ``horizon`` weeks when nodes
        run at ``up``, ``edge_terms`` (new shocks to edges, e.g. a blockade) apply and every
        regime in force on ``as_of`` (or the ``in_force`` set given) binds as far as it is
        felt by then. ``extra_scale`` (per entry) is one more standing restriction, e.g. a
        constrained pool's allocation."""
        weeks = self.regime_weeks(as_of, in_force)
        scale = self.standing_scale(weeks)
        if extra_scale is not None:
            scale = scale * extra_scale
        a = self.compiled.evaluate(
            up,
            edge_scale=scale,
            horizon=horizon,
            edge_terms=edge_terms,
            baseline=self.standing_state(weeks),
        )
        return np.asarray(a[self._prov_idx], dtype=np.float64)

    @property
    def jurisdictions(self) -> tuple[str, ...]:
        """Every country with sites and every issuer of a regime (jurisdiction columns)."""
        return self._jurisdictions

    def bound_now(self, weeks: Sequence[tuple[str, float]]) -> FloatArray:
        """Supply bound by the regimes in force (``regime_weeks``), per provider: ``1 - a(P)``
        with their standing scale. Cached by what is felt, so dates that differ only inside
        one buffer step share a result."""
        return np.asarray(1.0 - self.standing_state(weeks)[self._prov_idx], dtype=np.float64)

    def standing_state(self, weeks: Sequence[tuple[str, float]]) -> FloatArray:
        """``a`` of every node under the regimes in force (``regime_weeks``) in the long run:
        the baseline a new shock starts from (``CompiledGraph.evaluate(baseline=...)``)."""
        # Dates whose elapsed weeks fall between the same two path delays feel the same: key
        # the cache by the index of the largest delay each regime has outlasted (-1: inf).
        steps = self._delay_steps
        felt = tuple(
            (rid, -1 if math.isinf(w) else int(np.searchsorted(steps, w, "right")) - 1)
            for rid, w in sorted(weeks)
        )
        return self._standing_state(felt)

    def _standing_state_uncached(self, felt: tuple[tuple[str, int], ...]) -> FloatArray:
        steps = self._delay_steps
        weeks = [(rid, math.inf if k < 0 else float(steps[k])) for rid, k in felt]
        # The standing state is the supply as it runs: qualifiable alternates (a response to
        # a new shock) take no part, as in the standing allocation shortfall.
        scale = self.standing_scale(weeks) * np.where(self.compiled.ramp_entries, 0.0, 1.0)
        a = self.compiled.evaluate(
            np.ones(self.compiled.n_nodes),
            edge_scale=scale,
            horizon=1.0,  # with buffers of 0 (felt) or inf (not yet): felt edges in full
            buffers=self._felt_buffers(weeks),
        )
        a.flags.writeable = False
        return a

    def jurisdiction_veto(self, in_force: frozenset[str]) -> FloatArray:
        """Veto curve of every jurisdiction (horizons x providers x :attr:`jurisdictions`):
        its sites lost and all of its regimes in force binding, as a new shock."""
        return self._jurisdiction_veto(in_force)

    def _jurisdiction_veto_uncached(self, in_force: frozenset[str]) -> FloatArray:
        n = self.compiled.n_nodes
        columns = []
        for j in self._jurisdictions:
            col = self._country_col.get(j)
            up = 1.0 - self._site_dense[:, col] if col is not None else np.ones(n)
            for rid in sorted(in_force):
                regime = self.graph.regimes[rid]
                # An import measure binds the issuer's own buyers, not what its sites make.
                if regime.issuer == j and regime.measure is RegimeMeasure.EXPORT:
                    up = up * (1.0 - self._lifted_bound(rid, in_force))
            columns.append(up)
        return 1.0 - self.curve(np.stack(columns, axis=1))


def _rank(
    rows: list[tuple[str, list[tuple[str, float]]]], min_impact: float
) -> list[tuple[str, list[tuple[str, float]]]]:
    def key(row: tuple[str, list[tuple[str, float]]]) -> tuple[int, float, str]:
        impacts = [v for _, v in row[1]]
        cut = sum(1 for v in impacts if v >= min_impact - 1e-12)
        return (-cut, -round(math.fsum(impacts) / max(1, len(impacts)), 12), row[0])

    kept = [r for r in rows if max((v for _, v in r[1]), default=0.0) > 0.0]
    return sorted(kept, key=key)
