"""The supply graph compiled into arrays for batched scenario evaluation (METHODS §2).

Nodes are ordered by level (longest supply chain below them, leaves first), so one pass over
the levels evaluates

    a(j) = up(j) * min_{b in B(j)} sum_{i in S(j,b)} s_ijb * a(i)       (a leaf: a = up)

for a whole batch of ``up`` vectors: per level, one sparse product gives every (consumer,
category) segment's supplied fraction and a segment-min (``np.minimum.reduceat``) takes the
AND over each node's categories. Arrays are node-major, shape ``(n_nodes, n_scenarios)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve_triangular

if TYPE_CHECKING:
    from models.graph import SupplyGraph

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class _LevelOp:
    lo: int  # first node of the level
    hi: int  # one past the last node of the level
    shares: sp.csr_matrix  # (segments of the level) x lo: suppliers all sit on lower levels
    starts: IntArray  # first segment of each node of the level, for the segment-min
    data: slice  # where the level's shares sit in the graph-wide ``shares.data``


@dataclass(frozen=True, eq=False)
class CompiledGraph:
    """Arrays for one graph version. Build with :meth:`from_graph` or :meth:`from_arrays`."""

    ids: tuple[str, ...]
    index: Mapping[str, int]
    levels: IntArray  # level of each node (0 = leaf)
    segment_owner: IntArray  # consumer node of each (consumer, category) segment
    segment_category: tuple[str, ...]
    shares: sp.csr_matrix  # segments x nodes: s_ijb
    flow: sp.csr_matrix  # nodes x nodes: M[i, j] = sum_b s_ijb (supplier i -> consumer j)
    countries: tuple[str, ...]
    sites: sp.csr_matrix  # nodes x countries: capacity share of node i in country c
    edge_position: IntArray  # position of each input edge's share in ``shares.data``
    _ops: tuple[_LevelOp, ...]

    @property
    def n_nodes(self) -> int:
        return len(self.ids)

    @classmethod
    def from_graph(cls, graph: SupplyGraph) -> CompiledGraph:
        ids = list(graph.nodes)
        position = {nid: i for i, nid in enumerate(ids)}
        consumers = np.array([position[e.consumer] for e in graph.edges], dtype=np.int64)
        suppliers = np.array([position[e.supplier] for e in graph.edges], dtype=np.int64)
        categories = [e.category for e in graph.edges]
        shares = np.array([e.share for e in graph.edges], dtype=np.float64)
        site_rows = [
            (position[s.node], s.country, s.share) for group in graph.sites.values() for s in group
        ]
        return cls.from_arrays(ids, consumers, suppliers, categories, shares, site_rows)

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[str],
        consumers: IntArray,
        suppliers: IntArray,
        categories: Sequence[str],
        shares: FloatArray,
        site_rows: Sequence[tuple[int, str, float]] = (),
    ) -> CompiledGraph:
        """Compile from edge tables (indices into ``ids``) without building a networkx graph."""
        n = len(ids)
        levels = _levels(n, consumers, suppliers)
        # Order nodes by (level, id): deterministic, and every supplier precedes its consumers.
        order = sorted(range(n), key=lambda i: (int(levels[i]), ids[i]))
        new_of_old = np.empty(n, dtype=np.int64)
        new_of_old[order] = np.arange(n, dtype=np.int64)
        sorted_ids = tuple(ids[i] for i in order)
        levels = levels[order]
        cons = new_of_old[consumers] if len(consumers) else consumers
        sups = new_of_old[suppliers] if len(suppliers) else suppliers

        # One segment per (consumer, category), ordered by consumer then category.
        cat_names = sorted(set(categories))
        cat_code = {c: k for k, c in enumerate(cat_names)}
        codes = np.array([cat_code[c] for c in categories], dtype=np.int64)
        keys = cons * max(1, len(cat_names)) + codes
        seg_keys, segment_of_edge = np.unique(keys, return_inverse=True)
        segment_owner = (seg_keys // max(1, len(cat_names))).astype(np.int64)
        segment_category = tuple(cat_names[int(k) % max(1, len(cat_names))] for k in seg_keys)
        share_matrix = sp.csr_matrix(
            (shares, (segment_of_edge, sups)), shape=(len(seg_keys), n), dtype=np.float64
        )
        share_matrix.sort_indices()
        # (segment, supplier) pairs are unique, so CSR data order is their lexicographic order.
        order_of_edge = np.lexsort((sups, segment_of_edge)) if len(sups) else sups
        edge_position = np.empty(len(sups), dtype=np.int64)
        edge_position[order_of_edge] = np.arange(len(sups), dtype=np.int64)
        flow = sp.csr_matrix((shares, (sups, cons)), shape=(n, n), dtype=np.float64)

        countries = tuple(sorted({c for _, c, _ in site_rows}))
        country_index = {c: k for k, c in enumerate(countries)}
        site_matrix = sp.csr_matrix(
            (
                np.array([s for _, _, s in site_rows], dtype=np.float64),
                (
                    np.array([new_of_old[i] for i, _, _ in site_rows], dtype=np.int64),
                    np.array([country_index[c] for _, c, _ in site_rows], dtype=np.int64),
                ),
            ),
            shape=(n, len(countries)),
        )

        ops: list[_LevelOp] = []
        max_level = int(levels.max()) if n else 0
        node_bounds = np.searchsorted(levels, np.arange(max_level + 2))
        seg_bounds = np.searchsorted(segment_owner, node_bounds)
        for level in range(1, max_level + 1):
            lo, hi = int(node_bounds[level]), int(node_bounds[level + 1])
            s_lo, s_hi = int(seg_bounds[level]), int(seg_bounds[level + 1])
            owners = segment_owner[s_lo:s_hi]
            starts = np.searchsorted(owners, np.arange(lo, hi)).astype(np.int64)
            a, b = int(share_matrix.indptr[s_lo]), int(share_matrix.indptr[s_hi])
            level = sp.csr_matrix(
                (
                    share_matrix.data[a:b],
                    share_matrix.indices[a:b],
                    share_matrix.indptr[s_lo : s_hi + 1] - a,
                ),
                shape=(s_hi - s_lo, lo),
            )
            ops.append(_LevelOp(lo, hi, level, starts, slice(a, b)))

        return cls(
            ids=sorted_ids,
            index={nid: i for i, nid in enumerate(sorted_ids)},
            levels=levels.astype(np.int64),
            segment_owner=segment_owner,
            segment_category=segment_category,
            shares=share_matrix,
            flow=flow,
            countries=countries,
            sites=site_matrix,
            edge_position=edge_position,
            _ops=tuple(ops),
        )

    def evaluate(self, up: FloatArray, edge_scale: FloatArray | None = None) -> FloatArray:
        """Retained capacity of every node under each scenario.

        ``up`` is ``(n_nodes,)`` or ``(n_nodes, n_scenarios)``: the fraction of each node still
        operating. ``edge_scale`` (optional, aligned with ``shares.data``; see
        ``edge_position``) multiplies individual supply shares for every scenario of the
        batch: a regime that binds some deliveries of a supplier but not others. Returns ``a``
        of the same shape as ``up``.
        """
        single = up.ndim == 1
        avail = np.array(up[:, None] if single else up, dtype=np.float64, copy=True)
        if avail.shape[0] != self.n_nodes:
            raise ValueError(f"up has {avail.shape[0]} rows, the graph {self.n_nodes} nodes")
        for op in self._ops:
            shares = op.shares
            if edge_scale is not None:
                shares = sp.csr_matrix(
                    (shares.data * edge_scale[op.data], shares.indices, shares.indptr),
                    shape=shares.shape,
                )
            supplied = shares @ avail[: op.lo]
            avail[op.lo : op.hi] *= np.minimum.reduceat(supplied, op.starts, axis=0)
        return avail[:, 0] if single else avail

    def ones(self, n_scenarios: int) -> FloatArray:
        return np.ones((self.n_nodes, n_scenarios), dtype=np.float64)

    def knockouts(self, nodes: Sequence[int]) -> FloatArray:
        """One scenario per listed node, that node down (``up = 0``), the rest up."""
        up = self.ones(len(nodes))
        up[np.asarray(nodes, dtype=np.int64), np.arange(len(nodes))] = 0.0
        return up

    def country_losses(self) -> FloatArray:
        """One scenario per country (``self.countries``): every site there lost."""
        return np.asarray(1.0 - self.sites.toarray(), dtype=np.float64)

    def flows(self, roots: Sequence[int]) -> FloatArray:
        """Effective sourcing (METHODS §3): ``x_root = 1``, ``x_i = sum_j x_j s_ji``.

        Every input category of a consumer receives its full flow (AND), split over the
        category's suppliers by share (OR). Returns ``(n_nodes, len(roots))``.
        """
        rhs = np.zeros((self.n_nodes, len(roots)), dtype=np.float64)
        rhs[np.asarray(roots, dtype=np.int64), np.arange(len(roots))] = 1.0
        if self.flow.nnz == 0:
            return rhs
        # (I - M) x = e with M strictly upper triangular (suppliers precede consumers).
        system = (sp.identity(self.n_nodes, format="csr") - self.flow).tocsr()
        return np.asarray(spsolve_triangular(system, rhs, lower=False), dtype=np.float64)


def _levels(n: int, consumers: IntArray, suppliers: IntArray) -> IntArray:
    """Longest path from a leaf to each node (Kahn's algorithm over edge arrays)."""
    levels = np.zeros(n, dtype=np.int64)
    if len(consumers) == 0:
        return levels
    pairs = np.unique(np.stack([suppliers, consumers], axis=1), axis=0)
    sup, con = pairs[:, 0], pairs[:, 1]
    indegree = np.bincount(con, minlength=n)
    order = np.argsort(sup, kind="stable")
    sup_sorted, con_by_sup = sup[order], con[order]
    bounds = np.searchsorted(sup_sorted, np.arange(n + 1))
    frontier = np.flatnonzero(indegree == 0)
    seen = 0
    while frontier.size:
        seen += frontier.size
        nxt: list[int] = []
        for node in frontier.tolist():
            for consumer in con_by_sup[bounds[node] : bounds[node + 1]].tolist():
                levels[consumer] = max(levels[consumer], levels[node] + 1)
                indegree[consumer] -= 1
                if indegree[consumer] == 0:
                    nxt.append(consumer)
        frontier = np.array(nxt, dtype=np.int64)
    if seen != n:
        raise ValueError("supply edges form a cycle; the graph must be a DAG")
    return levels
