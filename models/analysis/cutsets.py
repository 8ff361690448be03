"""Minimal cut sets of size <= 2 per provider (METHODS §2).

A cut set of provider P is a set of supply nodes whose joint loss (``up = 0``) drives the
retained capacity ``a(P)`` below a threshold (default 0.5). It is minimal when no proper subset
is itself a cut. The search is pruned and batched:

- **singletons** come straight from the engine's node impacts: ``{v}`` is a cut when
  ``a(P | v) = 1 - I_P(v) < threshold``;
- **pairs** are drawn only from P's supply tree (nodes with ``I_P(v) > 0``; a node outside the
  tree cannot change ``a(P)``, alone or with another) minus the singleton cuts, so every pair
  found is minimal by construction;
- the candidate pairs of **all** providers are evaluated together: one node-major ``up`` matrix
  with two zeros per column, in as few :meth:`CompiledGraph.evaluate` calls as the batch size
  allows, and each provider reads its own row.

A set is a cut when ``a(P | set) < threshold - CUT_TOLERANCE`` (strictly below, up to rounding).
Aggregate-market nodes (tag ``aggregate_market``) are kept but flagged: losing a whole
commodity market is a country or regime event rather than a firm failure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.errors import FieldViolation, InvalidParameterError, NotFoundError
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, NodeKind

if TYPE_CHECKING:
    from sovrisk.models.engine.impacts import ImpactModel

DEFAULT_CUT_THRESHOLD = 0.5
#: ``a(P | set)`` must be below the threshold by more than this to count (rounding).
CUT_TOLERANCE = 1e-9
#: Scenario columns per ``evaluate`` call (memory: n_nodes x batch floats).
DEFAULT_BATCH_SIZE = 8192


@dataclass(frozen=True, slots=True)
class CutSet:
    """A minimal set of nodes whose joint loss leaves ``retained`` of the provider's supply."""

    nodes: tuple[str, ...]  # sorted ids
    retained: float  # a(P | every node of the set down)
    aggregate_market: bool  # some member is an aggregate-market node
    aggregate_members: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True, slots=True)
class ProviderCutSets:
    """One provider's minimal cut sets of size <= 2, riskiest first."""

    provider: str
    threshold: float
    cut_sets: tuple[CutSet, ...]  # ranked by retained, then size, then names
    singletons: int
    pairs: int
    candidates: int  # tree nodes that are not singleton cuts (the pair search space)
    pairs_evaluated: int  # candidate pairs of this provider

    @property
    def top_singleton(self) -> CutSet | None:
        return next((c for c in self.cut_sets if c.size == 1), None)

    @property
    def top_pair(self) -> CutSet | None:
        return next((c for c in self.cut_sets if c.size == 2), None)


@dataclass(frozen=True, slots=True)
class CutSetResult:
    threshold: float
    providers: tuple[ProviderCutSets, ...]  # in the engine's provider order (by id)
    pair_scenarios: int  # distinct pairs evaluated for all providers together
    evaluate_calls: int

    def provider(self, provider_id: str) -> ProviderCutSets:
        for row in self.providers:
            if row.provider == provider_id:
                return row
        raise NotFoundError("provider", provider_id)


def minimal_cut_sets(
    engine: ImpactModel,
    threshold: float = DEFAULT_CUT_THRESHOLD,
    providers: Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CutSetResult:
    """Minimal cut sets of size 1 and 2 for each provider (all of them by default).

    ``threshold`` in (0, 1]: a set is a cut when it leaves ``a(P) < threshold``.
    """
    violations = []
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        violations.append(FieldViolation("threshold", str(threshold), "must be in (0, 1]"))
    if batch_size < 1:
        violations.append(FieldViolation("batch_size", str(batch_size), "must be >= 1"))
    if violations:
        raise InvalidParameterError(violations)
    wanted = list(engine.provider_ids) if providers is None else list(dict.fromkeys(providers))
    for pid in wanted:
        if pid not in engine.provider_ids:
            raise NotFoundError("provider", pid)
    graph, cg = engine.graph, engine.compiled
    rows = np.array([engine.provider_ids.index(p) for p in wanted], dtype=np.int64)
    prov_nodes = np.array([cg.index[p] for p in wanted], dtype=np.int64)
    impact = engine.node_impact[rows]  # wanted providers x nodes
    supply = np.array(
        [graph.nodes[nid].kind is not NodeKind.PROVIDER for nid in cg.ids], dtype=bool
    )
    in_tree = (impact > 0.0) & supply[None, :]
    single = in_tree & (1.0 - impact < threshold - CUT_TOLERANCE)
    candidate = in_tree & ~single

    # Pairs wanted by at least one provider, over the union of candidate nodes.
    union = np.flatnonzero(candidate.any(axis=0))
    iu, iv = np.triu_indices(len(union), k=1)
    us, vs = union[iu], union[iv]
    needed = (candidate[:, us] & candidate[:, vs]).any(axis=0)
    us, vs = us[needed], vs[needed]
    retained = np.empty((len(wanted), len(us)))
    calls = 0
    for lo in range(0, len(us), batch_size):
        checkpoint()
        hi = min(len(us), lo + batch_size)
        cols = np.arange(hi - lo)
        up = cg.ones(hi - lo)
        up[us[lo:hi], cols] = 0.0
        up[vs[lo:hi], cols] = 0.0
        retained[:, lo:hi] = cg.evaluate(up)[prov_nodes]
        calls += 1

    market = {nid for nid in cg.ids if AGGREGATE_MARKET_TAG in graph.nodes[nid].tags}
    results = []
    for r, pid in enumerate(wanted):
        cuts = [
            _cut((cg.ids[j],), 1.0 - float(impact[r, j]), market)
            for j in np.flatnonzero(single[r]).tolist()
        ]
        mine = candidate[r, us] & candidate[r, vs]
        hits = mine & (retained[r] < threshold - CUT_TOLERANCE)
        cuts += [
            _cut((cg.ids[int(us[c])], cg.ids[int(vs[c])]), float(retained[r, c]), market)
            for c in np.flatnonzero(hits).tolist()
        ]
        cuts.sort(key=lambda c: (round(c.retained, 12), c.size, c.nodes))
        n_single = sum(1 for c in cuts if c.size == 1)
        results.append(
            ProviderCutSets(
                provider=pid,
                threshold=threshold,
                cut_sets=tuple(cuts),
                singletons=n_single,
                pairs=len(cuts) - n_single,
                candidates=int(candidate[r].sum()),
                pairs_evaluated=int(mine.sum()),
            )
        )
    return CutSetResult(
        threshold=threshold,
        providers=tuple(results),
        pair_scenarios=len(us),
        evaluate_calls=calls,
    )


def _cut(nodes: tuple[str, ...], retained: float, market: set[str]) -> CutSet:
    ordered = tuple(sorted(nodes))
    members = tuple(n for n in ordered if n in market)
    return CutSet(
        nodes=ordered,
        retained=max(0.0, retained),
        aggregate_market=bool(members),
        aggregate_members=members,
    )
