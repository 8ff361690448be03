"""Scale-oriented pieces of the compiled engine: vectorised compilation, edge tables, a
10k-node synthetic graph against the networkx reference."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synthetic import degraded_batches, layered_graph, level_sizes, top_rows
from sovrisk.models.engine.compiled import CompiledGraph, _levels, compile_graph
from sovrisk.models.engine.edgetable import (
    EdgeTable,
    EdgeTableError,
    load_edge_table,
    read_edge_table,
    save_edge_table,
)
from sovrisk.models.engine.reference import ReferenceGraph
from sovrisk.models.graph.supply_graph import SupplyGraph

# -- levels ----------------------------------------------------------------------------------


def kahn_levels(n: int, consumers: np.ndarray, suppliers: np.ndarray) -> np.ndarray:
    """The previous definition, a Python Kahn loop: longest path from a leaf."""
    levels = np.zeros(n, dtype=np.int64)
    indegree = np.zeros(n, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(n)]
    for c, s in {(int(c), int(s)) for c, s in zip(consumers, suppliers, strict=True)}:
        indegree[c] += 1
        out[s].append(c)
    frontier = [i for i in range(n) if indegree[i] == 0]
    seen = 0
    while frontier:
        seen += len(frontier)
        nxt = []
        for node in frontier:
            for consumer in out[node]:
                levels[consumer] = max(levels[consumer], levels[node] + 1)
                indegree[consumer] -= 1
                if indegree[consumer] == 0:
                    nxt.append(consumer)
        frontier = nxt
    if seen != n:
        raise ValueError("cycle")
    return levels


def random_dag(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges from a lower to a higher rank of a random ranking (repeats allowed)."""
    rank = rng.permutation(n)
    a, b = rng.integers(0, n, size=(2, m))
    keep = a != b
    a, b = a[keep], b[keep]
    lower = np.where(rank[a] < rank[b], a, b)
    upper = np.where(rank[a] < rank[b], b, a)
    return upper, lower  # consumers, suppliers


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_levels_equal_the_kahn_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    cons, sups = random_dag(rng, n, int(rng.integers(0, 4 * n)))
    np.testing.assert_array_equal(_levels(n, cons, sups), kahn_levels(n, cons, sups))


def test_levels_of_a_long_chain() -> None:
    n = 2000  # one frontier step per level
    cons, sups = np.arange(1, n), np.arange(n - 1)
    assert _levels(n, cons, sups).tolist() == list(range(n))


@pytest.mark.parametrize("seed", range(4))
def test_cycle_is_named(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    cons, sups = random_dag(rng, n, 150)
    ids = [f"v{i}" for i in range(n)]
    # close a cycle: a node's consumer path back to it
    c, s = int(cons[0]), int(sups[0])
    cons = np.append(cons, s)
    sups = np.append(sups, c)
    with pytest.raises(ValueError, match="cycle") as info:
        CompiledGraph.from_edge_arrays(
            ids, cons, sups, np.zeros(len(cons), dtype=np.int64), ["x"], np.ones(len(cons))
        )
    named = str(info.value).split("(supplier -> consumer: ")[1].rstrip(")").split(" -> ")
    assert named[0] == named[-1] and len(named) >= 3
    pairs = set(zip(sups.tolist(), cons.tolist(), strict=True))
    for u, v in itertools.pairwise(named):
        assert (int(u[1:]), int(v[1:])) in pairs  # every step is an edge, supplier -> consumer


def test_compiled_order_is_level_then_id() -> None:
    table = layered_graph(400, seed=5, depth=4)
    cg = table.compile()
    keys = list(zip(cg.levels.tolist(), cg.ids, strict=True))
    assert keys == sorted(keys)
    assert cg.depth == int(cg.levels.max())
    assert all(cg.index[nid] == i for i, nid in enumerate(cg.ids))


def test_out_of_range_indices_are_rejected() -> None:
    with pytest.raises(ValueError, match="supplier index 5 out of range"):
        CompiledGraph.from_edge_arrays(
            ["a", "b"], np.array([0]), np.array([5]), np.array([0]), ["x"], np.ones(1)
        )


# -- edge tables -----------------------------------------------------------------------------


def small_table() -> EdgeTable:
    return EdgeTable.from_edges(
        [
            ("p", "fleet", "a", 0.6),
            ("p", "fleet", "b", 0.4),
            ("a", "die", "f", 1.0),
            ("a", "mem", "m1", 0.5),
            ("a", "mem", "m2", 0.5),
            ("b", "die", "f", 1.0),
            ("b", "mem", "m1", 1.0),
        ]
    )


def assert_same_graph(x: CompiledGraph, y: CompiledGraph) -> None:
    assert x.ids == y.ids
    assert x.segment_category == y.segment_category
    np.testing.assert_array_equal(x.segment_owner, y.segment_owner)
    np.testing.assert_array_equal(x.shares.toarray(), y.shares.toarray())
    assert x.countries == y.countries
    np.testing.assert_array_equal(x.sites.toarray(), y.sites.toarray())
    up = np.random.default_rng(0).uniform(size=(x.n_nodes, 3))
    np.testing.assert_array_equal(x.evaluate(up), y.evaluate(up))


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_edge_table_round_trip(tmp_path: Path, suffix: str) -> None:
    table = layered_graph(300, seed=2, depth=4)
    cg = table.compile()
    path = tmp_path / f"graph{suffix}"
    save_edge_table(path, table)
    assert_same_graph(load_edge_table(path), cg)
    # a compiled graph saves too, and comes back the same
    again = tmp_path / f"again{suffix}"
    save_edge_table(again, cg)
    assert_same_graph(load_edge_table(again), cg)


def test_npz_keeps_sites(tmp_path: Path) -> None:
    table = small_table()
    with_sites = EdgeTable(
        ids=table.ids,
        consumer=table.consumer,
        supplier=table.supplier,
        category=table.category,
        categories=table.categories,
        share=table.share,
        site_node=np.array([list(table.ids).index("f")] * 2 + [list(table.ids).index("m1")]),
        site_country=np.array([1, 0, 0]),
        site_share=np.array([0.9, 0.1, 1.0]),
        countries=np.array(["KOR", "TWN"]),
    )
    save_edge_table(tmp_path / "g.npz", with_sites)
    cg = load_edge_table(tmp_path / "g.npz")
    assert cg.countries == ("KOR", "TWN")
    assert cg.sites[cg.index["f"]].toarray().tolist() == [[0.1, 0.9]]
    lost = cg.evaluate(cg.country_losses())
    # KOR: m1 gone, f at .9 -> a = min(.9, .5) = .5, b = min(.9, 0) = 0 -> p = .6 × .5 = .3;
    # TWN: f at .1 -> a = b = .1 -> p = .1
    assert lost[cg.index["p"]].tolist() == pytest.approx([0.3, 0.1])


def test_from_compiled_round_trips_the_sovrisk_fixture(small_graph: SupplyGraph) -> None:
    cg = compile_graph(small_graph)
    assert_same_graph(EdgeTable.from_compiled(cg).compile(), cg)


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_reads_the_documented_format(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "g.csv",
        [
            "consumer,category,supplier,share",
            "p,fleet,a,0.25",
            "p,fleet,b,0.75",
            "a,die,f,1",
        ],
    )
    cg = load_edge_table(path)
    assert cg.ids == ("b", "f", "a", "p")
    a = cg.evaluate(np.array([1.0, 0.0, 1.0, 1.0]))  # f down: a loses its die
    assert a[cg.index["p"]] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["consumer,supplier,share"], r"g.csv:1: header must be"),
        (["consumer,category,supplier,share", "p,fleet,a"], r"g.csv:2: expected 4 fields"),
        (["consumer,category,supplier,share", "p,fleet,a,1", "a,x,b,lots"], r"g.csv:3: share"),
        (
            ["consumer,category,supplier,share", "p,fleet,a,1.5"],
            r"g.csv:2 \(consumer 'p', category 'fleet', supplier 'a'\): share 1.5 is not in",
        ),
        (
            ["consumer,category,supplier,share", "p,fleet,a,0.5", "p,fleet,a,0.5"],
            r"g.csv:3 .* repeats .*g.csv:2: one row per",
        ),
        (
            ["consumer,category,supplier,share", "p,fleet,a,0.5", "p,fleet,b,0.3", "a,x,b,1"],
            r"consumer 'p', category 'fleet': shares sum to 0.8, not 1 .*g.csv:2, .*g.csv:3",
        ),
        (
            ["consumer,category,supplier,share", "a,x,b,1", "b,x,c,1", "c,x,a,1"],
            r"cycle; the graph must be a DAG \(supplier -> consumer: ",
        ),
    ],
)
def test_csv_rejections_name_the_row(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write_csv(tmp_path / "g.csv", lines)
    with pytest.raises(EdgeTableError, match=message):
        load_edge_table(path)


def test_normalise_rescales_categories(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "g.csv", ["consumer,category,supplier,share", "p,f,a,0.2", "p,f,b,0.6"]
    )
    with pytest.raises(EdgeTableError, match=r"sum to 0\.8"):
        load_edge_table(path)
    cg = load_edge_table(path, normalise=True)
    row = cg.shares.toarray()[0]
    assert sorted(row[row > 0]) == pytest.approx([0.25, 0.75])
    assert load_edge_table(path, validate=False).shares.sum() == pytest.approx(0.8)


def table_with(**changes: object) -> EdgeTable:
    base = small_table()
    fields = {
        "ids": base.ids,
        "consumer": base.consumer,
        "supplier": base.supplier,
        "category": base.category,
        "categories": base.categories,
        "share": base.share,
    }
    fields.update(changes)
    return EdgeTable(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"supplier": np.array([0, 1, 2, 3, 4, 2, 99])}, r"edge row 6: supplier index 99 out"),
        ({"consumer": np.array([-1, 0, 0, 0, 0, 0, 0])}, r"edge row 0: consumer index -1 out"),
        ({"category": np.array([0, 0, 0, 1, 1, 0, 7])}, r"edge row 6: category index 7 out"),
        (
            {"share": np.array([0.6, 0.4, 1.0, 0.5, 0.5, 1.0, np.nan])},
            r"edge row 6 \(consumer 'b', category 'mem', supplier 'm1'\): share nan",
        ),
        ({"ids": np.array(["a", "b", "f", "m1", "m2", "p", "a"])}, r"node id 'a' is listed twice"),
        ({"consumer": np.array([0, 0, 0])}, r"edge arrays differ in length"),
    ],
)
def test_array_rejections_name_the_row(changes: dict[str, object], message: str) -> None:
    with pytest.raises(EdgeTableError, match=message):
        table_with(**changes).validate()


def test_npz_must_hold_the_documented_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", ids=np.array(["a"]), consumer=np.zeros(0, np.int32))
    with pytest.raises(EdgeTableError, match=r"missing arrays \['categories', 'category'"):
        read_edge_table(tmp_path / "bad.npz")
    with pytest.raises(EdgeTableError, match="unknown edge-table format"):
        read_edge_table(tmp_path / "bad.xlsx")


# -- a 10k-node synthetic graph ------------------------------------------------------------------


def test_synthetic_generator_shape() -> None:
    assert sum(level_sizes(10_000, 8, 0.2, 10)) == 10_000
    table = layered_graph(10_000, seed=7)
    table.validate()
    per_node = table.n_edges / table.n_nodes
    assert 4.5 < per_node < 5.5
    cg = table.compile()
    assert cg.depth == 8
    assert float(np.mean(cg.levels == 0)) == pytest.approx(0.2, abs=0.01)
    # every node feeds some provider: the providers' supply trees are the whole graph
    assert len(cg.ancestors(top_rows(cg))) == cg.n_nodes
    again = layered_graph(10_000, seed=7)
    np.testing.assert_array_equal(again.supplier, table.supplier)
    np.testing.assert_array_equal(again.share, table.share)


def test_ten_thousand_nodes_match_the_reference() -> None:
    table = layered_graph(10_000, seed=11)
    cg = table.compile()
    ref = ReferenceGraph.from_arrays(
        cg.ids,
        *_edges_in_compiled_order(table, cg),
    )
    rows = top_rows(cg)
    up = next(degraded_batches(cg.n_nodes, 3, batch_size=3, fraction=0.05, seed=3)).copy()
    a = cg.evaluate(up)
    a32 = cg.evaluate(up, dtype=np.float32)
    bound = cg.float32_error_bound()
    for k in range(up.shape[1]):
        expected = ref.evaluate(dict(zip(cg.ids, up[:, k].tolist(), strict=True)))
        want = np.array([expected[nid] for nid in cg.ids])
        np.testing.assert_allclose(a[:, k], want, rtol=0, atol=1e-9)
        assert float(np.max(np.abs(a32[:, k] - want))) <= bound
    kept = cg.evaluate_rows(
        degraded_batches(cg.n_nodes, 3, batch_size=2, fraction=0.05, seed=3), rows
    )
    assert kept.shape == (len(rows), 3)
    batches = [
        b.copy() for b in degraded_batches(cg.n_nodes, 3, batch_size=2, fraction=0.05, seed=3)
    ]
    np.testing.assert_allclose(
        kept, np.concatenate([cg.evaluate(b)[rows] for b in batches], axis=1), atol=1e-12
    )


def _edges_in_compiled_order(
    table: EdgeTable, cg: CompiledGraph
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    new_of_old = np.array([cg.index[nid] for nid in table.ids.tolist()])
    cats = table.categories[table.category].tolist()
    return new_of_old[table.consumer], new_of_old[table.supplier], cats, table.share


def test_degraded_batches_reuse_one_buffer() -> None:
    gen = degraded_batches(1000, 5, batch_size=2, fraction=0.1, seed=0)
    first = next(gen)
    assert first.shape == (1000, 2)
    assert 0.8 < float(np.mean(first == 1.0)) < 0.95
    second = next(gen)
    assert second is first  # refilled in place
    last = next(gen)
    assert last.shape == (1000, 1)
    assert float(np.mean(last == 1.0)) > 0.85


@pytest.mark.parametrize("shape", ["pyramid", "uniform"])
def test_numba_kernel_on_a_synthetic_graph(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Monte Carlo entry point on both paths: the numba kernel (forced, with every level
    # split over three threads) and numpy give the same bits, and match the reference.
    kernels = pytest.importorskip("sovrisk.models.engine.kernels", reason="numba is not installed")
    from sovrisk.models.engine import compiled

    table = layered_graph(10_000, seed=5, shape=shape)
    cg = table.compile()
    rows = top_rows(cg)

    def run(dtype: type[np.float32] | type[np.float64]) -> np.ndarray:
        batches = degraded_batches(cg.n_nodes, 150, batch_size=64, seed=4, dtype=dtype)
        return cg.evaluate_rows(batches, rows, dtype=dtype)

    monkeypatch.setattr(compiled, "KERNEL_MIN_WORK", 1 << 62)
    plain = {dtype: run(dtype) for dtype in (np.float32, np.float64)}
    monkeypatch.setattr(compiled, "KERNEL_MIN_WORK", 0)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(kernels, "n_threads", lambda: 3)
    calls: list[int] = []
    real = kernels.evaluate
    monkeypatch.setattr(kernels, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    for dtype in (np.float32, np.float64):
        np.testing.assert_array_equal(run(dtype), plain[dtype])
    assert len(calls) == 2 * 3  # 150 scenarios in batches of 64, per dtype

    ref = ReferenceGraph.from_arrays(cg.ids, *_edges_in_compiled_order(table, cg))
    up = next(degraded_batches(cg.n_nodes, 2, batch_size=2, seed=4)).copy()
    a = cg.evaluate(up)
    for k in range(2):
        expected = ref.evaluate(dict(zip(cg.ids, up[:, k].tolist(), strict=True)))
        want = np.array([expected[nid] for nid in cg.ids])
        np.testing.assert_allclose(a[:, k], want, rtol=0, atol=1e-12)
