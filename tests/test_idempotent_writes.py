"""AIP-155 request ids make writes safe to retry (issue 13 item 8: one PostgreSQL write
committed while its client saw UNAVAILABLE, and a retry could not tell). On SQLite and
PostgreSQL: a retried request returns the commit it made, byte for byte, and writes nothing;
the same id with other content or from another principal is INVALID_ARGUMENT; a second
replica on the same store finds the first replica's commit."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from sovrisk.models.graph.dataset import Upsert
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer
from sovrisk.service.store import WriteRequest
from tests import test_server_versions as versions
from tests.conftest import SMALL
from tests.test_server import bad_fields, rpc_error
from tests.test_server_versions import ADMIN, EDITOR, Stubs, _export, _import_stream, _resplit

# The same server (tokens ann/editor, adam/admin) on a fresh SQLite or PostgreSQL store.
server, stubs = versions.server, versions.stubs

ADMIN_AS_EDITOR = ADMIN  # another principal ("adam") with a role that may edit


async def _versions(stubs: Stubs) -> list[str]:
    graph, _ = stubs
    listed = await graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(page_size=100))
    return [v.name for v in listed.graph_versions]


async def test_a_retried_batch_returns_its_commit_and_writes_nothing(stubs: Stubs) -> None:
    graph, _ = stubs
    request = _resplit()
    request.request_id = str(uuid.uuid4())
    first = await graph.BatchUpdateGraph(request, metadata=EDITOR)
    assert first.graph_version.name == "graph/versions/2"
    # The retry's base (version 1) is stale now: without the id it would be ABORTED.
    again = await graph.BatchUpdateGraph(request, metadata=EDITOR)
    assert again.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    assert await _versions(stubs) == ["graph/versions/2", "graph/versions/1"]
    # An upper-case spelling of the same UUID is the same id.
    request.request_id = request.request_id.upper()
    assert (await graph.BatchUpdateGraph(request, metadata=EDITOR)).graph_version == (
        first.graph_version
    )
    # A new id is a new write: stale base now, so ABORTED as without ids.
    request.request_id = str(uuid.uuid4())
    aborted = await rpc_error(graph.BatchUpdateGraph(request, metadata=EDITOR))
    assert aborted.code() is grpc.StatusCode.ABORTED


async def test_a_reused_id_with_other_content_or_principal_is_invalid(stubs: Stubs) -> None:
    graph, _ = stubs
    request = _resplit()
    request.request_id = str(uuid.uuid4())
    await graph.BatchUpdateGraph(request, metadata=EDITOR)
    other = _resplit(base="graph/versions/2", m1=0.6)
    other.request_id = request.request_id
    error = await rpc_error(graph.BatchUpdateGraph(other, metadata=EDITOR))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["request_id"]
    stolen = await rpc_error(graph.BatchUpdateGraph(request, metadata=ADMIN_AS_EDITOR))
    assert bad_fields(stolen) == ["request_id"]
    assert await _versions(stubs) == ["graph/versions/2", "graph/versions/1"]


async def test_a_malformed_request_id_is_invalid_and_stores_nothing(stubs: Stubs) -> None:
    graph, _ = stubs
    for bad in ("not-a-uuid", "1234", "x" * 5000, str(uuid.uuid4()) + "0"):
        request = _resplit()
        request.request_id = bad
        error = await rpc_error(graph.BatchUpdateGraph(request, metadata=EDITOR))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert bad_fields(error) == ["request_id"]
    assert await _versions(stubs) == ["graph/versions/1"]


async def test_validate_only_with_an_id_records_nothing(stubs: Stubs) -> None:
    graph, _ = stubs
    request = _resplit()
    request.request_id = str(uuid.uuid4())
    request.validate_only = True
    dry = await graph.BatchUpdateGraph(request, metadata=EDITOR)
    assert not dry.HasField("graph_version")
    request.validate_only = False  # the same id may then commit for real
    assert (await graph.BatchUpdateGraph(request, metadata=EDITOR)).graph_version.name == (
        "graph/versions/2"
    )


async def test_a_retried_import_returns_its_commit(stubs: Stubs) -> None:
    graph, _ = stubs
    await graph.BatchUpdateGraph(_resplit(), metadata=EDITOR)
    _, files = await _export(graph, "graph/versions/1")
    header = graph_pb2.ImportGraphHeader(
        base_version="graph/versions/2", message="back to 1", request_id=str(uuid.uuid4())
    )
    first = await graph.ImportGraph(_import_stream(header, files.items()), metadata=ADMIN)
    again = await graph.ImportGraph(_import_stream(header, files.items()), metadata=ADMIN)
    assert first.graph_version.name == again.graph_version.name == "graph/versions/3"
    assert list(first.changes) == list(again.changes) and len(first.changes) == 2
    changed = dict(files)
    changed["nodes.csv"] = changed["nodes.csv"] + b"\n"  # other content, same id
    error = await rpc_error(
        graph.ImportGraph(_import_stream(header, changed.items()), metadata=ADMIN)
    )
    assert bad_fields(error) == ["header.request_id"]
    assert len(await _versions(stubs)) == 3


def test_a_second_replica_finds_the_first_replicas_commit(store_url: str) -> None:
    """Two registries on one store (two replicas): the write made through the first, retried
    through the second (whose base is stale, and which never installed the version), returns
    the same version; the store holds one commit."""
    first = GraphRegistry.open(store_url, seed=SMALL)
    second = GraphRegistry.open(store_url, seed=SMALL)
    try:
        files = first.store.files(1)  # type: ignore[union-attr]
        change = Upsert("node", {"id": "p", "name": "Provider P (renamed)"}, frozenset({"name"}))
        request = WriteRequest(str(uuid.uuid4()), "ann", "digest-of-the-request")
        made = first.commit_changes(1, [change], author="ann", message="m", request=request)
        replayed = second.commit_changes(1, [change], author="ann", message="m", request=request)
        assert made.version == replayed.version and replayed.replayed and not made.replayed
        assert made.changes == replayed.changes
        assert [v.id for v in second.store.list_versions()] == [2, 1]  # type: ignore[union-attr]
        assert files == second.store.files(1)  # type: ignore[union-attr]
    finally:
        first.close()
        second.close()


async def test_the_typed_client_sends_an_id_and_a_retry_with_it_returns_the_commit(
    server: RunningServer,
) -> None:
    from sovrisk.service.client import SovriskClient

    edge = {
        "consumer": "a",
        "category": "memory",
        "supplier": "m1",
        "share": 0.7,
        "quality": "B",
        "sources": ["fixture"],
        "as_of": "2024-03-01",
    }
    other = edge | {"supplier": "m2", "share": 0.3}
    changes = [{"upsert_edge": edge}, {"upsert_edge": other}]
    with SovriskClient(f"127.0.0.1:{server.port}", token="tok-editor", timeout=30) as client:
        rid = str(uuid.uuid4())
        first = await asyncio.to_thread(
            client.batch_update, changes, message="m1 70 %", base_version=1, request_id=rid
        )
        again = await asyncio.to_thread(
            client.batch_update, changes, message="m1 70 %", base_version=1, request_id=rid
        )
        assert first.version == again.version and first.version is not None
        assert first.version.name == "graph/versions/2"
        # Without an id of the caller's, each call is a new write (stale base: ABORTED).
        with pytest.raises(grpc.RpcError) as stale:
            await asyncio.to_thread(client.batch_update, changes, message="m1 70 %", base_version=1)
        assert stale.value.code() is grpc.StatusCode.ABORTED
