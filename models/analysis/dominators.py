"""Single points of failure of every node at once, from one pass over the levels.

A node ``d`` is a single point of failure (SPOF) of ``v`` when losing ``d`` for good cuts
``v``'s whole supply (long-run impact 1; :mod:`models.engine.impacts`). Checking every
candidate with its own knockout costs one graph evaluation per node: quadratic in the graph.
Here the answer for every node comes from one sweep, leaves first, over the sets

    K(v) = {v}  ∪  ⋃_{categories b of v}  ⋂_{suppliers i of b}  K(i)

(the capacity rule of METHODS v2 §2 in the long run: ``v`` is lost when any of its input
categories is lost (AND), and a category when every one of its suppliers is (OR); a partial
supply is never a total loss). ``K(v)`` holds ``v`` and its SPOFs. On a graph where every
node has one input category this is exactly the **dominator tree** of the supply DAG rooted
at the raw materials (``K(v)`` is ``v``'s chain of dominators: tested against
``networkx.immediate_dominators``); the union over categories generalises it to AND/OR
graphs. Work is the total size of the sets touched, memory the sets alive: each set is
dropped once its last consumer is done, and a set too large to be useful is capped (below).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovrisk.models.engine.compiled import CompiledGraph, IntArray

#: A node whose SPOF set would exceed this many nodes keeps only the cap's worth, flagged
#: ``truncated``: a chain that long is a single thread through the whole graph, and the
#: caller is told rather than given a partial list as if complete.
MAX_SET = 100_000


@dataclass(frozen=True, slots=True)
class SinglePoints:
    """The SPOFs of the requested roots (public indices), each sorted, without the root."""

    roots: IntArray
    spofs: tuple[IntArray, ...]
    truncated: tuple[bool, ...]

    def of(self, k: int) -> IntArray:
        return self.spofs[k]


def single_points_of_failure(graph: CompiledGraph, roots: IntArray) -> SinglePoints:
    """SPOFs of each node of ``roots`` (public indices into ``graph.ids``)."""
    roots = np.asarray(roots, dtype=np.int64)
    n = graph.n_nodes
    shares = graph.shares
    owner = graph.segment_owner
    # only the roots' supply trees matter; the sweep visits them leaves first
    needed = np.zeros(n, dtype=bool)
    needed[graph.ancestors(roots)] = True
    needed[roots] = True
    order = np.flatnonzero(needed)
    order = order[np.argsort(graph.levels[order], kind="stable")]
    # segments of each node, and how many consumers still need each node's set
    seg_order = np.argsort(owner, kind="stable")
    seg_start = np.searchsorted(owner[seg_order], np.arange(n + 1))
    indptr, indices = shares.indptr, shares.indices
    pending = np.zeros(n, dtype=np.int64)
    consumer_entries = np.repeat(owner, np.diff(indptr))
    alive = needed[consumer_entries]
    np.add.at(pending, indices[alive], 1)
    is_root = np.zeros(n, dtype=bool)
    is_root[roots] = True

    sets: dict[int, frozenset[int]] = {}
    capped: set[int] = set()
    for v in order.tolist():
        lost: set[int] = {v}
        for s in seg_order[seg_start[v] : seg_start[v + 1]].tolist():
            suppliers = indices[indptr[s] : indptr[s + 1]].tolist()
            if not suppliers:
                continue
            common = set(sets[suppliers[0]])
            for i in suppliers[1:]:
                if not common:
                    break
                common &= sets[i]
            lost |= common
            if any(i in capped for i in suppliers):
                capped.add(v)
        if len(lost) > MAX_SET:
            lost = set(sorted(lost)[:MAX_SET])
            capped.add(v)
        sets[v] = frozenset(lost)
        # a supplier's set is dropped once every consumer in the trees has read it
        for s in seg_order[seg_start[v] : seg_start[v + 1]].tolist():
            for i in indices[indptr[s] : indptr[s + 1]].tolist():
                pending[i] -= 1
                if pending[i] == 0 and not is_root[i]:
                    sets.pop(i, None)
    spofs = tuple(np.array(sorted(sets[r] - {r}), dtype=np.int64) for r in roots.tolist())
    return SinglePoints(roots, spofs, tuple(r in capped for r in roots.tolist()))
