"""The plain reference for retained capacity (METHODS §2), written the obvious way.

One scenario at a time, over a networkx graph: visit the nodes in topological order and set
(the Leontief rule of METHODS v2 §2)

    a(j) = min( up(j), min over categories b of  Σ_{i in S(j,b)} s_ijb × e_ijb(h) )
    e_ijb(h) = scale_ijb × (1 − (1 − a(i)) × max(0, 1 − c_ijb / h))        (a leaf: a = up)

with ``c`` the edge's buffer in weeks and ``h`` the horizon (``None``: the long run, where the
buffer hides nothing) and ``scale`` a standing restriction on the edge (a regime in force).
A qualifiable alternate (METHODS v2 §10) is an extra edge that delivers only what it adds once
qualified: ``s × scale × max(0, 1 − lead / h) × a(i)``, with its lead time in place of a buffer.

No arrays, no batching: it exists so tests and benchmarks can check the compiled engine
(:mod:`models.engine.compiled`) against something a reader can verify line by line.

The graph is a :class:`networkx.MultiDiGraph` with one edge per supply row, supplier ->
consumer, keyed by category and carrying ``share`` and ``buffer`` (a supplier may serve one
consumer in several categories).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

#: (consumer, category, supplier, share), optionally + buffer weeks, optionally + is-alternate
#: (then the weeks are its lead time).
Edge = (
    tuple[str, str, str, float]
    | tuple[str, str, str, float, float]
    | tuple[str, str, str, float, float, bool]
)
EdgeKey = tuple[str, str, str]  # (consumer, category, supplier)


class ReferenceGraph:
    """A supply graph as a networkx MultiDiGraph, evaluated one scenario at a time."""

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        self.graph = graph

    @classmethod
    def from_edges(cls, ids: Iterable[str], edges: Iterable[Edge]) -> ReferenceGraph:
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(ids)
        for edge in edges:
            consumer, category, supplier, share = edge[:4]
            buffer = edge[4] if len(edge) > 4 else 0.0
            ramp = bool(edge[5]) if len(edge) > 5 else False
            graph.add_edge(
                supplier,
                consumer,
                key=(category, ramp),
                category=category,
                share=share,
                buffer=buffer,
                ramp=ramp,
            )
        return cls(graph)

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[str],
        consumers: npt.NDArray[np.integer[Any]],
        suppliers: npt.NDArray[np.integer[Any]],
        categories: Sequence[str],
        shares: npt.NDArray[np.floating[Any]],
        buffers: npt.NDArray[np.floating[Any]] | None = None,
        ramp: npt.NDArray[np.bool_] | None = None,
    ) -> ReferenceGraph:
        """The same inputs as :meth:`models.engine.compiled.CompiledGraph.from_arrays`."""
        weeks = np.zeros(len(shares)) if buffers is None else np.asarray(buffers, np.float64)
        ramps = np.zeros(len(shares), dtype=bool) if ramp is None else np.asarray(ramp, bool)
        edges = zip(
            (ids[c] for c in np.asarray(consumers).tolist()),
            categories,
            (ids[s] for s in np.asarray(suppliers).tolist()),
            np.asarray(shares, dtype=np.float64).tolist(),
            weeks.tolist(),
            ramps.tolist(),
            strict=True,
        )
        return cls.from_edges(ids, edges)

    @cached_property
    def order(self) -> list[str]:
        """A topological order (suppliers first), computed once."""
        return list(nx.topological_sort(self.graph))

    def evaluate(
        self,
        up: Mapping[str, float],
        edge_scale: Mapping[EdgeKey, float] | None = None,
        horizon: float | None = None,
    ) -> dict[str, float]:
        """Retained capacity of every node for one scenario, at ``horizon`` weeks.

        ``up`` maps every node id to its operating fraction; ``edge_scale`` (optional) maps
        ``(consumer, category, supplier)`` to a factor on what that edge delivers (missing: 1).
        """
        a: dict[str, float] = {}
        for node in self.order:
            supplied: dict[str, float] = {}
            for supplier, _, data in self.graph.in_edges(node, data=True):
                category = data["category"]
                scale = 1.0
                if edge_scale is not None and not data["ramp"]:
                    scale = edge_scale.get((node, category, supplier), 1.0)
                felt = 1.0  # the share of the supplier's loss the buffer does not hide
                if horizon is not None and not math.isinf(horizon):
                    felt = max(0.0, 1.0 - data["buffer"] / horizon)
                if data["ramp"]:  # an alternate: what it adds once qualified
                    delivered = felt * a[supplier]
                else:
                    delivered = scale * (1.0 - (1.0 - a[supplier]) * felt)
                supplied[category] = supplied.get(category, 0.0) + data["share"] * delivered
            a[node] = min(up[node], *supplied.values()) if supplied else up[node]
        return a


def reference_evaluate(
    ids: Sequence[str],
    edges: Iterable[Edge],
    up: Mapping[str, float],
    edge_scale: Mapping[EdgeKey, float] | None = None,
    horizon: float | None = None,
) -> dict[str, float]:
    """One-shot convenience: build the networkx graph and evaluate one scenario."""
    return ReferenceGraph.from_edges(ids, edges).evaluate(up, edge_scale, horizon)
