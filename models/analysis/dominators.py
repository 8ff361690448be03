"""Single points of failure of every node at once, from one pass over the levels.

A node ``d`` is a single point of failure (SPOF) of ``v`` when losing ``d`` for good cuts
``v``'s whole supply (long-run availability exactly 0; :mod:`models.engine.impacts`).
Checking every candidate with its own knockout costs one graph evaluation per node: quadratic
in the graph. Here the answer for every node comes from one sweep, suppliers first, over

    K(v) = {v}  ∪  ⋃_{categories b of v}  ⋂_{suppliers i of b, share > 0}  K(i)

(the capacity rule of METHODS v2 §2 in the long run: ``v`` is lost when any of its input
categories is lost (AND), and a category when every supplier it draws a positive share from
is (OR); a partial supply is never a total loss). ``K(v)`` holds ``v`` and its SPOFs. On a
graph where every node has one input category this is exactly the **dominator tree** of the
supply DAG rooted at the raw materials (tested against ``networkx.immediate_dominators``);
the union over categories generalises it to AND/OR graphs.

The sets are never copied. SPOF-hood is transitive (``d ∈ K(v)`` implies ``K(d) ⊆ K(v)``),
so each node keeps only its **generators**, the few nodes whose sets make up the rest of its
own, ``K(v) = {v} ∪ ⋃_g K(g)``: the immediate dominator on an OR graph, a few per category
on an AND/OR one. A category's intersection is a walk down from its suppliers
through the generators, highest node first (public indices are topological: suppliers come
first), marking which side reached each node; a node both sides reach is common, with all of
its set, and the walk ends once either side has nothing left to offer. On a tree that is the
lowest-common-ancestor walk of Cooper, Harvey and Kennedy. A chain of a million nodes costs a
million steps (the set-copying sweep it replaces is quadratic: 4.6 s for a chain of 20k,
about two minutes at 100k); the steps are counted
against a budget so that no graph's shape makes the sweep unbounded: past it the result says
so (``complete=False``) rather than guessing. A provider's set is expanded from its
generators only at the end.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.compiled import CompiledGraph, IntArray

#: SPOFs listed per root at most (``counts`` stays exact): a longer list is a single thread
#: through the graph, and the caller is told (``truncated``) rather than handed all of it.
MAX_SET = 100_000
#: Walk steps (heap pops) of one sweep at most, under a microsecond each (~17 s in all).
#: The synthetic layered graph of a million nodes takes under 2 million; only adversarial
#: shapes (many consumers, each dual-sourcing from its own pair of nodes above two long,
#: separate chains) come near it.
DEFAULT_STEPS = 20_000_000
#: Intersections of two suppliers' sets remembered (consumers often dual-source from the
#: same pair); the memo is cleared when it reaches this size.
PAIR_MEMO = 1 << 17
#: Nodes swept between cancellation checks.
CHECK_EVERY = 4096


@dataclass(frozen=True, slots=True)
class SinglePoints:
    """The SPOFs of the requested roots (public indices), each sorted, without the root.

    ``complete`` False: the step budget ended the sweep, and no root's list is known (each is
    empty, its count 0). ``truncated[k]``: root ``k`` has more than :data:`MAX_SET` SPOFs, of
    which the lowest-indexed are listed; ``counts[k]`` is the exact number either way.
    """

    roots: IntArray
    spofs: tuple[IntArray, ...]
    counts: tuple[int, ...]
    truncated: tuple[bool, ...]
    complete: bool
    steps: int

    def of(self, k: int) -> IntArray:
        return self.spofs[k]


class _OutOfSteps(Exception):
    pass


class _Walker:
    """The generators of every node swept so far, and the steps spent."""

    def __init__(self, n: int, budget: int) -> None:
        self.gens: list[tuple[int, ...]] = [()] * n
        self.steps = 0
        self.budget = budget
        self._pairs: dict[tuple[int, int], list[int]] = {}

    def meet_pair(self, a: int, b: int) -> list[int]:
        """Generators of ``K(a) ∩ K(b)``, remembered."""
        key = (a, b) if a < b else (b, a)
        if not self.gens[key[1]]:  # K(high) = {high}, and K(low) holds nothing above low
            return []
        found = self._pairs.get(key)
        if found is None:
            if len(self._pairs) >= PAIR_MEMO:
                self._pairs.clear()
            found = self._pairs[key] = self.meet([a], [b])
        return found

    def meet(self, a: list[int], b: list[int]) -> list[int]:
        """Generators of ``up(a) ∩ up(b)``, where ``up(x)`` is the union of ``K`` over ``x``.

        Bit 1 marks a node reached from ``a``, bit 2 from ``b``; a node is popped only after
        every node above it (generators point to lower indices), so its mark is final.
        """
        mark: dict[int, int] = {}
        heap: list[int] = []  # negated indices: the highest node first
        side = [0, 0, 0]  # nodes in the heap whose mark has bit 1, bit 2 (index 1, 2)
        for bit, nodes in ((1, a), (2, b)):
            for u in nodes:
                self._reach(u, bit, mark, heap, side)
        common: list[int] = []
        gens = self.gens
        while heap and side[1] and side[2]:
            u = -heapq.heappop(heap)
            m = mark.pop(u)
            side[1] -= m & 1
            side[2] -= m >> 1
            self.steps += 1
            if m == 3:  # reached from both: u and all of K(u) are common
                common.append(u)
                continue
            for g in gens[u]:
                self._reach(g, m, mark, heap, side)
        if self.steps > self.budget:
            raise _OutOfSteps
        return common

    @staticmethod
    def _reach(u: int, m: int, mark: dict[int, int], heap: list[int], side: list[int]) -> None:
        old = mark.get(u)
        if old is None:
            mark[u] = m
            heapq.heappush(heap, -u)
            side[1] += m & 1
            side[2] += m >> 1
        elif old | m != old:
            new = old | m
            mark[u] = new
            side[1] += (new & 1) - (old & 1)
            side[2] += (new >> 1) - (old >> 1)

    def expand(self, root: int) -> list[int]:
        """``K(root)`` without the root, sorted."""
        seen = {root}
        stack = [root]
        gens = self.gens
        while stack:
            for g in gens[stack.pop()]:
                if g not in seen:
                    seen.add(g)
                    stack.append(g)
            self.steps += 1
        seen.discard(root)
        return sorted(seen)


def single_points_of_failure(
    graph: CompiledGraph, roots: IntArray, *, budget: int = DEFAULT_STEPS
) -> SinglePoints:
    """SPOFs of each node of ``roots`` (public indices into ``graph.ids``), within ``budget``
    walk steps."""
    roots = np.asarray(roots, dtype=np.int64)
    n = graph.n_nodes
    shares = graph.shares
    owner = graph.segment_owner
    # only the roots' supply trees matter; public order is topological (suppliers first)
    order = _supply_trees(graph, roots)
    # the positive-share suppliers of each node's segments, in one flat array: node v's
    # segments are ranks seg_start[v]..seg_start[v + 1], segment r's suppliers
    # flat[seg_ptr[r] : seg_ptr[r + 1]] (a zero-share supplier supplies nothing: its loss
    # cannot matter)
    n_seg = len(owner)
    seg_order = np.argsort(owner, kind="stable")
    rank = np.empty(n_seg, dtype=np.int64)
    rank[seg_order] = np.arange(n_seg, dtype=np.int64)
    entry_rank = np.repeat(rank, np.diff(shares.indptr))
    positive = np.flatnonzero(shares.data > 0)
    positive = positive[np.argsort(entry_rank[positive], kind="stable")]
    flat = shares.indices[positive]
    seg_ptr = np.zeros(n_seg + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_rank[positive], minlength=n_seg), out=seg_ptr[1:])
    seg_start = np.searchsorted(owner[seg_order], np.arange(n + 1))
    walker = _Walker(n, budget)
    try:
        for count, v in enumerate(order.tolist()):
            if count % CHECK_EVERY == 0:
                checkpoint()
            first, last = int(seg_start[v]), int(seg_start[v + 1])
            if first == last:
                continue  # a raw material: K(v) = {v}
            bounds = seg_ptr[first : last + 1].tolist()
            supplied = flat[bounds[0] : bounds[-1]].tolist()
            base = bounds[0]
            found: list[int] = []
            for lo, hi in itertools.pairwise(bounds):
                suppliers = supplied[lo - base : hi - base]
                if not suppliers:
                    continue
                common = suppliers[:1]
                for i in suppliers[1:]:
                    common = (
                        walker.meet_pair(common[0], i)
                        if len(common) == 1
                        else walker.meet(common, [i])
                    )
                    if not common:
                        break
                found.extend(common)
            walker.gens[v] = tuple(dict.fromkeys(found))
        listed = [walker.expand(r) for r in roots.tolist()]
        if walker.steps > budget:
            raise _OutOfSteps
    except _OutOfSteps:
        empty = np.zeros(0, dtype=np.int64)
        k = len(roots)
        return SinglePoints(roots, (empty,) * k, (0,) * k, (False,) * k, False, walker.steps)
    return SinglePoints(
        roots,
        tuple(np.array(s[:MAX_SET], dtype=np.int64) for s in listed),
        tuple(len(s) for s in listed),
        tuple(len(s) > MAX_SET for s in listed),
        True,
        walker.steps,
    )


def _supply_trees(graph: CompiledGraph, roots: IntArray) -> IntArray:
    """Every node the roots draw on, the roots included, ascending: one breadth-first search
    from a virtual node over every root (graph.ancestors works level by level, and a chain of
    100k levels took it 3.7 s)."""
    n = graph.n_nodes
    if len(roots) == 0:
        return np.zeros(0, dtype=np.int64)
    shares = graph.shares
    consumer = np.repeat(graph.segment_owner, np.diff(shares.indptr))
    rows = np.concatenate([consumer, np.full(len(roots), n, dtype=np.int64)])
    cols = np.concatenate([shares.indices.astype(np.int64), roots])
    ones = np.ones(len(rows), dtype=np.float32)  # duplicates add up; never to 0
    adjacency = sp.csr_matrix((ones, (rows, cols)), shape=(n + 1, n + 1))
    reached = breadth_first_order(adjacency, n, directed=True, return_predecessors=False)
    return np.sort(reached[reached != n]).astype(np.int64)
