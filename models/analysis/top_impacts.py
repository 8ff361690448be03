"""The K nodes whose loss costs each provider most, without a knockout per node.

The long-run loss of root ``p`` when node ``d`` is knocked out is bounded by ``d``'s
effective sourcing share ``x_p(d)`` (METHODS §3; :meth:`CompiledGraph.flows`): a node's loss
is the largest of its categories' losses (AND takes the min of the supplied fractions), which
is at most their sum, and a category's loss is the share-weighted sum of its suppliers'; so by
induction over the levels ``1 - a_p <= sum over paths of the products of shares = x_p(d)``.
Candidates are evaluated exactly (batched knockouts on the compiled arrays) in order of that
bound, and the search stops for a root once the next bound cannot beat its K-th exact loss:
the result is the exact top K. A budget caps the exact evaluations; a root that reaches it
before its search ends gets its best K found so far, flagged ``exact=False``, with the bound
that the rest cannot exceed.
"""

from __future__ import annotations

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


def _knockout_batches(graph: CompiledGraph, nodes: IntArray) -> Iterator[FloatArray]:
    for start in range(0, len(nodes), KNOCKOUT_BATCH):
        yield graph.knockouts(nodes[start : start + KNOCKOUT_BATCH].tolist())


def top_impacts(
    graph: CompiledGraph,
    roots: IntArray,
    flows: FloatArray,
    k: int,
    *,
    budget: int = DEFAULT_BUDGET,
    dtype: type[np.float32] | type[np.float64] = np.float64,
) -> list[TopImpacts]:
    """The ``k`` largest knockout losses of each root; ``flows`` is
    ``graph.flows(roots)`` (``n_nodes x len(roots)``)."""
    roots = np.asarray(roots, dtype=np.int64)
    n_roots = len(roots)
    # candidates of each root: its supply tree, by bound, largest first (ties by index)
    queues: list[IntArray] = []
    bounds: list[FloatArray] = []
    for j, r in enumerate(roots.tolist()):
        x = flows[:, j].copy()
        x[r] = 0.0
        tree = np.flatnonzero(x > 0)
        order = tree[np.lexsort((tree, -x[tree]))]
        queues.append(order)
        bounds.append(x[order])
    cursor = np.zeros(n_roots, dtype=np.int64)
    found: list[dict[int, float]] = [{} for _ in range(n_roots)]
    done = np.zeros(n_roots, dtype=bool)
    evaluated = 0

    def kth(j: int) -> float:
        values = sorted(found[j].values(), reverse=True)
        return values[k - 1] if len(values) >= k else -1.0

    while not done.all() and evaluated < budget:
        checkpoint()
        # a round never takes more candidates than the budget has left, so a root whose
        # cursor moved past a candidate has had it evaluated
        remaining = budget - evaluated
        active = np.flatnonzero(~done).tolist()[:remaining]
        share = max(1, min(ROUND, remaining) // len(active))
        batch: list[int] = []
        for j in active:
            take = queues[j][cursor[j] : cursor[j] + share]
            cursor[j] += len(take)
            batch.extend(take.tolist())
        nodes = np.unique(np.array(batch, dtype=np.int64))
        if len(nodes):
            retained = graph.evaluate_rows(_knockout_batches(graph, nodes), roots, dtype=dtype)
            evaluated += len(nodes)
            for j in range(n_roots):
                tree = flows[nodes, j] > 0
                for node, loss in zip(
                    nodes[tree].tolist(), (1.0 - retained[j, tree]).tolist(), strict=True
                ):
                    found[j][node] = loss
        for j in np.flatnonzero(~done).tolist():
            exhausted = cursor[j] >= len(queues[j])
            nxt = -1.0 if exhausted else float(bounds[j][cursor[j]])
            done[j] = exhausted or nxt <= kth(j)
    out = []
    for j in range(n_roots):
        ranked = sorted(found[j].items(), key=lambda item: (-item[1], item[0]))[:k]
        left = cursor[j] < len(queues[j])
        out.append(
            TopImpacts(
                nodes=np.array([n for n, _ in ranked], dtype=np.int64),
                losses=np.array([v for _, v in ranked], dtype=np.float64),
                exact=bool(done[j]),
                unexamined_bound=float(bounds[j][cursor[j]]) if left else 0.0,
                evaluated=len(found[j]),
            )
        )
    return out
