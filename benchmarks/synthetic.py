"""Seeded synthetic supply graphs and Monte Carlo scenarios for benchmarks and scale tests.

    from benchmarks.synthetic import layered_graph, degraded_batches
    table = layered_graph(100_000, seed=1)      # an EdgeTable
    graph = table.compile()                     # a CompiledGraph
    rows = top_rows(graph)                      # the top level: the "providers"

The graph is layered like a bill of materials: ``leaf_fraction`` of the nodes are leaves
(materials, tools: no inputs), ``n_top`` nodes form the top level (the providers), and the
levels between widen geometrically downwards. Every non-leaf node needs 1–4 input categories
(probabilities .10/.25/.35/.30), each met by 1–3 suppliers (.20/.40/.40) with random shares
summing to 1; a supplier comes from the level just below with probability
``previous_level_bias`` (dealt so that every node there gets a consumer) and from any lower
level otherwise. That is about 6.3 edges per consumer, 5 per node, and the providers' supply
trees cover the whole graph. Everything is vectorised: a million nodes take about two
seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from sovrisk.models.engine.compiled import CompiledGraph, IntArray
from sovrisk.models.engine.edgetable import EdgeTable

CATEGORY_COUNTS = (1, 2, 3, 4)
CATEGORY_PROBS = (0.10, 0.25, 0.35, 0.30)
SUPPLIER_COUNTS = (1, 2, 3)
SUPPLIER_PROBS = (0.20, 0.40, 0.40)


def level_sizes(
    n: int, depth: int, leaf_fraction: float, n_top: int, shape: str = "pyramid"
) -> list[int]:
    """Nodes per level, leaves first; sums to ``n``.

    ``leaf_fraction`` of the nodes are leaves and ``n_top`` form the top level. In a
    ``"pyramid"`` the levels between grow geometrically downwards (few accelerator families,
    many parts) by the factor that makes the sizes add up to ``n``; ``"uniform"`` makes them
    equal (then most of them supply nothing the top level uses: dead ends).
    """
    leaves = max(1, round(leaf_fraction * n))
    top = max(1, n_top)
    middle = n - leaves - top
    levels_between = depth - 1
    if depth < 1 or middle < levels_between or (levels_between == 0 and middle):
        raise ValueError(f"{n} nodes do not make {depth} levels above {leaves} leaves")
    if levels_between == 0:
        return [leaves, top]
    if shape == "uniform":
        base, extra = divmod(middle, levels_between)
        return [leaves, *(base + (k < extra) for k in range(levels_between)), top]
    if shape != "pyramid":
        raise ValueError(f"shape must be 'pyramid' or 'uniform', not {shape!r}")
    low, high = 1.0, float(max(2, middle))
    for _ in range(100):  # bisection for the growth factor g: sum_k top g^k = middle
        g = (low + high) / 2
        total = sum(top * g**k for k in range(1, levels_between + 1))
        low, high = (g, high) if total < middle else (low, g)
    sizes = [max(1, round(top * low**k)) for k in range(levels_between, 0, -1)]
    sizes[0] += middle - sum(sizes)  # rounding goes to the widest middle level (level 1)
    if sizes[0] < 1:
        raise ValueError(f"{n} nodes do not make {depth} levels above {leaves} leaves")
    return [leaves, *sizes, top]


def layered_graph(
    n: int,
    *,
    seed: int = 0,
    depth: int = 8,
    leaf_fraction: float = 0.2,
    n_top: int = 10,
    n_categories: int = 24,
    previous_level_bias: float = 0.8,
    shape: str = "pyramid",
    buffers: bool = False,
) -> EdgeTable:
    """A random layered AND/OR supply graph with ``n`` nodes (see the module docstring).

    Suppliers drawn from the level just below are dealt out as shuffled decks of that level,
    so (where there are enough draws, as with the defaults) every node supplies someone and
    the top level's supply trees span the whole graph: no dead ends for pruning to skip.
    With ``buffers`` every edge gets a buffer of 0, 2, 4, 8, 13, 26 or 52 weeks (drawn after
    everything else, so the graph is the same with or without them).
    """
    rng = np.random.default_rng(seed)
    sizes = level_sizes(n, depth, leaf_fraction, n_top, shape)
    level_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    node_level = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    consumers = np.arange(sizes[0], n, dtype=np.int64)

    # categories: 1-4 per consumer, distinct names from a pool
    n_cat = rng.choice(CATEGORY_COUNTS, size=len(consumers), p=CATEGORY_PROBS)
    seg_owner = np.repeat(consumers, n_cat)
    first_seg = np.cumsum(n_cat) - n_cat
    rank = np.arange(len(seg_owner)) - np.repeat(first_seg, n_cat)
    offset = rng.integers(0, n_categories, size=len(consumers))
    seg_code = (np.repeat(offset, n_cat) + rank) % n_categories

    # suppliers: 1-3 per category, from the level below (mostly) or any lower level
    n_sup = rng.choice(SUPPLIER_COUNTS, size=len(seg_owner), p=SUPPLIER_PROBS)
    edge_seg = np.repeat(np.arange(len(seg_owner), dtype=np.int64), n_sup)
    edge_cons = seg_owner[edge_seg]
    cons_level = node_level[edge_cons]
    below = rng.random(len(edge_seg)) < previous_level_bias
    any_lower = np.floor(rng.random(len(edge_seg)) * cons_level).astype(np.int64)
    sup_level = np.where(below, cons_level - 1, any_lower)
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    within = np.floor(rng.random(len(edge_seg)) * sizes_arr[sup_level]).astype(np.int64)
    for level in range(1, len(sizes)):  # one loop step per level: deal decks of the level below
        slots = np.flatnonzero(below & (cons_level == level))
        size = sizes[level - 1]
        decks = -(-len(slots) // size)
        deck = np.concatenate([rng.permutation(size) for _ in range(decks)]) if decks else slots
        within[slots] = deck[: len(slots)]
    edge_sup = level_start[sup_level] + within

    # one row per (category, supplier): drop repeats, keep the first
    _, first = np.unique(edge_seg * n + edge_sup, return_index=True)
    first.sort()
    edge_seg, edge_cons, edge_sup = edge_seg[first], edge_cons[first], edge_sup[first]
    weight = rng.uniform(0.1, 1.0, size=len(edge_seg))
    share = weight / np.bincount(edge_seg, weights=weight, minlength=len(seg_owner))[edge_seg]

    width = len(str(n - 1))
    ids = np.char.add("n", np.char.zfill(np.arange(n).astype(str), width))
    weeks = (
        rng.choice(np.array([0.0, 2.0, 4.0, 8.0, 13.0, 26.0, 52.0]), size=len(edge_seg))
        if buffers
        else np.zeros(0)
    )
    return EdgeTable(
        ids=ids,
        consumer=edge_cons,
        supplier=edge_sup,
        category=seg_code[edge_seg],
        categories=np.array([f"cat{k:02d}" for k in range(n_categories)]),
        share=share,
        buffer=weeks,
    )


def top_rows(graph: CompiledGraph, limit: int = 10) -> IntArray:
    """Up to ``limit`` nodes of the top level (public indices): the synthetic providers."""
    top = np.flatnonzero(graph.levels == graph.levels.max()) if graph.n_nodes else np.zeros(0)
    return top[:limit].astype(np.int64)


def degraded_batches(
    n_nodes: int,
    n_scenarios: int,
    *,
    batch_size: int = 128,
    fraction: float = 0.03,
    knockout: float = 0.3,
    seed: int = 0,
    dtype: type[np.float32] | type[np.float64] = np.float64,
) -> Iterator[npt.NDArray[Any]]:
    """Monte Carlo ``up`` batches ``(n_nodes, <= batch_size)``: in each scenario ``fraction``
    of the nodes (drawn with replacement) are degraded to a uniform fraction in [0, 1), a
    ``knockout`` share of those to 0; the rest are 1.

    The same buffer is reused between batches (only the degraded entries are reset), so a
    consumer must finish with a batch before asking for the next (as
    :meth:`CompiledGraph.evaluate_rows` does); copy it to keep it.

    Writes go through flat indices and one uniform draw per degraded entry decides both
    knockout and level (``u < knockout`` -> 0, else ``(u - knockout) / (1 - knockout)``,
    uniform in [0, 1)): a million nodes × 1,000 scenarios take about a second, most of it
    the scattered writes themselves.
    """
    rng = np.random.default_rng(seed)
    per_scenario = max(1, round(fraction * n_nodes))
    batch_size = max(1, min(batch_size, n_scenarios))
    buffer = np.ones((n_nodes, batch_size), dtype=dtype)
    flat = buffer.reshape(-1)
    draw_type = np.float32 if np.dtype(dtype) == np.float32 else np.float64
    last: IntArray | None = None
    for c0 in range(0, n_scenarios, batch_size):
        width = min(batch_size, n_scenarios - c0)
        if last is not None:
            flat[last] = 1.0
        where = rng.integers(0, n_nodes, size=(width, per_scenario))
        where *= batch_size
        where += np.arange(width)[:, None]
        where = where.reshape(-1)
        values = rng.random(where.size, dtype=draw_type)
        knocked = values < knockout
        values -= knockout
        values *= 1.0 / (1.0 - knockout) if knockout < 1.0 else 0.0
        values[knocked] = 0.0
        flat[where] = values
        last = where
        yield buffer if width == batch_size else buffer[:, :width]
