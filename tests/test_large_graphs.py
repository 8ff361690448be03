"""Large graphs through the store and the API (issue 14, item 3): SPOFs from one sweep
(against brute-force knockouts and networkx's dominator tree), exact top-K impacts from the
effective-sourcing bound (against brute force), a hand-computed edge table scored end to end,
and an edge-table import over gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import networkx as nx
import numpy as np
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2

from benchmarks.synthetic import layered_graph, top_rows
from sovrisk.models.analysis import dominators
from sovrisk.models.analysis.dominators import single_points_of_failure
from sovrisk.models.analysis.top_impacts import loss_bounds, loss_floors, top_impacts
from sovrisk.models.engine import edgetable
from sovrisk.models.engine.compiled import CompiledGraph
from sovrisk.models.engine.edgetable import (
    EdgeTable,
    EdgeTableError,
    edge_table_bytes,
    edge_table_from_bytes,
)
from sovrisk.models.graph.dataset import EDGE_TABLE_FILE
from sovrisk.models.scoring import large
from sovrisk.models.scoring.assessment import RiskBand
from sovrisk.models.scoring.large import LargeGraphModel
from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from sovrisk.service.grpc_gen.sovrisk.v1 import version_pb2 as v
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.conftest import SMALL
from tests.test_server import bad_fields, rpc_error, unpack

ADMIN = (("authorization", "Bearer tok-admin"),)

#: p needs "die" from x or y (half each) and "memory" from z alone; z needs "wafer" from w.
HAND = EdgeTable.from_edges(
    [
        ("p", "die", "x", 0.5),
        ("p", "die", "y", 0.5),
        ("p", "memory", "z", 1.0),
        ("z", "wafer", "w", 1.0),
        ("q", "die", "y", 1.0),
    ]
)


def _sparse_and_or_graph(n: int, seed: int) -> EdgeTable:
    """A random AND/OR DAG with many single-sourced categories (so long SPOF chains and
    sets with several generators) and some zero-share suppliers."""
    rng = np.random.default_rng(seed)
    edges: list[tuple[str, str, str, float]] = []
    for c in range(20, n):
        for b in range(int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))):
            k = int(rng.choice([1, 2, 3], p=[0.55, 0.35, 0.10]))
            low = max(0, c - 60)  # mostly recent nodes: deep chains
            suppliers = rng.choice(np.arange(low, c), size=min(k, c - low), replace=False)
            weights = rng.uniform(0.1, 1.0, size=len(suppliers))
            if len(suppliers) > 1 and rng.random() < 0.25:
                weights[-1] = 0.0  # listed, but supplies nothing
            for s, w in zip(suppliers.tolist(), (weights / weights.sum()).tolist(), strict=True):
                edges.append((f"n{c}", f"cat{b}", f"n{s}", w))
    return EdgeTable.from_edges(edges, ids=[f"n{k}" for k in range(n)])


def test_hand_computed_edge_table() -> None:
    """p: losing z or w cuts memory (SPOFs, loss 1); x or y halves the die (loss 0.5).
    Structural 50 + 50 b, b = (1 + 1 + 0.5 + 0.5) / 10 = 0.3: 65. q: y alone, b = 0.1: 55."""
    model = LargeGraphModel(HAND)
    assert model.provider_ids == ("p", "q")
    p, q = model.assess("p"), model.assess("q")
    assert p.spofs == ("w", "z") and q.spofs == ("y",)
    assert [(i.node, i.loss) for i in p.top_impacts] == [
        ("w", 1.0),
        ("z", 1.0),
        ("x", 0.5),
        ("y", 0.5),
    ]
    assert p.structural == pytest.approx(65.0) and p.band is RiskBand.HIGH
    assert q.structural == pytest.approx(55.0)
    assert p.top_exact and q.top_exact
    assert [a.provider for a in model.assess_all()] == ["p", "q"]


@pytest.mark.parametrize(("n", "seed"), [(300, 1), (2000, 2), (3000, 3)])
def test_spofs_and_top_impacts_equal_brute_force(n: int, seed: int) -> None:
    graph = layered_graph(n, seed=seed, depth=5).compile()
    roots = top_rows(graph)
    spofs = single_points_of_failure(graph, roots)
    flows = graph.flows(roots.tolist())
    bounds = loss_bounds(graph, roots)
    every = graph.evaluate_rows(graph.knockouts(list(range(graph.n_nodes))), roots)
    for candidates, floors in ((flows, None), (bounds, loss_floors(graph, roots))):
        tops = top_impacts(graph, roots, candidates, 10, floors=floors)
        evaluated = 0
        for j, root in enumerate(roots.tolist()):
            loss = 1.0 - every[j]
            loss[root] = 0.0
            assert spofs.of(j).tolist() == np.flatnonzero(loss >= 1.0 - 1e-9).tolist()
            assert np.all(loss <= candidates[:, j] + 1e-9)  # the bound the search relies on
            best = np.sort(loss)[::-1][:10]
            assert tops[j].exact and np.allclose(tops[j].losses, best, atol=1e-12)
            evaluated += tops[j].evaluated
        # the point: far fewer knockouts than nodes (one round of 512 covers a small graph)
        if n >= 2000:
            assert evaluated < 0.3 * n * len(roots)


def _every_loss(graph: CompiledGraph, roots: np.ndarray) -> np.ndarray:
    """``(n_nodes, roots)``: each root's exact loss when each node is knocked out (0 for the
    root itself)."""
    every = 1.0 - graph.evaluate_rows(graph.knockouts(list(range(graph.n_nodes))), roots).T
    every[roots, np.arange(len(roots))] = 0.0
    return every


@pytest.mark.parametrize(
    "table",
    [
        layered_graph(1500, seed=4, depth=5),
        layered_graph(1500, seed=5, depth=20),
        _sparse_and_or_graph(500, 14),
    ],
    ids=["shallow", "deep", "sparse"],
)
def test_loss_bounds_and_floors_bracket_every_knockout(table: EdgeTable) -> None:
    """floor <= exact loss <= capped bound <= min(1, effective-sourcing share)."""
    graph = table.compile()
    roots = np.flatnonzero(graph.levels == graph.levels.max())[:8]
    every = _every_loss(graph, roots)
    bounds, floors = loss_bounds(graph, roots), loss_floors(graph, roots)
    flows = np.minimum(graph.flows(roots.tolist()), 1.0)
    floors[roots, np.arange(len(roots))] = 0.0
    assert np.all(floors <= every + 1e-12)
    assert np.all(every <= bounds + 1e-12)
    assert np.all(bounds <= flows + 1e-12)
    assert np.array_equal(bounds > 0, flows > 0)  # the same supply trees


def test_loss_bounds_allow_for_shares_within_tolerance() -> None:
    """Shares summing to 0.9996 (accepted within 1e-3) leave the provider 0.04 % short with
    nothing lost; the bound adds that, so it still holds."""
    table = EdgeTable.from_edges(
        [
            ("p", "die", "x", 0.4996),
            ("p", "die", "y", 0.5),
            ("p", "memory", "z", 1.0),
            ("z", "wafer", "w", 1.0),
        ]
    )
    table.validate()
    graph = table.compile()
    roots = np.array([graph.index["p"]])
    assert np.all(_every_loss(graph, roots) <= loss_bounds(graph, roots) + 1e-12)


def test_on_a_deep_graph_the_search_is_exact_given_the_budget_else_seeded() -> None:
    """Twenty levels of AND/OR: the bounds rule almost nothing out, so proving the top K
    takes every candidate. With a budget of 10 % of them the search says it is not exact, and
    starting from the strongest single supply paths finds most of the real top 10 (in bound
    order alone, almost none: deep down, every node's bound is 1)."""
    graph = layered_graph(1500, seed=5, depth=20).compile()
    roots = top_rows(graph)
    every = _every_loss(graph, roots)
    bounds, floors = loss_bounds(graph, roots), loss_floors(graph, roots)
    full = top_impacts(graph, roots, bounds, 10, floors=floors, budget=graph.n_nodes)
    seeded = top_impacts(graph, roots, bounds, 10, floors=floors, budget=150)
    unseeded = top_impacts(graph, roots, bounds, 10, budget=150)
    found = {"seeded": 0, "unseeded": 0}
    for j in range(len(roots)):
        best = np.sort(every[:, j])[::-1][:10]
        assert full[j].exact and np.allclose(full[j].losses, best, atol=1e-12)
        real = set(np.argsort(-every[:, j], kind="stable")[:10].tolist())
        for name, search in (("seeded", seeded), ("unseeded", unseeded)):
            assert not search[j].exact and search[j].unexamined_bound > 0
            found[name] += len(real & set(search[j].nodes.tolist()))
    assert found["seeded"] >= 50 and found["seeded"] > 3 * found["unseeded"], found


def test_spofs_of_an_or_graph_are_its_dominator_chain() -> None:
    """With one input category per node, a node's SPOFs are its dominators in the supply
    DAG rooted at a virtual source feeding every raw material."""
    rng = np.random.default_rng(7)
    n = 400
    edges = []
    for c in range(40, n):  # nodes 0-39 are raw materials; others buy one category
        suppliers = rng.choice(c, size=int(rng.integers(1, 3)), replace=False)
        edges += [(f"n{c}", "in", f"n{s}", 1.0 / len(suppliers)) for s in suppliers]
    table = EdgeTable.from_edges(edges, ids=[f"n{k}" for k in range(n)])
    graph = table.compile()
    dag = nx.DiGraph([(supplier, consumer) for consumer, _, supplier, _ in edges])
    dag.add_edges_from(("source", f"n{k}") for k in range(40))
    idom = nx.immediate_dominators(dag, "source")
    roots = np.array([graph.index[f"n{k}"] for k in range(300, n)])
    spofs = single_points_of_failure(graph, roots)
    for j, r in enumerate(roots.tolist()):
        chain, node = [], idom[graph.ids[r]]
        while node != "source":
            chain.append(graph.index[node])
            node = idom[node]
        assert spofs.of(j).tolist() == sorted(chain)


def test_a_search_that_runs_out_of_budget_says_so() -> None:
    graph = layered_graph(2000, seed=2, depth=5).compile()
    roots = top_rows(graph)
    [top] = top_impacts(graph, roots[:1], graph.flows(roots[:1].tolist()), 10, budget=20)
    assert not top.exact and top.evaluated <= 20 and top.unexamined_bound > 0


def _brute_force_spofs(graph: CompiledGraph, roots: np.ndarray) -> list[list[int]]:
    """Every node's knockout evaluated: the nodes whose loss leaves a root exactly nothing."""
    every = graph.evaluate_rows(graph.knockouts(list(range(graph.n_nodes))), roots)
    out = []
    for j, root in enumerate(roots.tolist()):
        lost = every[j] == 0.0
        lost[root] = False
        out.append(np.flatnonzero(lost).tolist())
    return out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_spofs_of_sparse_and_or_graphs_equal_brute_force(seed: int) -> None:
    graph = _sparse_and_or_graph(500, seed).compile()
    roots = np.flatnonzero(graph.levels >= graph.levels.max() - 2)[:12]
    found = single_points_of_failure(graph, roots)
    assert found.complete
    for j, expected in enumerate(_brute_force_spofs(graph, roots)):
        assert found.of(j).tolist() == expected
        assert found.counts[j] == len(expected)
    assert max(found.counts) >= 5  # the point: long SPOF chains, not only empty sets


def test_a_zero_share_supplier_does_not_hide_a_spof() -> None:
    """p's die comes all from a; b is listed at share 0: losing a cuts p completely."""
    table = EdgeTable.from_edges([("p", "die", "a", 1.0), ("p", "die", "b", 0.0)])
    model = LargeGraphModel(table)
    p = model.assess("p")
    assert p.spofs == ("a",) and p.spof_count == 1
    assert [(i.node, i.loss) for i in p.top_impacts] == [("a", 1.0)]
    assert p.band in (RiskBand.HIGH, RiskBand.CRITICAL)  # the SPOF band [50, 100]


def test_a_long_chain_is_swept_in_linear_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain of n nodes has n - 1 SPOFs at its top; sets are never copied, so the sweep
    takes about one step per node (the copying sweep took n^2 / 2); a list over MAX_SET is
    capped and says so, the count stays exact."""
    n = 5000
    ids = np.array([f"c{k:05d}" for k in range(n)])
    table = EdgeTable(
        ids=ids,
        consumer=np.arange(1, n),
        supplier=np.arange(0, n - 1),
        category=np.zeros(n - 1, dtype=np.int64),
        categories=np.array(["in"]),
        share=np.ones(n - 1),
    )
    graph = table.compile()
    top = np.array([graph.index[f"c{n - 1:05d}"]])
    found = single_points_of_failure(graph, top)
    assert found.counts == (n - 1,) and found.of(0).tolist() == list(range(n - 1))
    assert found.steps <= 2 * n
    monkeypatch.setattr(dominators, "MAX_SET", 100)
    capped = single_points_of_failure(graph, top)
    assert capped.truncated == (True,) and capped.counts == (n - 1,)
    assert capped.of(0).tolist() == list(range(100))


def test_a_sweep_out_of_steps_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = layered_graph(2000, seed=2, depth=5).compile()
    roots = top_rows(graph)
    short = single_points_of_failure(graph, roots, budget=10)
    assert not short.complete and short.counts == (0,) * len(roots)
    # the model falls back to the SPOFs among its exact top K, and says so
    monkeypatch.setattr(
        large, "single_points_of_failure", functools.partial(single_points_of_failure, budget=1)
    )
    p = LargeGraphModel(HAND).assess("p")
    assert not p.spofs_complete and p.spofs == ("w", "z") and p.spof_count == 2
    assert any("SPOFs NOT complete" in note for note in p.notes)
    assert p.structural == pytest.approx(65.0)  # the score needs only the top K


def test_an_npz_is_held_to_its_unpacked_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressed archive is measured by what it expands to, and an array header that
    claims more than its member holds is refused before numpy allocates it."""
    packed = io.BytesIO()
    np.savez_compressed(packed, **edgetable._npz_arrays(HAND))
    assert edge_table_from_bytes(packed.getvalue()).n_edges == HAND.n_edges
    monkeypatch.setattr(edgetable, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(EdgeTableError, match=r"unpack to .* over the limit of 1,000"):
        edge_table_from_bytes(packed.getvalue())
    monkeypatch.undo()
    raw = io.BytesIO()
    np.save(raw, np.zeros(4, dtype=np.int64))
    lying = raw.getvalue().replace(b"(4,)", b"(9999999999999,)", 1)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("consumer.npy", lying)
    with pytest.raises(EdgeTableError, match=r"consumer\.npy: its header claims"):
        edge_table_from_bytes(archive.getvalue())


# -- through the API ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def server(store_url: str) -> AsyncIterator[RunningServer]:
    registry = GraphRegistry.open(store_url, seed=SMALL)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": "adam:admin:tok-admin"})
    running = await start_server(registry, host="127.0.0.1", port=0, auth=auth)
    try:
        yield running
    finally:
        await running.stop(grace=0)


@pytest_asyncio.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def _import(
    data: bytes, fmt: int = graph_pb2.IMPORT_FORMAT_EDGE_TABLE
) -> Iterator[graph_pb2.ImportGraphRequest]:
    header = graph_pb2.ImportGraphHeader(
        base_version="graph/versions/1", message="large", format=fmt
    )
    yield graph_pb2.ImportGraphRequest(header=header)
    yield graph_pb2.ImportGraphRequest(chunk=v.FileChunk(file_name=EDGE_TABLE_FILE, data=data))


async def test_an_edge_table_is_imported_and_scored_over_grpc(channel: grpc.aio.Channel) -> None:
    graph, risk = graph_pb2_grpc.GraphServiceStub(channel), risk_pb2_grpc.RiskServiceStub(channel)
    done = await graph.ImportGraph(_import(edge_table_bytes(HAND)), metadata=ADMIN)
    assert done.graph_version.name == "graph/versions/2"
    listed = await risk.ListProviderScores(risk_pb2.ListProviderScoresRequest())
    assert [(r.provider, round(r.composite, 6)) for r in listed.provider_scores] == [
        ("providers/p", 65.0),
        ("providers/q", 55.0),
    ]
    assert listed.provenance.parameters["method"] == "edge_table_structural"
    p = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
    assert p.spof_count == 2 and [i.node for i in p.structural_impacts][:2] == [
        "nodes/w",
        "nodes/z",
    ]
    assert any("exact" in note for note in p.notes) and any(
        "sampled" in note.lower() for note in p.notes
    )
    unavailable = [s.key for s in p.sub_scores if s.data_missing]
    assert risk_pb2.SUB_SCORE_KEY_TAIL in unavailable
    # the dataset version before it is still served in full
    old = await risk.ScoreProvider(
        risk_pb2.ScoreProviderRequest(name="providers/p", graph_version="graph/versions/1")
    )
    assert old.provenance.graph_version == "graph/versions/1"
    # what needs the dataset's tables says so
    error = await rpc_error(risk.ListChokepoints(risk_pb2.ListChokepointsRequest()))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    failure = unpack(error)["PreconditionFailure"]
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].type == "EDGE_TABLE"
    assert failure.violations[0].subject == "graph/versions/2"
    diff = await rpc_error(
        graph.DiffGraphVersions(graph_pb2.DiffGraphVersionsRequest(name="graph/versions/2"))
    )
    assert diff.code() is grpc.StatusCode.FAILED_PRECONDITION
    # parameters an edge table cannot honour are refused, naming the field
    weighted = await rpc_error(
        risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p", horizon_weeks=26))
    )
    assert weighted.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "horizon_weeks" in bad_fields(weighted)
    missing = await rpc_error(
        risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/zz"))
    )
    assert missing.code() is grpc.StatusCode.NOT_FOUND


async def test_a_bad_edge_table_is_refused_whole(channel: grpc.aio.Channel) -> None:
    graph = graph_pb2_grpc.GraphServiceStub(channel)
    bad = EdgeTable.from_edges([("p", "die", "x", 0.5), ("p", "die", "y", 0.4)])
    error = await rpc_error(graph.ImportGraph(_import(edge_table_bytes(bad)), metadata=ADMIN))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert EDGE_TABLE_FILE in bad_fields(error)
    # the description names the consumer, the category and the rows
    assert "consumer 'p', category 'die': shares sum to 0.9" in error.details()
    assert "edge row 0, edge row 1" in error.details()
    garbage = await rpc_error(graph.ImportGraph(_import(b"not an npz"), metadata=ADMIN))
    assert EDGE_TABLE_FILE in bad_fields(garbage)
    wrong = await rpc_error(
        graph.ImportGraph(
            _import(edge_table_bytes(HAND), graph_pb2.IMPORT_FORMAT_DATASET), metadata=ADMIN
        )
    )
    assert "header.format" in bad_fields(wrong)
    versions = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest())
    assert [v.name for v in versions.graph_versions] == ["graph/versions/1"]  # nothing stored


def test_the_cli_imports_an_edge_table_and_a_parquet_one(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sovrisk.service.cli import main

    store = str(tmp_path / "store")
    GraphRegistry.open(store, seed=SMALL).close()
    rows = [
        ("p", "die", "x", 0.5),
        ("p", "die", "y", 0.5),
        ("p", "memory", "z", 1.0),
        ("z", "wafer", "w", 1.0),
        ("q", "die", "y", 1.0),
    ]
    columns = dict(
        zip(("consumer", "category", "supplier", "share"), zip(*rows, strict=True), strict=True)
    )
    pq.write_table(pa.table({k: list(vals) for k, vals in columns.items()}), tmp_path / "g.parquet")
    assert (
        main(
            [
                "import",
                str(tmp_path / "g.parquet"),
                "--format",
                "edges",
                "-m",
                "big",
                "--store",
                store,
            ]
        )
        == 1
    )  # needs --replace
    assert (
        main(
            [
                "import",
                str(tmp_path / "g.parquet"),
                "--format",
                "edges",
                "-m",
                "big",
                "--store",
                store,
                "--replace",
            ]
        )
        == 0
    )
    registry = GraphRegistry.open(store)
    try:
        model = registry.large_at(None)
        assert model is not None and model.assess("p").structural == pytest.approx(65.0)
    finally:
        registry.close()
