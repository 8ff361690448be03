"""The typed client against an in-process server: pagination, edits, export/import, diffs,
watching, and retries on UNAVAILABLE (a flaky interceptor fails the first calls).
tests/test_client_typed.py covers the typed reads, TLS and the client's import footprint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.client import SovriskClient
from sovrisk.service.client_types import WatchEvent
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2
from sovrisk.service.paths import DEFAULT_DATA_DIR
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.test_server_versions import _edge

TOKENS = "ann:admin:tok"


class Flaky(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Answers UNAVAILABLE to the first ``failures`` calls of one method."""

    def __init__(self, method: str, failures: int) -> None:
        self.method, self.failures, self.calls = method, failures, 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not details.method.endswith("/" + self.method):
            return await continuation(details)
        self.calls += 1
        if self.calls > self.failures:
            return await continuation(details)

        async def unavailable(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

        return grpc.unary_unary_rpc_method_handler(unavailable)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[RunningServer, Flaky]]:
    flaky = Flaky("ScoreProvider", failures=2)
    registry = GraphRegistry.from_directory(DEFAULT_DATA_DIR)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
    running = await start_server(registry, auth=auth, interceptors=[flaky])
    try:
        yield running, flaky
    finally:
        await running.stop(grace=0)


async def test_reads_are_retried_on_unavailable(served: tuple[RunningServer, Flaky]) -> None:
    running, flaky = served
    with SovriskClient(f"127.0.0.1:{running.port}", timeout=30) as client:
        aws = await asyncio.to_thread(client.score, "aws")
    assert aws.provider == "providers/aws" and flaky.calls == 3  # two failures, one success
    with SovriskClient(f"127.0.0.1:{running.port}", max_attempts=2) as client:
        flaky.calls = 0
        with pytest.raises(grpc.RpcError) as caught:
            await asyncio.to_thread(client.score, "aws")
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE and flaky.calls == 2


async def test_iterators_walk_every_page(served: tuple[RunningServer, Flaky]) -> None:
    running, _ = served
    with SovriskClient(f"127.0.0.1:{running.port}") as client:
        rows = await asyncio.to_thread(lambda: list(client.provider_scores(page_size=2)))
        memory = await asyncio.to_thread(lambda: list(client.nodes(kind="memory", page_size=3)))
        one_page = await asyncio.to_thread(
            lambda: list(client.nodes(kind=common_pb2.NODE_KIND_MEMORY, page_size=1000))
        )
    assert [r.rank for r in rows] == list(range(1, 8))
    assert [r.composite for r in rows] == sorted((r.composite for r in rows), reverse=True)
    assert len({r.provider for r in rows}) == 7
    assert [n.name for n in memory] == [n.name for n in one_page] and len(memory) > 3


async def test_edits_export_and_import_through_the_client(
    served: tuple[RunningServer, Flaky], tmp_path: Path
) -> None:
    running, _ = served
    with SovriskClient(f"127.0.0.1:{running.port}", token="tok") as client:
        version, files = await asyncio.to_thread(lambda: client.export_graph(to=tmp_path))
        assert version.name == "graph/versions/1" and "edges.csv" in files
        assert files.digest == version.files_digest  # the whole dataset, byte for byte
        assert (tmp_path / "edges.csv").read_bytes() == files["edges.csv"]
        reimported = await asyncio.to_thread(
            lambda: client.import_graph(tmp_path, message="same data")
        )
        assert reimported.version is not None
        assert reimported.version.name == "graph/versions/2" and reimported.version.author == "ann"
        assert reimported.version.files_digest == files.digest and reimported.changes == ()
        bad = await asyncio.to_thread(
            lambda: _expect_error(lambda: client.batch_update([_edge("m1", 1.0)], message="x"))
        )
        assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT  # no node 'a' in this dataset
        listed = await asyncio.to_thread(lambda: [v.name for v in client.versions(page_size=1)])
        assert listed == ["graph/versions/2", "graph/versions/1"]
        assert (await asyncio.to_thread(client.version, "2")).base_version == "graph/versions/1"
        diff = await asyncio.to_thread(client.diff, 2)
        assert diff.changes == () and diff.nodes == {}


async def test_watch_replays_missed_versions(served: tuple[RunningServer, Flaky]) -> None:
    running, _ = served
    with SovriskClient(f"127.0.0.1:{running.port}", token="tok") as client:
        _, files = await asyncio.to_thread(client.export_graph)
        await asyncio.to_thread(lambda: client.import_graph(files, message="again"))

        def first_event() -> WatchEvent:
            events = client.watch([("composite", "change", 0.1)], start_after_version=1)
            try:
                return next(events)
            finally:
                events.close()  # cancels the stream

        event = await asyncio.to_thread(first_event)
    assert (event.graph_version, event.base_version) == ("graph/versions/2", "graph/versions/1")
    assert event.alerts == ()  # same data: no score moved


def _expect_error(call: Callable[[], Any]) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("expected an RpcError")
