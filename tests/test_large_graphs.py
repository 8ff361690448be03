"""Large graphs through the store and the API (issue 14, item 3): SPOFs from one sweep
(against brute-force knockouts and networkx's dominator tree), exact top-K impacts from the
effective-sourcing bound (against brute force), a hand-computed edge table scored end to end,
and an edge-table import over gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import networkx as nx
import numpy as np
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2

from benchmarks.synthetic import layered_graph, top_rows
from sovrisk.models.analysis.dominators import single_points_of_failure
from sovrisk.models.analysis.top_impacts import top_impacts
from sovrisk.models.engine.edgetable import EdgeTable, edge_table_bytes
from sovrisk.models.graph.dataset import EDGE_TABLE_FILE
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
    tops = top_impacts(graph, roots, flows, 10)
    every = graph.evaluate_rows(graph.knockouts(list(range(graph.n_nodes))), roots)
    evaluated = 0
    for j, root in enumerate(roots.tolist()):
        loss = 1.0 - every[j]
        loss[root] = 0.0
        assert spofs.of(j).tolist() == np.flatnonzero(loss >= 1.0 - 1e-9).tolist()
        assert np.all(loss <= flows[:, j] + 1e-9)  # the bound the search relies on
        best = np.sort(loss)[::-1][:10]
        assert tops[j].exact and np.allclose(tops[j].losses, best, atol=1e-12)
        evaluated += tops[j].evaluated
    # the point: far fewer knockouts than nodes (one round of 512 covers a small graph)
    if n >= 2000:
        assert evaluated < 0.3 * n * len(roots)


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
