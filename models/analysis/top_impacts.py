"""The K nodes whose loss costs each provider most, without a knockout per node.

Every node ``d`` gets an upper bound on the long-run loss of root ``p`` when ``d`` is knocked
out (:func:`loss_bounds`) and a lower one, its strongest single supply path
(:func:`loss_floors`). Candidates are evaluated exactly (batched knockouts on the compiled
arrays): the strongest paths first, then in order of the upper bound; the search stops for a
root once no bound left can beat its K-th exact loss, and the result is the exact top K. A
budget caps the exact evaluations (:func:`knockout_budget`); a root that reaches it before
its search ends gets its best K found so far, flagged ``exact=False``, with the bound that
the rest cannot exceed.

The upper bound. A knockout's loss travels up the levels as ``l(v) = max_b sum_i s_bi l(i)``
(a node is short by its worst input category, AND; a category by its suppliers'
share-weighted losses, OR). That map is convex and positively homogeneous, hence
subadditive, so splitting ``d``'s loss over its consumer edges gives
``l_p(d) <= sum_{edges d -> v} s * l_p(v)``, and ``l_p(v) <= 1``. Top-down from ``p``:
``B(p) = 1``, ``B(d) = min(1, sum s * B(v))``. Without the ``min`` this is the
effective-sourcing share ``x_p(d)`` (METHODS §3; :meth:`CompiledGraph.flows`), the bound this
search first used: the ``min`` halves the knockouts at 100k nodes / 8 levels (933 to 421).
Neither proves much on a graph many levels deep: the paths of every AND branch add up, and
at 30 levels both bounds are 1 for almost every node, so nothing is ruled out (in bound order
the search ran into its 65,536-knockout budget, 210 s at 100k nodes, and its list held none
of the real top 10 on smaller such graphs). There the search ends at its budget, and starting
from the strongest single paths is what makes its list worth having. Shares that sum to 1
only within the edge table's tolerance are allowed for: the cap becomes
``max(1, sigma)^depth`` (``sigma`` the largest category sum) and the root's loss with
nothing knocked out is added.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.compiled import CompiledGraph, FloatArray, IntArray

#: Knockouts evaluated per round (one batch of scenarios on the compiled arrays).
ROUND = 512
#: Knockout scenarios built at a time: ``nodes x KNOCKOUT_BATCH`` floats (256 MB at 1M
#: nodes; a whole round at once was 4 GB).
KNOCKOUT_BATCH = 32
#: Most knockouts evaluated in one search, over all roots.
DEFAULT_BUDGET = 65_536
#: Knockouts times graph entries one search may spend (about 8 ns each: ~30 s), so the
#: budget shrinks as the graph grows (:func:`knockout_budget`).
KNOCKOUT_WORK = 4_000_000_000
#: Candidates per root evaluated first in order of their single-path loss (``floors``).
SEED_FACTOR = 4


@dataclass(frozen=True, slots=True)
class TopImpacts:
    """Per root: the nodes (public indices) and their exact long-run losses, largest first;
    ``exact`` False when the budget ended the search (then no other node loses more than
    ``unexamined_bound``)."""

    nodes: IntArray
    losses: FloatArray
    exact: bool
    unexamined_bound: float
    evaluated: int


def loss_bounds(graph: CompiledGraph, roots: IntArray) -> FloatArray:
    """``(n_nodes, len(roots))``: for each node, an upper bound on each root's long-run loss
    when the node is knocked out (module docstring); 0 outside the root's supply tree, 1 at
    the root."""
    roots = np.asarray(roots, dtype=np.int64)
    shares = graph.shares
    sums = np.asarray(shares.sum(axis=1)).ravel() if shares.nnz else np.ones(1)
    sigma = max(1.0, float(sums.max()))
    cap = math.exp(min(700.0, graph.depth * math.log(sigma)))
    bound = _top_down(graph, roots, np.add, cap)
    if sigma > 1.0 or float(sums.min()) < 1.0:  # the roots' loss with nothing knocked out
        intact = graph.evaluate_rows(iter([graph.ones(1)]), roots)[:, 0]
        deficit = np.clip(1.0 - intact, 0.0, 1.0)
        bound = np.where(bound > 0, bound + deficit[None, :], 0.0)
    return np.minimum(bound, 1.0)


def loss_floors(graph: CompiledGraph, roots: IntArray) -> FloatArray:
    """``(n_nodes, len(roots))``: the loss each node's knockout passes to each root along its
    single strongest path (the largest product of shares): a lower bound on the loss when the
    shares sum to 1, since a node loses at least each category's share-weighted loss. Used
    only to choose which candidates to evaluate first, never to rule one out."""
    return _top_down(graph, np.asarray(roots, dtype=np.int64), np.maximum, 1.0)


#: Entries of one level combined at a time (``entries x roots`` floats).
_SLAB = 1 << 22


def _top_down(graph: CompiledGraph, roots: IntArray, combine: np.ufunc, cap: float) -> FloatArray:
    """``value(root) = 1`` in the root's column; level by level downwards, each supplier's
    value is ``min(cap, combine over its consumer entries of share * value(consumer))``
    (every consumer sits on a higher level, so its value is final)."""
    n, r = graph.n_nodes, len(roots)
    value = np.zeros((n, r), dtype=np.float64)
    value[roots, np.arange(r)] = 1.0
    shares = graph.shares
    if shares.nnz == 0 or r == 0:
        return value
    owner = np.repeat(graph.segment_owner, np.diff(shares.indptr))
    supplier = shares.indices.astype(np.int64)
    share = np.asarray(shares.data, dtype=np.float64)
    level = graph.levels[supplier]
    order = np.lexsort((supplier, -level))  # top level first, each supplier's entries together
    owner, supplier, share, level = owner[order], supplier[order], share[order], level[order]
    new_group = np.concatenate([[True], supplier[1:] != supplier[:-1]])
    level_starts = np.flatnonzero(np.concatenate([[True], level[1:] != level[:-1], [True]]))
    is_root = np.zeros(n, dtype=bool)
    is_root[roots] = True
    slab = max(1, _SLAB // r)
    for lo, hi in itertools.pairwise(level_starts.tolist()):
        checkpoint()
        start = lo
        while start < hi:  # slabs end on a supplier's last entry
            stop = min(hi, start + slab)
            while stop < hi and not new_group[stop]:
                stop += 1
            groups = start + np.flatnonzero(new_group[start:stop])
            targets = supplier[groups]
            part = share[start:stop, None] * value[owner[start:stop]]
            reduced = combine.reduceat(part, groups - start, axis=0)
            keep = value[targets]  # a root stays 1 in its own column
            value[targets] = np.minimum(cap, reduced)
            if is_root[targets].any():
                rows = np.flatnonzero(is_root[targets])
                value[targets[rows]] = np.maximum(value[targets[rows]], keep[rows])
            start = stop
    return value


def _knockout_batches(graph: CompiledGraph, nodes: IntArray) -> Iterator[FloatArray]:
    for start in range(0, len(nodes), KNOCKOUT_BATCH):
        yield graph.knockouts(nodes[start : start + KNOCKOUT_BATCH].tolist())


def knockout_budget(graph: CompiledGraph) -> int:
    """Knockouts one search may evaluate: :data:`KNOCKOUT_WORK` over the graph's entries,
    between one round and :data:`DEFAULT_BUDGET` (8,000 at 100k nodes / 500k edges, 800 at
    1M / 5M)."""
    return max(ROUND, min(DEFAULT_BUDGET, KNOCKOUT_WORK // max(1, int(graph.shares.nnz))))


def top_impacts(
    graph: CompiledGraph,
    roots: IntArray,
    bounds: FloatArray,
    k: int,
    *,
    floors: FloatArray | None = None,
    budget: int | None = None,
    dtype: type[np.float32] | type[np.float64] = np.float64,
) -> list[TopImpacts]:
    """The ``k`` largest knockout losses of each root.

    ``bounds`` is :func:`loss_bounds` (or ``graph.flows(roots)``, looser; ``n_nodes x
    len(roots)``): each node's upper bound on each root's loss, positive exactly on the
    root's supply tree. ``floors`` (:func:`loss_floors`), when given, puts each root's
    :data:`SEED_FACTOR` ``* k`` strongest single-path candidates first: where the bounds
    rule nothing out (deep graphs) the search is then still likely to have found the real
    top K when its ``budget`` (default :func:`knockout_budget`) ends it."""
    roots = np.asarray(roots, dtype=np.int64)
    n_roots = len(roots)
    budget = knockout_budget(graph) if budget is None else budget
    # candidates of each root: its supply tree, seeds first, then by bound, largest first
    # (ties by index); the search may stop once the largest bound left is beaten
    queues: list[IntArray] = []
    left_bound: list[FloatArray] = []  # the largest bound from each queue position on
    for j, r in enumerate(roots.tolist()):
        x = bounds[:, j].copy()
        x[r] = 0.0
        tree = np.flatnonzero(x > 0)
        order = tree[np.lexsort((tree, -x[tree]))]
        if floors is not None and len(order):
            y = floors[order, j]
            seeds = order[np.argsort(-y, kind="stable")[: SEED_FACTOR * k]]
            order = np.concatenate([seeds, order[~np.isin(order, seeds)]])
        queues.append(order)
        left_bound.append(np.append(np.maximum.accumulate(x[order][::-1])[::-1], 0.0))
    cursor = np.zeros(n_roots, dtype=np.int64)
    found: list[dict[int, float]] = [{} for _ in range(n_roots)]
    done = np.zeros(n_roots, dtype=bool)
    seen = np.zeros(graph.n_nodes, dtype=bool)
    evaluated = 0

    def kth(j: int) -> float:
        values = sorted(found[j].values(), reverse=True)
        return values[k - 1] if len(values) >= k else -1.0

    def take(j: int, want: int) -> list[int]:
        """The next ``want`` candidates of root j not yet evaluated (for any root)."""
        queue = queues[j]
        out: list[int] = []
        while len(out) < want and cursor[j] < len(queue):
            window = queue[cursor[j] : cursor[j] + 4 * want]
            fresh = np.flatnonzero(~seen[window])[: want - len(out)]
            out.extend(window[fresh].tolist())
            cursor[j] += int(fresh[-1]) + 1 if len(out) == want else len(window)
        return out

    while not done.all() and evaluated < budget:
        checkpoint()
        # a round never takes more candidates than the budget has left, so a root whose
        # cursor moved past a candidate has had it evaluated
        remaining = budget - evaluated
        active = np.flatnonzero(~done).tolist()[:remaining]
        share = max(1, min(ROUND, remaining) // len(active))
        batch: list[int] = []
        for j in active:
            batch.extend(take(j, share))
        nodes = np.unique(np.array(batch, dtype=np.int64))
        if len(nodes):
            seen[nodes] = True
            retained = graph.evaluate_rows(_knockout_batches(graph, nodes), roots, dtype=dtype)
            evaluated += len(nodes)
            for j in range(n_roots):
                tree = bounds[nodes, j] > 0
                for node, loss in zip(
                    nodes[tree].tolist(), (1.0 - retained[j, tree]).tolist(), strict=True
                ):
                    found[j][node] = loss
        for j in np.flatnonzero(~done).tolist():
            exhausted = cursor[j] >= len(queues[j])
            done[j] = exhausted or float(left_bound[j][cursor[j]]) <= kth(j)
    out = []
    for j in range(n_roots):
        ranked = sorted(found[j].items(), key=lambda item: (-item[1], item[0]))[:k]
        out.append(
            TopImpacts(
                nodes=np.array([n for n, _ in ranked], dtype=np.int64),
                losses=np.array([v for _, v in ranked], dtype=np.float64),
                exact=bool(done[j]),
                unexamined_bound=0.0 if done[j] else float(left_bound[j][cursor[j]]),
                evaluated=len(found[j]),
            )
        )
    return out
