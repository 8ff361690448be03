"""Heavy work in its own bounded pool: light reads never wait behind it, and one job past the
limit is RESOURCE_EXHAUSTED with a RetryInfo (not a 50 s wait)."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from google.rpc import error_details_pb2

from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc, scenario_pb2
from sovrisk.service.registry import GraphRegistry, Overloaded
from sovrisk.service.server import start_server
from tests.conftest import SMALL
from tests.test_server import rpc_error, unpack


async def test_heavy_jobs_are_admitted_up_to_the_limit_and_reads_do_not_wait() -> None:
    registry = GraphRegistry.from_directory(SMALL)
    registry.max_heavy_jobs = 1
    gate = threading.Event()
    try:
        blocker = asyncio.ensure_future(registry.call(gate.wait, 10, heavy=True))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="retry in 5 s"):
            await registry.call(lambda: 1, heavy=True)
        # The light pool is free while the heavy one is busy.
        assert await asyncio.wait_for(registry.call(lambda: 42), timeout=2) == 42
        gate.set()
        assert await blocker is True
        assert await registry.call(lambda: 7, heavy=True) == 7  # the slot came back
    finally:
        gate.set()
        registry.close()


async def test_an_overloaded_server_says_when_to_retry() -> None:
    registry = GraphRegistry.from_directory(SMALL)
    registry.max_heavy_jobs = 0
    running = await start_server(registry, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            scenario = risk_pb2.RunScenarioRequest(
                perturbations=[
                    scenario_pb2.Perturbation(node=scenario_pb2.NodeDegradation(node="nodes/t"))
                ]
            )
            error = await rpc_error(risk.RunScenario(scenario))
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            retry = unpack(error)["RetryInfo"]
            assert isinstance(retry, error_details_pb2.RetryInfo)
            assert retry.retry_delay.seconds == 5
            # reads still answer
            score = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            assert score.composite > 0
    finally:
        await running.stop(0)
