"""The gRPC API end to end over a real socket: every RPC of GraphService and RiskService,
rich error details, pagination, health, reflection and byte-for-byte reproducibility.

Each test starts an in-process ``grpc.aio`` server on 127.0.0.1 (any free port) over the
hand-computable ``tests/fixtures/small`` graph, whose numbers ``tests/test_engine.py`` works
out by hand. At the default top_k of 25 the structural sub-score is 4.0 / 25 × 100 = 16, so:
concentration 72.181818 (× .25 = 18.045455), structural 16 (× .3 = 4.8), geopolitical
39.181818 (× .25 = 9.795455), export control 65 (× .2 = 13); weighted sum 45.640910 below
the floor .8 × 72.181818 = 57.745455, hence floor uplift 12.104545.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import message as pb_message
from google.rpc import code_pb2, error_details_pb2
from google.type import date_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.scoring.assessment import RiskVector
from sovrisk.models.scoring.params import MODEL_VERSION
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    common_pb2,
    graph_pb2,
    graph_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
    scenario_pb2,
)
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.conftest import SMALL, DatasetCopy

ABS = 1e-6
SMALL_HASH = load_dataset(SMALL).content_hash
ALL_NODES = ["a", "b", "f1", "f2", "m1", "m2", "p", "t"]
RISK = "sovrisk.v1.RiskService"
GRAPH = "sovrisk.v1.GraphService"

# -- fixtures -------------------------------------------------------------------------------


async def _start(registry: GraphRegistry) -> RunningServer:
    return await start_server(registry, host="127.0.0.1", port=0)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await _start(GraphRegistry.from_directory(SMALL))
    try:
        yield running
    finally:
        await running.stop(grace=0)


def _channel(running: RunningServer) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")


@pytest_asyncio.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with _channel(server) as ch:
        yield ch


@pytest.fixture
def graph(channel: grpc.aio.Channel) -> graph_pb2_grpc.GraphServiceStub:
    return graph_pb2_grpc.GraphServiceStub(channel)


@pytest.fixture
def risk(channel: grpc.aio.Channel) -> risk_pb2_grpc.RiskServiceStub:
    return risk_pb2_grpc.RiskServiceStub(channel)


@pytest.fixture
def health(channel: grpc.aio.Channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


# -- helpers --------------------------------------------------------------------------------


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def unpack(error: grpc.aio.AioRpcError) -> dict[str, pb_message.Message]:
    """The rich ``google.rpc.Status`` details of an error, keyed by detail type name."""
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    assert status.code == error.code().value[0]
    assert status.message == error.details()
    found: dict[str, pb_message.Message] = {}
    for detail in status.details:
        for cls in (
            error_details_pb2.BadRequest,
            error_details_pb2.ErrorInfo,
            error_details_pb2.ResourceInfo,
            error_details_pb2.RetryInfo,
            error_details_pb2.PreconditionFailure,
        ):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                assert cls.__name__ not in found, f"two {cls.__name__} details"
                found[cls.__name__] = msg
    return found


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """INVALID_ARGUMENT with a BadRequest: the fields its violations name, in order."""
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
    details = unpack(error)
    bad_request = details["BadRequest"]
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "sovrisk.dev")
    for k, v in enumerate(bad_request.field_violations):
        assert v.description, v
        # The message names the first five (service/errors.py keeps errors small), then
        # "(and N more)".
        assert v.field in error.details() or (k >= 5 and "more)" in error.details()), v
    return [v.field for v in bad_request.field_violations]


def not_found_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    assert error.code() is grpc.StatusCode.NOT_FOUND, error
    details = unpack(error)
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    resource = details["ResourceInfo"]
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert resource.resource_name == info.metadata["resource_name"]
    assert "BadRequest" not in details
    return info


def date(text: str) -> date_pb2.Date:
    y, m, d = (int(p) for p in text.split("-"))
    return date_pb2.Date(year=y, month=m, day=d)


def iso(value: date_pb2.Date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def sub(a: risk_pb2.RiskAssessment | risk_pb2.ProviderScore, key: int) -> risk_pb2.SubScore:
    return next(s for s in a.sub_scores if s.key == key)


def adds_up(a: risk_pb2.RiskAssessment | risk_pb2.ProviderScore) -> None:
    total = math.fsum(s.contribution for s in a.sub_scores) + a.floor_uplift
    assert math.isclose(total, a.composite, rel_tol=0, abs_tol=1e-9)


def score(name: str = "providers/p", **kwargs: Any) -> risk_pb2.ScoreProviderRequest:
    return risk_pb2.ScoreProviderRequest(name=name, **kwargs)


# -- GraphService.GetGraph ------------------------------------------------------------------


async def test_get_graph(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    g = await graph.GetGraph(graph_pb2.GetGraphRequest(name="graph"))
    assert g.name == "graph"
    assert g.content_hash == SMALL_HASH and len(SMALL_HASH) == 64
    assert g.version_id == f"1+{SMALL_HASH[:12]}"
    assert g.dataset.name == "small fixture"
    assert g.dataset.version == "1"
    assert iso(g.dataset.as_of) == "2024-06-01"
    assert g.dataset.licence == "CC0"
    assert g.dataset.description.startswith("Two accelerators")
    # in NodeKind order; kinds with no node omitted; 5 countries (country_risk), 2 regimes
    assert [(k.kind, k.count) for k in g.kind_counts] == [
        (common_pb2.NODE_KIND_PROVIDER, 1),
        (common_pb2.NODE_KIND_ACCELERATOR, 2),
        (common_pb2.NODE_KIND_FOUNDRY_PROCESS, 2),
        (common_pb2.NODE_KIND_MEMORY, 2),
        (common_pb2.NODE_KIND_EQUIPMENT, 1),
        (common_pb2.NODE_KIND_COUNTRY, 5),
        (common_pb2.NODE_KIND_REGIME, 2),
    ]
    assert g.supply_edge_count == 10
    assert g.site_count == 8
    [source] = g.sources
    assert (source.id, source.title, source.publisher) == (
        "fixture",
        "Hand-made test fixture",
        "sovrisk tests",
    )
    assert source.quality == common_pb2.QUALITY_A
    # partial date "2024": month and day 0
    assert (source.publish_date.year, source.publish_date.month, source.publish_date.day) == (
        2024,
        0,
        0,
    )


@pytest.mark.parametrize("name", ["graphs/x", "", "Graph", "graph/"])
async def test_get_graph_rejects_other_names(
    graph: graph_pb2_grpc.GraphServiceStub, name: str
) -> None:
    error = await rpc_error(graph.GetGraph(graph_pb2.GetGraphRequest(name=name)))
    assert bad_fields(error) == ["name"]


# -- GraphService.ListNodes -----------------------------------------------------------------


async def test_list_nodes_every_node_ordered_by_id(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    reply = await graph.ListNodes(graph_pb2.ListNodesRequest())
    assert [n.name for n in reply.nodes] == [f"nodes/{i}" for i in ALL_NODES]
    assert reply.total_size == 8
    assert reply.next_page_token == ""
    f1 = next(n for n in reply.nodes if n.name == "nodes/f1")
    assert (f1.display_name, f1.kind, f1.owner, f1.hq_country, f1.layer) == (
        "Fab one",
        common_pb2.NODE_KIND_FOUNDRY_PROCESS,
        "FabOne",
        "TWN",
        "foundry",
    )
    assert list(f1.provenance.source_ids) == ["fixture"]
    t = next(n for n in reply.nodes if n.name == "nodes/t")
    assert list(t.tags) == ["euv"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (common_pb2.NODE_KIND_FOUNDRY_PROCESS, ["f1", "f2"]),
        (common_pb2.NODE_KIND_PROVIDER, ["p"]),
        (common_pb2.NODE_KIND_ACCELERATOR, ["a", "b"]),
        (common_pb2.NODE_KIND_EQUIPMENT, ["t"]),
        (common_pb2.NODE_KIND_PACKAGING, []),
        # countries and regimes are not listed as nodes
        (common_pb2.NODE_KIND_COUNTRY, []),
        (common_pb2.NODE_KIND_REGIME, []),
    ],
)
async def test_list_nodes_by_kind(
    graph: graph_pb2_grpc.GraphServiceStub, kind: int, expected: list[str]
) -> None:
    reply = await graph.ListNodes(graph_pb2.ListNodesRequest(kind=kind))
    assert [n.name for n in reply.nodes] == [f"nodes/{i}" for i in expected]
    assert reply.total_size == len(expected)
    assert all(n.kind == kind for n in reply.nodes)


@pytest.mark.parametrize(
    ("country", "kind", "expected"),
    [
        ("KOR", 0, ["f2", "m1"]),
        ("USA", 0, ["a", "b", "f2", "m2"]),
        ("TWN", 0, ["f1"]),
        ("USA", common_pb2.NODE_KIND_FOUNDRY_PROCESS, ["f2"]),
        ("KOR", common_pb2.NODE_KIND_EQUIPMENT, []),
        ("CHN", 0, []),  # a known country with no site matches no node
    ],
)
async def test_list_nodes_by_country(
    graph: graph_pb2_grpc.GraphServiceStub, country: str, kind: int, expected: list[str]
) -> None:
    reply = await graph.ListNodes(graph_pb2.ListNodesRequest(country=country, kind=kind))
    assert [n.name for n in reply.nodes] == [f"nodes/{i}" for i in expected]
    assert reply.total_size == len(expected)


async def test_list_nodes_pages_walk_every_node_once(
    graph: graph_pb2_grpc.GraphServiceStub,
) -> None:
    seen: list[str] = []
    sizes: list[int] = []
    token = ""
    for _ in range(10):
        reply = await graph.ListNodes(graph_pb2.ListNodesRequest(page_size=3, page_token=token))
        assert reply.total_size == 8
        seen += [n.name for n in reply.nodes]
        sizes.append(len(reply.nodes))
        token = reply.next_page_token
        if not token:
            break
    assert sizes == [3, 3, 2]
    assert seen == [f"nodes/{i}" for i in ALL_NODES]
    assert len(set(seen)) == 8


async def test_list_nodes_page_size_limits(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    big = await graph.ListNodes(graph_pb2.ListNodesRequest(page_size=5000))  # coerced to 1000
    assert len(big.nodes) == 8 and big.next_page_token == ""
    error = await rpc_error(graph.ListNodes(graph_pb2.ListNodesRequest(page_size=-1)))
    assert bad_fields(error) == ["page_size"]


@pytest.mark.parametrize("token", ["garbage!!", "bm90LWpzb24", "eyJvIjotMX0", "e30"])
async def test_list_nodes_rejects_foreign_page_tokens(
    graph: graph_pb2_grpc.GraphServiceStub, token: str
) -> None:
    # not base64 / not JSON / negative offset / empty object
    error = await rpc_error(graph.ListNodes(graph_pb2.ListNodesRequest(page_token=token)))
    assert bad_fields(error) == ["page_token"]


async def test_list_nodes_page_token_is_bound_to_the_filter(
    graph: graph_pb2_grpc.GraphServiceStub,
) -> None:
    first = await graph.ListNodes(graph_pb2.ListNodesRequest(page_size=3))
    assert first.next_page_token
    for other in (
        graph_pb2.ListNodesRequest(page_size=3, kind=common_pb2.NODE_KIND_FOUNDRY_PROCESS),
        graph_pb2.ListNodesRequest(page_size=3, country="USA"),
    ):
        other.page_token = first.next_page_token
        error = await rpc_error(graph.ListNodes(other))
        assert bad_fields(error) == ["page_token"]
        assert "different parameters" in error.details()
    # the same filter with the token still works
    again = await graph.ListNodes(
        graph_pb2.ListNodesRequest(page_size=3, page_token=first.next_page_token)
    )
    assert [n.name for n in again.nodes] == ["nodes/f2", "nodes/m1", "nodes/m2"]


async def test_page_token_is_bound_to_the_graph_version(
    server: RunningServer, graph: graph_pb2_grpc.GraphServiceStub, small_copy: DatasetCopy
) -> None:
    first = await graph.ListNodes(graph_pb2.ListNodesRequest(page_size=3))
    small_copy.replace("dataset.toml", 'version = "1"', 'version = "2"')
    server.registry.install(small_copy.load())
    g = await graph.GetGraph(graph_pb2.GetGraphRequest(name="graph"))
    assert g.version_id.startswith("2+")
    request = graph_pb2.ListNodesRequest(page_size=3, page_token=first.next_page_token)
    error = await rpc_error(graph.ListNodes(request))
    assert bad_fields(error) == ["page_token"]
    assert "graph version" in error.details()


@pytest.mark.parametrize("country", ["kor", "KO", "KORE", "12A"])
async def test_list_nodes_rejects_bad_countries(
    graph: graph_pb2_grpc.GraphServiceStub, country: str
) -> None:
    # Malformed codes are INVALID_ARGUMENT per graph.proto.
    error = await rpc_error(graph.ListNodes(graph_pb2.ListNodesRequest(country=country)))
    assert bad_fields(error) == ["country"]


async def test_list_nodes_well_formed_country_without_sites_is_empty(
    graph: graph_pb2_grpc.GraphServiceStub,
) -> None:
    reply = await graph.ListNodes(graph_pb2.ListNodesRequest(country="XXX"))
    assert list(reply.nodes) == [] and reply.total_size == 0


async def test_list_nodes_rejects_unknown_kind(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    error = await rpc_error(graph.ListNodes(graph_pb2.ListNodesRequest(kind=99)))
    assert bad_fields(error) == ["kind"]


# -- GraphService.GetNode -------------------------------------------------------------------


async def test_get_node_f2(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    node = await graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/f2"))
    assert node.name == "nodes/f2"
    assert (node.display_name, node.kind, node.owner, node.hq_country, node.layer) == (
        "Fab two",
        common_pb2.NODE_KIND_FOUNDRY_PROCESS,
        "FabTwo",
        "KOR",
        "foundry",
    )
    assert node.provenance.quality == common_pb2.QUALITY_A
    assert iso(node.provenance.as_of) == "2024-01-01"
    [supplier] = node.suppliers
    assert (supplier.category, supplier.node, supplier.display_name, supplier.kind) == (
        "lithography",
        "nodes/t",
        "Litho tool",
        common_pb2.NODE_KIND_EQUIPMENT,
    )
    assert supplier.share == 1.0
    assert (supplier.share_range.low, supplier.share_range.high) == (1.0, 1.0)
    [consumer] = node.consumers
    assert (consumer.category, consumer.node, consumer.share) == ("logic_die", "nodes/b", 0.5)
    assert consumer.kind == common_pb2.NODE_KIND_ACCELERATOR
    assert [(s.country, s.country_display_name, s.share) for s in node.sites] == [
        ("KOR", "Korea", 0.5),
        ("USA", "United States", 0.5),
    ]
    assert math.fsum(s.share for s in node.sites) == 1.0
    [source] = node.sources
    assert (source.id, source.title, source.quality) == (
        "fixture",
        "Hand-made test fixture",
        common_pb2.QUALITY_A,
    )


async def test_get_node_orders_links(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    b = await graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/b"))
    # by category, then share (largest first)
    assert [(x.category, x.node, x.share) for x in b.suppliers] == [
        ("logic_die", "nodes/f1", 0.5),
        ("logic_die", "nodes/f2", 0.5),
        ("memory", "nodes/m1", 1.0),
    ]
    assert [(s.country, s.share) for s in b.sites] == [("USA", 1.0)]
    f1 = await graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/f1"))
    # by consumer, then category
    assert [(x.node, x.category, x.share) for x in f1.consumers] == [
        ("nodes/a", "logic_die", 1.0),
        ("nodes/b", "logic_die", 0.5),
    ]
    t = await graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/t"))
    assert list(t.suppliers) == []  # a leaf
    assert [x.node for x in t.consumers] == ["nodes/f1", "nodes/f2"]


async def test_get_node_provider(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    p = await graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/p"))
    assert (p.kind, p.display_name, p.layer) == (
        common_pb2.NODE_KIND_PROVIDER,
        "Provider P",
        "provider",
    )
    fleet = [(x.category, x.node, x.share, x.share_range.low, x.share_range.high)
             for x in p.suppliers]  # fmt: skip
    # p -> a carries the range 0.5-0.7; p -> b has none (low = high = share)
    assert fleet == [("fleet", "nodes/a", 0.6, 0.5, 0.7), ("fleet", "nodes/b", 0.4, 0.4, 0.4)]
    assert all(x.provenance.quality == common_pb2.QUALITY_C for x in p.suppliers)
    assert list(p.consumers) == [] and list(p.sites) == []


async def test_every_link_resolves_with_get_node(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    for node_id in ALL_NODES:
        node = await graph.GetNode(graph_pb2.GetNodeRequest(name=f"nodes/{node_id}"))
        for link in (*node.suppliers, *node.consumers):
            assert link.node.startswith("nodes/"), (node.name, link.node)
            other = await graph.GetNode(graph_pb2.GetNodeRequest(name=link.node))
            assert other.display_name == link.display_name


async def test_get_node_not_found(graph: graph_pb2_grpc.GraphServiceStub) -> None:
    error = await rpc_error(graph.GetNode(graph_pb2.GetNodeRequest(name="nodes/zz")))
    info = not_found_info(error)
    assert (info.reason, info.domain) == ("NODE_NOT_FOUND", "sovrisk.dev")
    assert dict(info.metadata) == {"resource_type": "node", "resource_name": "nodes/zz"}
    resource = unpack(error)["ResourceInfo"]
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert resource.resource_type == "sovrisk.dev/Node"


@pytest.mark.parametrize("name", ["f2", "", "nodes/", "nodes/F2", "providers/p", "nodes/f2/x"])
async def test_get_node_bad_name(graph: graph_pb2_grpc.GraphServiceStub, name: str) -> None:
    error = await rpc_error(graph.GetNode(graph_pb2.GetNodeRequest(name=name)))
    assert bad_fields(error) == ["name"]


# -- RiskService.ScoreProvider --------------------------------------------------------------


@pytest_asyncio.fixture
async def assessment(risk: risk_pb2_grpc.RiskServiceStub) -> risk_pb2.RiskAssessment:
    return await risk.ScoreProvider(score())


async def test_score_provider_headline(assessment: risk_pb2.RiskAssessment) -> None:
    a = assessment
    assert (a.provider, a.display_name, a.home_country) == ("providers/p", "Provider P", "USA")
    # test_engine.py works the numbers out by hand: 18.045455 + 17.4 + 5.079681 + 11.333333
    assert a.composite == pytest.approx(51.858469, abs=ABS)
    assert a.band == risk_pb2.RISK_BAND_HIGH
    assert a.floor_alpha == 0.8
    assert a.floor_uplift == 0.0 and not a.floor_applied  # no sub-score >= 80
    assert a.critical_threshold == 80.0
    assert a.retained_capacity == pytest.approx(0.7, abs=ABS)  # us-chip binds .3
    assert a.horizon_weeks == 13.0
    assert not a.HasField("loss_units")  # no events in the fixture
    assert "higher means riskier" in a.score_interpretation
    assert "0-100" in a.score_interpretation


async def test_score_provider_sub_scores_add_up(assessment: risk_pb2.RiskAssessment) -> None:
    a = assessment
    got = [(s.key, s.score, s.weight, s.contribution) for s in a.sub_scores]
    expected = [
        (risk_pb2.SUB_SCORE_KEY_CONCENTRATION, 72.181818, 0.25, 18.045455),
        (risk_pb2.SUB_SCORE_KEY_STRUCTURAL, 58.0, 0.30, 17.4),
        (risk_pb2.SUB_SCORE_KEY_GEOPOLITICAL, 20.318725, 0.25, 5.079681),
        (risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL, 56.666667, 0.20, 11.333333),
        # no resilience or events data in the fixture: unavailable, weight 0
        (risk_pb2.SUB_SCORE_KEY_RESILIENCE, 0.0, 0.0, 0.0),
        (risk_pb2.SUB_SCORE_KEY_TAIL, 0.0, 0.0, 0.0),
    ]
    assert [s.data_missing for s in a.sub_scores] == [False] * 4 + [True] * 2
    assert [k for k, *_ in got] == [k for k, *_ in expected]  # SubScoreKey order
    for (_, s, w, c), (_, es, ew, ec) in zip(got, expected, strict=True):
        assert s == pytest.approx(es, abs=ABS)
        assert w == pytest.approx(ew, abs=1e-12)
        assert c == pytest.approx(ec, abs=ABS)
    assert all(s.explanation for s in a.sub_scores)
    assert math.fsum(s.weight for s in a.sub_scores) == pytest.approx(1.0, abs=1e-12)
    adds_up(a)
    # no critical sub-score: the composite is the weighted sum
    assert a.composite == pytest.approx(math.fsum(s.contribution for s in a.sub_scores))


async def test_score_provider_structural(assessment: risk_pb2.RiskAssessment) -> None:
    a = assessment
    got = [(i.node, i.impact) for i in a.structural_impacts]
    assert [n for n, _ in got] == [f"nodes/{i}" for i in ("t", "f1", "m1", "a", "b", "m2", "f2")]
    assert [v for _, v in got] == pytest.approx([1.0, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2], abs=ABS)
    assert [i.node for i in a.structural_impacts if i.is_spof] == ["nodes/t"]
    assert a.spof_count == 1
    t = a.structural_impacts[0]
    assert list(t.evidence_path) == ["providers/p", "nodes/a", "nodes/f1", "nodes/t"]
    assert (t.display_name, t.kind, t.aggregate_market) == (
        "Litho tool",
        common_pb2.NODE_KIND_EQUIPMENT,
        False,
    )
    m1 = next(i for i in a.structural_impacts if i.node == "nodes/m1")
    assert list(m1.evidence_path) == ["providers/p", "nodes/b", "nodes/m1"]


async def test_score_provider_countries_and_firms(assessment: risk_pb2.RiskAssessment) -> None:
    a = assessment
    # ranked by impact, ties by the provider's exposure there (USA .3 > NLD .1818)
    assert [(c.country, c.display_name) for c in a.country_impacts] == [
        ("USA", "United States"),
        ("NLD", "Netherlands"),
        ("TWN", "Taiwan"),
        ("KOR", "Korea"),
    ]
    assert [c.impact for c in a.country_impacts] == pytest.approx([1.0, 1.0, 0.8, 0.7], abs=ABS)
    assert [c.country_risk for c in a.country_impacts] == [30, 20, 60, 40]
    nld = a.country_impacts[1]
    assert list(nld.evidence_path) == [
        "providers/p",
        "nodes/a",
        "nodes/f1",
        "nodes/t",
        "countries/NLD",
    ]
    # blockades and curves: no buffers in the fixture, so every horizon is the long run
    usa = a.country_impacts[0]
    assert [v.horizon_weeks for v in usa.site_loss_curve] == [4, 13, 26, 52, 104]
    assert [v.value for v in usa.site_loss_curve] == pytest.approx([1.0] * 5)
    assert usa.long_run_impact == pytest.approx(1.0)
    geo = {c.country: c for c in a.geopolitical_contributions}
    # expected losses (governance events, test_engine.py): USA .0015, KOR .0014, TWN .0012,
    # NLD .001 of .0051
    assert [c.country for c in a.geopolitical_contributions] == ["USA", "KOR", "TWN", "NLD"]
    assert geo["USA"].exposure == pytest.approx(0.3, abs=ABS)
    assert geo["TWN"].expected_loss == pytest.approx(0.0012, abs=1e-12)
    assert geo["TWN"].contribution == pytest.approx(20.318725 * 0.0012 / 0.0051, abs=ABS)
    assert list(geo["TWN"].events) == ["governance:TWN"]
    assert a.geopolitical_expected_loss == pytest.approx(0.0051, abs=1e-12)
    geo_score = sub(a, risk_pb2.SUB_SCORE_KEY_GEOPOLITICAL).score
    total = math.fsum(c.contribution for c in a.geopolitical_contributions)
    assert total == pytest.approx(geo_score, abs=ABS)


async def test_score_provider_firm_impacts(assessment: risk_pb2.RiskAssessment) -> None:
    # one node per firm here, so firm impacts equal node impacts
    firms = [(f.firm, f.impact, list(f.nodes)) for f in assessment.firm_impacts]
    assert [f for f, *_ in firms] == [
        "ToolCo",
        "FabOne",
        "MemOne",
        "ChipCo A",
        "ChipCo B",
        "MemTwo",
        "FabTwo",
    ]
    assert [v for _, v, _ in firms] == pytest.approx([1.0, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2])
    assert firms[0][2] == ["nodes/t"]


async def test_score_provider_aggregate_market(small_copy: DatasetCopy) -> None:
    # tag the tool t as a whole commodity market: impact 1, reported, never a SPOF
    small_copy.replace("nodes.csv", "lithography,euv,", "lithography,euv;aggregate_market,")
    running = await _start(GraphRegistry.from_directory(small_copy.path))
    try:
        async with _channel(running) as ch:
            a = await risk_pb2_grpc.RiskServiceStub(ch).ScoreProvider(score())
    finally:
        await running.stop(grace=0)
    t = next(i for i in a.structural_impacts if i.node == "nodes/t")
    assert t.impact == pytest.approx(1.0) and not t.is_spof and a.spof_count == 0
    assert t.aggregate_market


async def test_score_provider_export_controls(assessment: risk_pb2.RiskAssessment) -> None:
    a = assessment
    regimes = {r.regime: r for r in a.regimes}
    assert [r.regime for r in a.regimes] == ["regimes/us-chip", "regimes/nl-euv"]
    us = regimes["regimes/us-chip"]
    assert (us.display_name, us.issuer, us.citation) == ("US chip rule", "USA", "US 1")
    assert us.in_force and us.binds_provider
    assert us.veto == pytest.approx(0.3, abs=ABS)
    assert us.reached_node_count == 1
    assert (iso(us.effective_from), iso(us.effective_to)) == ("2024-01-01", "2025-01-01")
    nl = regimes["regimes/nl-euv"]
    assert nl.in_force and not nl.binds_provider and nl.veto == 0.0
    assert iso(nl.effective_from) == "2023-09-01"
    assert not nl.HasField("effective_to")  # open-ended
    assert a.bound_now == pytest.approx(0.3, abs=ABS)
    vetoes = [(j.country, j.veto, j.foreign) for j in a.jurisdictions]
    assert vetoes == [
        ("USA", pytest.approx(1.0), False),
        ("NLD", pytest.approx(1.0), True),
        ("TWN", pytest.approx(0.8), True),
        ("KOR", pytest.approx(0.7), True),
    ]
    assert a.HasField("largest_foreign_veto")
    assert (a.largest_foreign_veto.country, a.largest_foreign_veto.foreign) == ("NLD", True)
    assert a.jurisdictions_over_half == 3


async def test_score_provider_layers(assessment: risk_pb2.RiskAssessment) -> None:
    layers = {lc.layer: lc for lc in assessment.layers}
    assert [lc.layer for lc in assessment.layers] == sorted(layers)
    assert set(layers) == {"accelerator", "foundry", "memory", "lithography"}
    foundry = layers["foundry"]
    assert (foundry.firm_hhi, foundry.country_hhi) == pytest.approx((6800, 6600), abs=ABS)
    assert foundry.weight == pytest.approx(0.20 / 0.55, abs=1e-12)
    assert (foundry.firm_cr1.key, foundry.firm_cr1.share) == ("FabOne", pytest.approx(0.8))
    assert (foundry.country_cr1.key, foundry.country_cr1.display_name) == ("TWN", "Taiwan")
    assert foundry.cr1_over_65
    assert [b.reference for b in foundry.firm_bands] == [
        risk_pb2.HHI_BAND_REFERENCE_DOJ_2010,
        risk_pb2.HHI_BAND_REFERENCE_DOJ_2023,
        risk_pb2.HHI_BAND_REFERENCE_EU_2021,
    ]
    assert [b.label for b in foundry.firm_bands] == [
        "highly concentrated",
        "highly concentrated",
        "strategic dependency",
    ]
    assert all(b.citation and b.threshold for b in foundry.firm_bands)
    assert [(s.key, s.share) for s in foundry.country_shares] == [
        ("TWN", pytest.approx(0.8)),
        ("KOR", pytest.approx(0.1)),
        ("USA", pytest.approx(0.1)),
    ]
    assert math.fsum(lc.weight for lc in assessment.layers) == pytest.approx(1.0)


async def test_score_provider_checks_and_coverage(assessment: risk_pb2.RiskAssessment) -> None:
    a = assessment
    fail, ok, unsure = (
        risk_pb2.CHECK_STATUS_FAIL,
        risk_pb2.CHECK_STATUS_PASS,
        risk_pb2.CHECK_STATUS_INCONCLUSIVE,
    )
    assert {c.id: c.status for c in a.checks} == {
        "structural.spof": fail,
        "structural.near_spof": ok,
        "concentration.accelerator": fail,
        "concentration.foundry": fail,
        "concentration.lithography": fail,
        "concentration.memory": fail,
        "concentration.category.fleet": fail,
        "concentration.category.lithography": fail,
        "concentration.category.logic_die": fail,
        "concentration.category.memory": fail,
        "geopolitical.country_impact": fail,
        "export_control.in_force": fail,
        "export_control.foreign_veto": fail,
        "data.quality": ok,
        "data.layers": unsure,
        "resilience.tts_vs_ttr": unsure,
        "tail.annual_loss": unsure,
    }
    checks = {c.id: c for c in a.checks}
    spof = checks["structural.spof"]
    assert list(spof.evidence_path) == ["providers/p", "nodes/a", "nodes/f1", "nodes/t"]
    assert spof.observed == 1.0
    in_force = checks["export_control.in_force"]
    assert list(in_force.evidence_path) == ["regimes/us-chip", "providers/p", "nodes/a"]
    assert (in_force.observed, in_force.threshold) == (pytest.approx(0.3), pytest.approx(0.1))
    assert list(checks["geopolitical.country_impact"].evidence_path)[-1] == "countries/USA"
    assert all(c.title and c.reason and c.remediation for c in a.checks)
    cov = a.coverage
    assert (cov.flow_share_a, cov.flow_share_b, cov.flow_share_c) == pytest.approx(
        (0.6, 0.15, 0.25)
    )
    assert cov.low_quality_flow_share == pytest.approx(0.25)
    assert (cov.edges_total, cov.edges_with_range, cov.nodes_total) == (10, 1, 7)
    assert cov.notes


async def test_score_provider_provenance_and_vector(assessment: risk_pb2.RiskAssessment) -> None:
    prov = assessment.provenance
    assert prov.model_version == MODEL_VERSION
    assert (prov.dataset_name, prov.dataset_version) == ("small fixture", f"1+{SMALL_HASH[:12]}")
    assert prov.dataset_hash == SMALL_HASH
    assert iso(prov.as_of) == "2024-06-01"
    assert prov.seed == 0
    params = dict(prov.parameters)
    assert params["top_k"] == "25"
    assert params["as_of"] == "2024-06-01"
    assert params["alpha"] == "0.8"
    # the parameters as given (the published defaults); the effective weights, renormalised
    # over the sub-scores with data, are on the sub-scores
    assert {k: float(v) for k, v in params.items() if k.startswith("weights.")} == {
        "weights.concentration": 0.2,
        "weights.structural": 0.24,
        "weights.geopolitical": 0.2,
        "weights.export_control": 0.16,
        "weights.resilience": 0.1,
        "weights.tail": 0.1,
    }
    assert any(k.startswith("layer_weights.") for k in params)

    text = assessment.risk_vector
    scores = "S:51.9/CO:72.2/ST:58.0/GE:20.3/EX:56.7/RE:-/TA:-"
    assert text == f"SOVRISK:2/P:p/{scores}/D:2024-06-01/H:{SMALL_HASH[:12]}"
    vector = RiskVector.parse(text)
    assert (vector.provider, vector.composite) == ("p", 51.9)
    assert vector.as_of.isoformat() == "2024-06-01"
    assert vector.dataset_hash_prefix == SMALL_HASH[:12]
    assert dict(vector.sub_scores)["export_control"] == 56.7


async def test_score_provider_before_any_regime(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    a = await risk.ScoreProvider(score(as_of=date("2023-06-01")))
    # 100 × (.5 × bound 0 + .5 × mean foreign veto (1 + .8 + .7) / 3) = 41.666667
    assert sub(a, risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL).score == pytest.approx(41.666667, abs=ABS)
    assert sub(a, risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL).contribution == pytest.approx(
        8.333333, abs=ABS
    )
    assert not any(r.in_force and r.binds_provider for r in a.regimes)
    assert not any(r.in_force for r in a.regimes)  # nl-euv starts 2023-09-01
    assert all(r.veto == 0.0 for r in a.regimes)
    assert a.bound_now == 0.0
    checks = {c.id: c.status for c in a.checks}
    assert checks["export_control.in_force"] == risk_pb2.CHECK_STATUS_PASS
    assert a.composite == pytest.approx(48.858469, abs=ABS)  # 51.858469 - 3: export only
    assert a.floor_uplift == 0.0
    adds_up(a)
    assert iso(a.provenance.as_of) == "2023-06-01"
    assert a.provenance.parameters["as_of"] == "2023-06-01"
    assert RiskVector.parse(a.risk_vector).as_of.isoformat() == "2023-06-01"
    assert "/EX:41.7/" in a.risk_vector


@pytest.mark.parametrize(
    ("day", "us_chip", "export"),
    [
        ("2023-12-31", False, 41.666667),
        ("2024-01-01", True, 56.666667),
        ("2025-01-01", False, 41.666667),
    ],
)
async def test_score_provider_regime_window(
    risk: risk_pb2_grpc.RiskServiceStub, day: str, us_chip: bool, export: float
) -> None:
    a = await risk.ScoreProvider(score(as_of=date(day)))
    us = next(r for r in a.regimes if r.regime == "regimes/us-chip")
    assert us.in_force is us_chip
    assert us.veto == pytest.approx(0.3 if us_chip else 0.0, abs=ABS)
    assert sub(a, risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL).score == pytest.approx(export, abs=ABS)


async def test_score_provider_weight_override(
    risk: risk_pb2_grpc.RiskServiceStub, assessment: risk_pb2.RiskAssessment
) -> None:
    weights = risk_pb2.ScoringWeights(structural=1.0)
    assert [f.name for f, _ in weights.ListFields()] == ["structural"]  # only that one set
    a = await risk.ScoreProvider(score(weights=weights))
    # defaults .20/.24/.20/.16/.10/.10 with structural -> 1.0 (total 1.76); without
    # resilience and tail data the four left renormalise over .20 + 1 + .20 + .16 = 1.56
    expected = {
        risk_pb2.SUB_SCORE_KEY_CONCENTRATION: 0.20 / 1.56,
        risk_pb2.SUB_SCORE_KEY_STRUCTURAL: 1.0 / 1.56,
        risk_pb2.SUB_SCORE_KEY_GEOPOLITICAL: 0.20 / 1.56,
        risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL: 0.16 / 1.56,
        risk_pb2.SUB_SCORE_KEY_RESILIENCE: 0.0,
        risk_pb2.SUB_SCORE_KEY_TAIL: 0.0,
    }
    assert {s.key: s.weight for s in a.sub_scores} == pytest.approx(expected, abs=1e-12)
    params = dict(a.provenance.parameters)
    assert float(params["weights.structural"]) == pytest.approx(1.0 / 1.76, abs=1e-12)
    assert float(params["weights.concentration"]) == pytest.approx(0.20 / 1.76, abs=1e-12)
    # sub-scores themselves do not move; contributions and the floor uplift do
    for s in a.sub_scores:
        assert s.score == sub(assessment, s.key).score
        assert s.contribution == pytest.approx(s.weight * s.score, abs=ABS)
    structural = sub(a, risk_pb2.SUB_SCORE_KEY_STRUCTURAL)
    assert structural.contribution == pytest.approx(58.0 / 1.56, abs=ABS)
    # weighted sum (.2 x 72.181818 + 58 + .2 x 20.318725 + .16 x 56.666667) / 1.56
    #            = 85.566776 / 1.56 = 54.850497; no sub-score is critical: no floor
    assert a.composite == pytest.approx(85.566776 / 1.56, abs=2e-6)
    assert a.floor_uplift == 0.0
    adds_up(a)
    assert a != assessment
    assert a.SerializeToString(deterministic=True) != assessment.SerializeToString(
        deterministic=True
    )


async def test_score_provider_weight_override_without_floor(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    # only export control weighted: the composite is its 56.666667 (no critical sub-score)
    zeros = {"concentration": 0.0, "structural": 0.0, "geopolitical": 0.0}
    a = await risk.ScoreProvider(
        score(weights=risk_pb2.ScoringWeights(export_control=0.5, **zeros))
    )
    assert sub(a, risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL).weight == 1.0
    assert a.composite == pytest.approx(56.666667, abs=ABS)
    assert a.floor_uplift == 0.0
    assert a.band == risk_pb2.RISK_BAND_HIGH
    adds_up(a)


@pytest.mark.parametrize("name", ["providers/nobody", "providers/a", "providers/t"])
async def test_score_provider_not_found(risk: risk_pb2_grpc.RiskServiceStub, name: str) -> None:
    # a supply node is not a provider
    error = await rpc_error(risk.ScoreProvider(score(name)))
    info = not_found_info(error)
    assert (info.reason, info.domain) == ("PROVIDER_NOT_FOUND", "sovrisk.dev")
    assert info.metadata["resource_name"] == name
    assert info.metadata["resource_type"] == "provider"


@pytest.mark.parametrize("name", ["p", "", "nodes/p", "providers/", "providers/P"])
async def test_score_provider_bad_name(risk: risk_pb2_grpc.RiskServiceStub, name: str) -> None:
    error = await rpc_error(risk.ScoreProvider(score(name)))
    assert bad_fields(error) == ["name"]


@pytest.mark.parametrize(
    "as_of",
    [
        date_pb2.Date(year=2025, month=2, day=30),
        date_pb2.Date(year=2024, month=13, day=1),
        date_pb2.Date(year=2024, month=0, day=0),  # partial: year only
        date_pb2.Date(year=2024, month=6, day=0),  # partial: year and month
        date_pb2.Date(year=0, month=6, day=1),
    ],
)
async def test_score_provider_bad_as_of(
    risk: risk_pb2_grpc.RiskServiceStub, as_of: date_pb2.Date
) -> None:
    error = await rpc_error(risk.ScoreProvider(score(as_of=as_of)))
    assert bad_fields(error) == ["as_of"]


async def test_score_provider_bad_as_of_names_the_value(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    bad_date = date_pb2.Date(year=2025, month=2, day=30)
    error = await rpc_error(risk.ScoreProvider(score(as_of=bad_date)))
    info = unpack(error)["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["as_of"] == "2025-02-30"
    assert "2025-02-30" in error.details()


@pytest.mark.parametrize("value", [-0.5, 1.5, math.nan, math.inf, -math.inf])
async def test_score_provider_bad_weight(risk: risk_pb2_grpc.RiskServiceStub, value: float) -> None:
    weights = risk_pb2.ScoringWeights(structural=value)
    error = await rpc_error(risk.ScoreProvider(score(weights=weights)))
    assert bad_fields(error) == ["weights.structural"]


async def test_score_provider_all_zero_weights(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    weights = risk_pb2.ScoringWeights(
        concentration=0.0, structural=0.0, geopolitical=0.0, export_control=0.0
    )
    error = await rpc_error(risk.ScoreProvider(score(weights=weights)))
    assert bad_fields(error) == ["weights"]


async def test_score_provider_reports_every_violation(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    request = score(
        as_of=date_pb2.Date(year=2025, month=2, day=30),
        weights=risk_pb2.ScoringWeights(structural=-0.5),
    )
    error = await rpc_error(risk.ScoreProvider(request))
    assert sorted(bad_fields(error)) == ["as_of", "weights.structural"]
    request.weights.geopolitical = math.nan
    error = await rpc_error(risk.ScoreProvider(request))
    assert sorted(bad_fields(error)) == ["as_of", "weights.geopolitical", "weights.structural"]


async def test_concurrent_scores_are_consistent(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    days = ["2023-06-01", "2024-06-01"] * 8
    results = await asyncio.gather(*(risk.ScoreProvider(score(as_of=date(d))) for d in days))
    for day, a in zip(days, results, strict=True):
        export = sub(a, risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL).score
        assert export == pytest.approx(41.666667 if day.startswith("2023") else 56.666667, abs=ABS)
        assert iso(a.provenance.as_of) == day


# -- RiskService.ListProviderScores ---------------------------------------------------------


async def test_list_provider_scores(
    risk: risk_pb2_grpc.RiskServiceStub, assessment: risk_pb2.RiskAssessment
) -> None:
    reply = await risk.ListProviderScores(risk_pb2.ListProviderScoresRequest())
    assert reply.total_size == 1 and reply.next_page_token == ""
    [row] = reply.provider_scores
    assert (row.provider, row.display_name, row.rank, row.home_country) == (
        "providers/p",
        "Provider P",
        1,
        "USA",
    )
    assert row.composite == assessment.composite
    assert row.band == risk_pb2.RISK_BAND_HIGH
    assert list(row.sub_scores) == list(assessment.sub_scores)
    assert row.floor_uplift == assessment.floor_uplift
    assert row.risk_vector == assessment.risk_vector
    adds_up(row)
    assert reply.provenance == assessment.provenance
    assert reply.provenance.dataset_hash == SMALL_HASH
    assert "higher means riskier" in reply.score_interpretation


async def test_list_provider_scores_as_of_and_errors(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    reply = await risk.ListProviderScores(
        risk_pb2.ListProviderScoresRequest(as_of=date("2023-06-01"))
    )
    [row] = reply.provider_scores
    assert sub(row, risk_pb2.SUB_SCORE_KEY_EXPORT_CONTROL).score == pytest.approx(41.666667)
    assert iso(reply.provenance.as_of) == "2023-06-01"
    for request, fields in [
        (risk_pb2.ListProviderScoresRequest(page_size=-1), ["page_size"]),
        (risk_pb2.ListProviderScoresRequest(page_token="nope"), ["page_token"]),
        (risk_pb2.ListProviderScoresRequest(as_of=date_pb2.Date(year=2024, month=2, day=30)),
         ["as_of"]),
        (risk_pb2.ListProviderScoresRequest(weights=risk_pb2.ScoringWeights(geopolitical=2)),
         ["weights.geopolitical"]),
    ]:  # fmt: skip
        error = await rpc_error(risk.ListProviderScores(request))
        assert bad_fields(error) == fields


PROVIDER_Q = "q,provider,Provider Q,Q Corp,KOR,provider,,A,fixture,2024-01-01,"


@pytest_asyncio.fixture
async def two_providers(small_copy: DatasetCopy) -> AsyncIterator[risk_pb2_grpc.RiskServiceStub]:
    """The small fixture plus provider q (KOR), whose whole fleet is chip b."""
    small_copy.append("nodes.csv", PROVIDER_Q)
    small_copy.append("edges.csv", "q,fleet,b,1,,,A,fixture,2024-01-01,")
    running = await _start(GraphRegistry.from_directory(small_copy.path))
    try:
        async with _channel(running) as ch:
            yield risk_pb2_grpc.RiskServiceStub(ch)
    finally:
        await running.stop(grace=0)


async def test_list_provider_scores_pages(
    two_providers: risk_pb2_grpc.RiskServiceStub,
) -> None:
    risk = two_providers
    full = await risk.ListProviderScores(risk_pb2.ListProviderScoresRequest())
    assert full.total_size == 2
    assert [r.rank for r in full.provider_scores] == [1, 2]
    composites = [r.composite for r in full.provider_scores]
    assert composites == sorted(composites, reverse=True)  # riskiest first
    assert {r.provider for r in full.provider_scores} == {"providers/p", "providers/q"}
    for row in full.provider_scores:
        single = await risk.ScoreProvider(score(row.provider))
        assert single.composite == row.composite and single.risk_vector == row.risk_vector
        adds_up(row)

    first = await risk.ListProviderScores(risk_pb2.ListProviderScoresRequest(page_size=1))
    assert first.total_size == 2 and first.next_page_token
    second = await risk.ListProviderScores(
        risk_pb2.ListProviderScoresRequest(page_size=1, page_token=first.next_page_token)
    )
    assert second.next_page_token == ""
    paged = [*first.provider_scores, *second.provider_scores]
    assert [(r.provider, r.rank) for r in paged] == [
        (r.provider, r.rank) for r in full.provider_scores
    ]
    # the rank is over the whole ranking, not the page
    assert second.provider_scores[0].rank == 2
    # a token is bound to the date and weights it was issued for
    for other in (
        risk_pb2.ListProviderScoresRequest(page_size=1, as_of=date("2023-06-01")),
        risk_pb2.ListProviderScoresRequest(
            page_size=1, weights=risk_pb2.ScoringWeights(structural=1.0)
        ),
    ):
        other.page_token = first.next_page_token
        error = await rpc_error(risk.ListProviderScores(other))
        assert bad_fields(error) == ["page_token"]


# -- RiskService.ListChokepoints ------------------------------------------------------------

NODE, FIRM, COUNTRY = (
    risk_pb2.CHOKEPOINT_KIND_NODE,
    risk_pb2.CHOKEPOINT_KIND_FIRM,
    risk_pb2.CHOKEPOINT_KIND_COUNTRY,
)


async def test_list_chokepoints_default(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    reply = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest())
    points = list(reply.chokepoints)
    # 7 nodes + 7 firms + 4 countries; the provider itself is never a chokepoint
    assert reply.total_size == 18 == len(points) and reply.next_page_token == ""
    assert {c.chokepoint_kind for c in points} == {NODE, FIRM, COUNTRY}
    assert "nodes/p" not in {c.name for c in points}
    assert [c.rank for c in points] == list(range(1, 19))
    # most providers cut first, then by mean impact descending
    keys = [(-c.providers_cut, -c.mean_impact) for c in points]
    assert keys == sorted(keys)
    by_name = {c.name: c for c in points}
    t = by_name["nodes/t"]
    assert t.rank <= 4  # tied at the top with NLD, USA and ToolCo (cut 1, impact 1)
    assert (t.providers_cut, t.max_impact, t.mean_impact) == (1, 1.0, 1.0)
    assert (t.display_name, t.node_kind) == ("Litho tool", common_pb2.NODE_KIND_EQUIPMENT)
    assert [(i.provider, i.display_name, i.impact) for i in t.provider_impacts] == [
        ("providers/p", "Provider P", 1.0)
    ]
    assert {c.name for c in points[:4]} == {
        "nodes/t",
        "countries/NLD",
        "countries/USA",
        "firms/toolco",
    }
    # default min_impact .5: a (.6) cuts p, b (.4) does not
    assert (by_name["nodes/a"].providers_cut, by_name["nodes/b"].providers_cut) == (1, 0)
    assert by_name["firms/chipco-a"].display_name == "ChipCo A"
    assert by_name["countries/TWN"].max_impact == pytest.approx(0.8, abs=ABS)
    assert reply.provenance.dataset_hash == SMALL_HASH
    assert iso(reply.provenance.as_of) == "2024-06-01"
    assert "higher = riskier" in reply.score_interpretation


async def test_list_chokepoints_countries(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    reply = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(kind=COUNTRY))
    got = [(c.rank, c.name, c.display_name, c.max_impact) for c in reply.chokepoints]
    assert got == [
        (1, "countries/NLD", "Netherlands", pytest.approx(1.0)),
        (2, "countries/USA", "United States", pytest.approx(1.0)),
        (3, "countries/TWN", "Taiwan", pytest.approx(0.8)),
        (4, "countries/KOR", "Korea", pytest.approx(0.7)),
    ]
    assert reply.total_size == 4
    assert all(c.chokepoint_kind == COUNTRY for c in reply.chokepoints)
    assert all(c.node_kind == common_pb2.NODE_KIND_COUNTRY for c in reply.chokepoints)
    assert all(c.providers_cut == 1 for c in reply.chokepoints)


async def test_list_chokepoints_nodes_and_firms(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    nodes = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(kind=NODE))
    assert [c.name for c in nodes.chokepoints] == [
        f"nodes/{i}" for i in ("t", "f1", "m1", "a", "b", "m2", "f2")
    ]
    assert [c.max_impact for c in nodes.chokepoints] == pytest.approx(
        [1.0, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2], abs=ABS
    )
    assert [c.providers_cut for c in nodes.chokepoints] == [1, 1, 1, 1, 0, 0, 0]
    firms = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(kind=FIRM))
    assert [c.name for c in firms.chokepoints] == [
        "firms/toolco",
        "firms/fabone",
        "firms/memone",
        "firms/chipco-a",
        "firms/chipco-b",
        "firms/memtwo",
        "firms/fabtwo",
    ]
    assert all(c.chokepoint_kind == FIRM for c in firms.chokepoints)


async def test_list_chokepoints_min_impact(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    reply = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(kind=NODE, min_impact=1.0))
    cut = {c.name: c.providers_cut for c in reply.chokepoints}
    assert cut["nodes/t"] == 1 and cut["nodes/f1"] == 0
    assert reply.chokepoints[0].name == "nodes/t"
    low = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(kind=NODE, min_impact=0.2))
    assert all(c.providers_cut == 1 for c in low.chokepoints)


@pytest.mark.parametrize("value", [1.5, -1.0, -0.1, math.nan, math.inf])
async def test_list_chokepoints_bad_min_impact(
    risk: risk_pb2_grpc.RiskServiceStub, value: float
) -> None:
    error = await rpc_error(risk.ListChokepoints(risk_pb2.ListChokepointsRequest(min_impact=value)))
    assert bad_fields(error) == ["min_impact"]


async def test_list_chokepoints_other_errors(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    for request, fields in [
        (risk_pb2.ListChokepointsRequest(kind=99), ["kind"]),
        (risk_pb2.ListChokepointsRequest(page_size=-2), ["page_size"]),
        (risk_pb2.ListChokepointsRequest(page_token="x"), ["page_token"]),
        (risk_pb2.ListChokepointsRequest(as_of=date_pb2.Date(year=2024, month=2, day=31)),
         ["as_of"]),
    ]:  # fmt: skip
        error = await rpc_error(risk.ListChokepoints(request))
        assert bad_fields(error) == fields


async def test_list_chokepoints_pages(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    full = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest())
    seen: list[tuple[int, str]] = []
    token = ""
    pages = 0
    while True:
        reply = await risk.ListChokepoints(
            risk_pb2.ListChokepointsRequest(page_size=5, page_token=token)
        )
        assert reply.total_size == 18
        seen += [(c.rank, c.name) for c in reply.chokepoints]
        pages += 1
        token = reply.next_page_token
        if not token or pages > 10:
            break
    assert pages == 4  # 5 + 5 + 5 + 3
    assert seen == [(c.rank, c.name) for c in full.chokepoints]
    first = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(page_size=5))
    for other in (
        risk_pb2.ListChokepointsRequest(page_size=5, min_impact=0.9),
        risk_pb2.ListChokepointsRequest(page_size=5, kind=NODE),
    ):
        other.page_token = first.next_page_token
        error = await rpc_error(risk.ListChokepoints(other))
        assert bad_fields(error) == ["page_token"]


async def test_list_chokepoints_ties_are_ordered_by_name(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    reply = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest())
    keys = [(-c.providers_cut, -round(c.mean_impact, 9), c.name) for c in reply.chokepoints]
    assert keys == sorted(keys)


async def test_list_chokepoints_provenance_names_min_impact(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    reply = await risk.ListChokepoints(risk_pb2.ListChokepointsRequest(min_impact=0.7))
    params = dict(reply.provenance.parameters)
    assert "min_impact" in params, sorted(params)
    assert float(params["min_impact"]) == 0.7


# -- health, reflection, readiness ----------------------------------------------------------


async def test_health_serving_after_start(health: health_pb2_grpc.HealthStub) -> None:
    for service in ("", RISK, GRAPH):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    error = await rpc_error(health.Check(health_pb2.HealthCheckRequest(service="no.Such")))
    assert error.code() is grpc.StatusCode.NOT_FOUND


async def test_health_follows_set_serving(
    server: RunningServer, health: health_pb2_grpc.HealthStub
) -> None:
    await server.set_serving(False)
    for service in ("", RISK, GRAPH):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING, service
    await server.set_serving(True)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=RISK))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_stop_reports_not_serving_before_draining() -> None:
    running = await _start(GraphRegistry.from_directory(SMALL))
    stopper: asyncio.Task[None] | None = None
    try:
        async with _channel(running) as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest())
            first = await asyncio.wait_for(watch.read(), 5)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            stopper = asyncio.create_task(running.stop(grace=2.0))
            second = await asyncio.wait_for(watch.read(), 5)
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        await asyncio.wait_for(stopper, 5)
    finally:
        if stopper is None:
            await running.stop(grace=0)
    # once stopped, nothing answers
    async with _channel(running) as ch:
        error = await rpc_error(
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
        )
        assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_not_ready_until_a_graph_is_installed() -> None:
    registry = GraphRegistry()
    running = await _start(registry)
    try:
        async with _channel(running) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=RISK))
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            graph = graph_pb2_grpc.GraphServiceStub(ch)
            error = await rpc_error(graph.GetGraph(graph_pb2.GetGraphRequest(name="graph")))
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            status = rpc_status.from_call(error)
            assert status is not None and status.code == code_pb2.UNAVAILABLE
            info = unpack(error)["ErrorInfo"]
            assert isinstance(info, error_details_pb2.ErrorInfo)
            assert (info.reason, info.domain) == ("GRAPH_NOT_LOADED", "sovrisk.dev")

            registry.install(load_dataset(SMALL))
            await running.set_serving(True)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=RISK))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            g = await graph.GetGraph(graph_pb2.GetGraphRequest(name="graph"))
            assert g.content_hash == SMALL_HASH
    finally:
        await running.stop(grace=0)


async def test_reflection_lists_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=RISK),
    ]
    replies = [r async for r in stub.ServerReflectionInfo(iter(requests))]
    assert len(replies) == 2
    names = {s.name for s in replies[0].list_services_response.service}
    assert {
        GRAPH,
        RISK,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    files = replies[1].file_descriptor_response.file_descriptor_proto
    assert files, replies[1]


# -- reproducibility ------------------------------------------------------------------------

CALLS: list[tuple[str, pb_message.Message]] = [
    (f"/{GRAPH}/GetGraph", graph_pb2.GetGraphRequest(name="graph")),
    (f"/{GRAPH}/ListNodes", graph_pb2.ListNodesRequest(page_size=3)),
    (f"/{GRAPH}/GetNode", graph_pb2.GetNodeRequest(name="nodes/f2")),
    (f"/{RISK}/ScoreProvider", risk_pb2.ScoreProviderRequest(name="providers/p")),
    (
        f"/{RISK}/ScoreProvider",
        risk_pb2.ScoreProviderRequest(
            name="providers/p",
            as_of=date_pb2.Date(year=2023, month=6, day=1),
            weights=risk_pb2.ScoringWeights(structural=1.0),
        ),
    ),
    (f"/{RISK}/ListProviderScores", risk_pb2.ListProviderScoresRequest()),
    (f"/{RISK}/ListChokepoints", risk_pb2.ListChokepointsRequest(min_impact=0.7)),
]


async def _raw(ch: grpc.aio.Channel, method: str, request: pb_message.Message) -> bytes:
    """The response exactly as it came over the wire (no deserializer)."""
    call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
    reply: bytes = await call(request.SerializeToString())
    return reply


@pytest.mark.parametrize(("method", "request_"), CALLS, ids=[m.rsplit("/", 1)[1] for m, _ in CALLS])
async def test_same_request_same_bytes(
    channel: grpc.aio.Channel, method: str, request_: pb_message.Message
) -> None:
    first = await _raw(channel, method, request_)
    second = await _raw(channel, method, request_)
    assert first and first == second
    # and a fresh server over a fresh load of the same data answers byte for byte the same
    other = await _start(GraphRegistry.from_directory(SMALL))
    try:
        async with _channel(other) as ch:
            assert await _raw(ch, method, request_) == first
    finally:
        await other.stop(grace=0)


# -- RunScenario ------------------------------------------------------------------------------


async def test_run_scenario_country_blockade(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    # tests/test_scenario.py: TWN lost -> available .7 -> .2, 12 weeks -> 6 supply-weeks
    request = risk_pb2.RunScenarioRequest(
        display_name="TWN blockade",
        perturbations=[
            scenario_pb2.Perturbation(
                country=scenario_pb2.CountryDegradation(country="TWN", duration_weeks=12)
            )
        ],
    )
    reply = await risk.RunScenario(request)
    assert reply.display_name == "TWN blockade"
    assert iso(reply.as_of) == "2024-06-01"
    [outcome] = reply.outcomes
    assert outcome.provider == "providers/p"
    assert outcome.available_baseline == pytest.approx(0.7, abs=1e-9)
    assert outcome.available_scenario == pytest.approx(0.2, abs=1e-9)
    assert outcome.lost_supply_weeks == pytest.approx(6.0, abs=1e-9)
    capacity = next(d for d in outcome.deltas if d.quantity == "available_capacity")
    assert capacity.delta == pytest.approx(-0.5, abs=1e-9)
    assert [d.perturbation_index for d in capacity.drivers] == [0]
    assert "higher means riskier" in reply.score_interpretation
    assert reply.provenance.dataset_hash


async def test_run_scenario_share_override_changes_version(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    request = risk_pb2.RunScenarioRequest(
        perturbations=[
            scenario_pb2.Perturbation(
                share=scenario_pb2.ShareOverride(
                    consumer="nodes/p", category="fleet", supplier="nodes/b", share=0.7
                )
            )
        ],
        providers=["providers/p"],
    )
    reply = await risk.RunScenario(request)
    assert reply.scenario_version != reply.baseline_version
    assert reply.outcomes[0].available_scenario == pytest.approx(0.85, abs=1e-9)
    assert reply.outcomes[0].scenario_risk_vector != reply.outcomes[0].baseline_risk_vector


async def test_run_scenario_errors_name_proto_fields(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    request = risk_pb2.RunScenarioRequest(
        perturbations=[
            scenario_pb2.Perturbation(
                node=scenario_pb2.NodeDegradation(node="nodes/zz", fraction_lost=1.5)
            ),
            scenario_pb2.Perturbation(
                activate_regime=scenario_pb2.RegimeActivation(regime="us-chip")
            ),
            scenario_pb2.Perturbation(
                add_regime=scenario_pb2.HypotheticalRegime(id="us-chip", issuer="USA", severity=2)
            ),
        ]
    )
    error = await rpc_error(risk.RunScenario(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["perturbations[1].activate_regime.regime"]
    # conversion errors come first; once the names are right, domain errors follow with
    # proto paths
    request.perturbations[1].activate_regime.regime = "regimes/us-chip"
    error = await rpc_error(risk.RunScenario(request))
    assert bad_fields(error) == [
        "perturbations[0].node.node",
        "perturbations[0].node.fraction_lost",
        "perturbations[2].add_regime.id",
        "perturbations[2].add_regime.severity",
        "perturbations[2].add_regime.reach_kinds",
    ]


async def test_run_scenario_needs_perturbations_and_known_providers(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    error = await rpc_error(risk.RunScenario(risk_pb2.RunScenarioRequest()))
    assert bad_fields(error) == ["perturbations"]
    request = risk_pb2.RunScenarioRequest(
        perturbations=[
            scenario_pb2.Perturbation(
                parameter=scenario_pb2.ParameterOverride(name="alpha", value=0.5)
            )
        ],
        providers=["providers/zz"],
    )
    error = await rpc_error(risk.RunScenario(request))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_score_provider_cut_sets(assessment: risk_pb2.RiskAssessment) -> None:
    # t alone cuts everything (a = 0); every listed set leaves a(p) < .5 and is minimal
    a = assessment
    assert a.singleton_cut_count >= 1
    assert list(a.cut_sets[0].nodes) == ["nodes/t"]
    assert a.cut_sets[0].retained == pytest.approx(0.0, abs=1e-12)
    assert all(c.retained < 0.5 for c in a.cut_sets)
    assert a.singleton_cut_count + a.pair_cut_count >= len(a.cut_sets)
    singles = {c.nodes[0] for c in a.cut_sets if len(c.nodes) == 1}
    for c in a.cut_sets:
        if len(c.nodes) == 2:
            assert not singles & set(c.nodes)  # minimal: no member is a cut on its own


async def test_run_scenario_capacity_site_alternate_errors(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    request = risk_pb2.RunScenarioRequest(
        perturbations=[
            scenario_pb2.Perturbation(pool=scenario_pb2.PoolDegradation(pool="nothing")),
            scenario_pb2.Perturbation(
                capacity=scenario_pb2.CapacityChange(pool="m1", factor=11, yield_fraction=0)
            ),
            scenario_pb2.Perturbation(
                site=scenario_pb2.SiteChange(node="nodes/p", country="USA", share=0.5)
            ),
            scenario_pb2.Perturbation(
                alternate=scenario_pb2.AlternateQualification(
                    supplier="nodes/m1",
                    alternate="nodes/m2",
                    category="logic_die",
                    lead_weeks=600,
                    spare=0.2,
                )
            ),
        ],
        allocation_rule=99,  # type: ignore[arg-type]
    )
    error = await rpc_error(risk.RunScenario(request))
    assert bad_fields(error) == ["allocation_rule"]
    request.allocation_rule = common_pb2.ALLOCATION_RULE_PRIORITY
    request.priority.append("nobody")
    error = await rpc_error(risk.RunScenario(request))
    assert bad_fields(error) == [
        "perturbations[0].pool.pool",
        "perturbations[1].capacity.factor",
        "perturbations[1].capacity.yield_fraction",
        "perturbations[2].site.node",
        "perturbations[3].alternate.category",
        "perturbations[3].alternate.lead_weeks",
        "priority[0]",
    ]


async def test_score_trajectory_on_a_graph_without_series(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    # The small fixture has no dated series: one quarter by default, the dataset's.
    reply = await risk.GetScoreTrajectory(risk_pb2.GetScoreTrajectoryRequest())
    assert [(r.quarter, r.provider) for r in reply.rows] == [("2024Q2", "providers/p")]
    assert 0 < reply.rows[0].composite <= 100
    assert not reply.rows[0].HasField("own_silicon_unit_share")
    reply = await risk.GetScoreTrajectory(
        risk_pb2.GetScoreTrajectoryRequest(start_quarter="2023Q3", end_quarter="2024Q2")
    )
    assert [r.quarter for r in reply.rows] == ["2023Q3", "2023Q4", "2024Q1", "2024Q2"]
    assert [iso(r.as_of) for r in reply.rows][-1] == "2024-06-30"


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (risk_pb2.GetScoreTrajectoryRequest(start_quarter="2024Q5"), ["start_quarter"]),
        (
            risk_pb2.GetScoreTrajectoryRequest(start_quarter="2024Q2", end_quarter="2023Q1"),
            ["end_quarter"],
        ),
        (
            risk_pb2.GetScoreTrajectoryRequest(start_quarter="2000Q1", end_quarter="2020Q1"),
            ["end_quarter"],
        ),
        (risk_pb2.GetScoreTrajectoryRequest(horizon_weeks=7), ["horizon_weeks"]),
    ],
)
async def test_score_trajectory_rejects_bad_ranges(
    risk: risk_pb2_grpc.RiskServiceStub,
    request_: risk_pb2.GetScoreTrajectoryRequest,
    fields: list[str],
) -> None:
    error = await rpc_error(risk.GetScoreTrajectory(request_))
    assert bad_fields(error) == fields


async def test_score_trajectory_unknown_provider(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    error = await rpc_error(
        risk.GetScoreTrajectory(risk_pb2.GetScoreTrajectoryRequest(names=["providers/nobody"]))
    )
    assert not_found_info(error).metadata["resource_name"] == "providers/nobody"


# -- uncertainty (METHODS v2 §11) ------------------------------------------------------------


async def test_score_intervals_and_rank_certainty_over_grpc(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    # Off by default in this registry (interval_draws 0): no uncertainty block.
    plain = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
    assert not plain.HasField("uncertainty")
    request = risk_pb2.ScoreProviderRequest(name="providers/p", interval_draws=5, interval_seed=3)
    a = await risk.ScoreProvider(request)
    u = a.uncertainty
    assert (u.draws, u.seed, u.rank, u.rank_certain) == (5, 3, 1, True)  # one provider
    assert u.composite.point == pytest.approx(a.composite, abs=1e-6)
    assert u.composite.low <= u.composite.high
    assert [s.key for s in u.sub_scores][:2] == [
        risk_pb2.SUB_SCORE_KEY_CONCENTRATION,
        risk_pb2.SUB_SCORE_KEY_STRUCTURAL,
    ]
    again = await risk.ScoreProvider(request)
    assert again.uncertainty == u  # same seed, same intervals
    listed = await risk.ListProviderScores(
        risk_pb2.ListProviderScoresRequest(interval_draws=5, interval_seed=3)
    )
    assert listed.provider_scores[0].uncertainty == u
    assert listed.uncertainty_notes and not listed.pair_orders  # one provider: no pairs


async def test_interval_draws_are_capped(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    error = await rpc_error(
        risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p", interval_draws=129))
    )
    assert bad_fields(error) == ["interval_draws"]


async def test_a_basic_view_is_the_headline_and_full_the_default(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    """AIP-157: BASIC keeps the composite, band and sub-scores and drops the lists."""
    full = await risk.ScoreProvider(score())
    basic = await risk.ScoreProvider(score(view=risk_pb2.ASSESSMENT_VIEW_BASIC))
    assert (basic.composite, basic.band) == (full.composite, full.band)
    assert list(basic.sub_scores) == list(full.sub_scores)
    assert full.structural_impacts and full.checks and full.regimes
    assert not basic.structural_impacts and not basic.checks and not basic.regimes
    assert basic.ByteSize() < full.ByteSize() / 3, (basic.ByteSize(), full.ByteSize())
    listed = await risk.ListProviderScores(risk_pb2.ListProviderScoresRequest())
    assert not listed.provider_scores[0].HasField("assessment")  # the list's default: BASIC
    whole = await risk.ListProviderScores(
        risk_pb2.ListProviderScoresRequest(view=risk_pb2.ASSESSMENT_VIEW_FULL)
    )
    assert whole.provider_scores[0].assessment.composite == full.composite
    assert whole.provider_scores[0].assessment.structural_impacts


async def test_not_found_suggests_what_the_name_likely_meant(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    """The fixture's provider is "p" (Provider P, owner P Corp): "provider-p" is close."""
    error = await rpc_error(risk.ScoreProvider(score("providers/provider-p")))
    info = not_found_info(error)
    assert info.metadata["suggestions"] == "p"
    assert "did you mean 'p'?" in (error.details() or "")
    nothing = await rpc_error(risk.ScoreProvider(score("providers/zzzz")))
    assert "suggestions" not in not_found_info(nothing).metadata
