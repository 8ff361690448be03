"""The plain reference for retained capacity (METHODS §2), written the obvious way.

One scenario at a time, over a networkx graph: visit the nodes in topological order and set

    a(j) = up(j) × min over categories b of  Σ_{i in S(j,b)} s_ijb × a(i)     (a leaf: a = up)

No arrays, no batching: it exists so tests and benchmarks can check the compiled engine
(:mod:`models.engine.compiled`) against something a reader can verify line by line.

The graph is a :class:`networkx.MultiDiGraph` with one edge per supply row, supplier ->
consumer, keyed by category and carrying ``share`` (a supplier may serve one consumer in
several categories).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

Edge = tuple[str, str, str, float]  # (consumer, category, supplier, share)
EdgeKey = tuple[str, str, str]  # (consumer, category, supplier)


class ReferenceGraph:
    """A supply graph as a networkx MultiDiGraph, evaluated one scenario at a time."""

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        self.graph = graph

    @classmethod
    def from_edges(cls, ids: Iterable[str], edges: Iterable[Edge]) -> ReferenceGraph:
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(ids)
        for consumer, category, supplier, share in edges:
            graph.add_edge(supplier, consumer, key=category, share=share)
        return cls(graph)

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[str],
        consumers: npt.NDArray[np.integer[Any]],
        suppliers: npt.NDArray[np.integer[Any]],
        categories: Sequence[str],
        shares: npt.NDArray[np.floating[Any]],
    ) -> ReferenceGraph:
        """The same inputs as :meth:`models.engine.compiled.CompiledGraph.from_arrays`."""
        edges = zip(
            (ids[c] for c in np.asarray(consumers).tolist()),
            categories,
            (ids[s] for s in np.asarray(suppliers).tolist()),
            np.asarray(shares, dtype=np.float64).tolist(),
            strict=True,
        )
        return cls.from_edges(ids, edges)

    @cached_property
    def order(self) -> list[str]:
        """A topological order (suppliers first), computed once."""
        return list(nx.topological_sort(self.graph))

    def evaluate(
        self, up: Mapping[str, float], edge_scale: Mapping[EdgeKey, float] | None = None
    ) -> dict[str, float]:
        """Retained capacity of every node for one scenario.

        ``up`` maps every node id to its operating fraction; ``edge_scale`` (optional) maps
        ``(consumer, category, supplier)`` to a factor on that share (missing: 1).
        """
        a: dict[str, float] = {}
        for node in self.order:
            supplied: dict[str, float] = {}
            for supplier, _, category, share in self.graph.in_edges(node, keys=True, data="share"):
                scale = (
                    1.0 if edge_scale is None else edge_scale.get((node, category, supplier), 1.0)
                )
                supplied[category] = supplied.get(category, 0.0) + share * scale * a[supplier]
            if supplied:
                a[node] = up[node] * min(supplied.values())
            else:
                a[node] = up[node]
        return a


def reference_evaluate(
    ids: Sequence[str],
    edges: Iterable[Edge],
    up: Mapping[str, float],
    edge_scale: Mapping[EdgeKey, float] | None = None,
) -> dict[str, float]:
    """One-shot convenience: build the networkx graph and evaluate one scenario."""
    return ReferenceGraph.from_edges(ids, edges).evaluate(up, edge_scale)
