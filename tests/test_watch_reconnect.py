"""A watcher reconnecting to another replica with the last version it saw: that replica may
not have polled the version yet. It looks at the store once instead of answering NOT_FOUND
(found with two replicas behind a balancer: a window of up to one poll interval)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sovrisk.models.graph.dataset import Upsert
from sovrisk.service.grpc_gen.sovrisk.v1 import history_pb2, risk_pb2_grpc
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from tests.conftest import SMALL
from tests.test_server import rpc_error


def _watch(after: str) -> history_pb2.WatchProviderScoresRequest:
    change = history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_CHANGE, value=1.0)
    return history_pb2.WatchProviderScoresRequest(thresholds=[change], start_after_version=after)


async def test_a_version_committed_elsewhere_is_looked_up_not_refused(store_url: str) -> None:
    first = GraphRegistry.open(store_url, seed=SMALL)
    second = GraphRegistry.open(store_url, seed=SMALL)  # never polls in this test
    running = await start_server(second, port=0)
    try:
        change = Upsert("node", {"id": "p", "name": "Provider P v2"}, frozenset({"name"}))
        first.commit_changes(1, [change], author="ann", message="rename")
        assert second.latest_version_id == 1
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            watch = risk.WatchProviderScores(_watch("graph/versions/2"))
            with pytest.raises(asyncio.TimeoutError):  # waiting for version 3: not refused
                await asyncio.wait_for(watch.read(), timeout=0.5)
            watch.cancel()
            assert second.latest_version_id == 2
            unknown = risk.WatchProviderScores(_watch("graph/versions/9"))
            error = await rpc_error(unknown.read())
            assert error.code() is grpc.StatusCode.NOT_FOUND
    finally:
        await running.stop(0)
        first.close()
        second.close()
