"""SimulateDisruptions over a real in-process server: progress, result, seeds, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_status import rpc_status

from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc, simulation_pb2
from sovrisk.service.registry import DEFAULT_DATA_DIR, GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from tests.conftest import SMALL


@pytest_asyncio.fixture
async def bundled() -> AsyncIterator[tuple[RunningServer, risk_pb2_grpc.RiskServiceStub]]:
    running = await start_server(GraphRegistry.from_directory(DEFAULT_DATA_DIR))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, risk_pb2_grpc.RiskServiceStub(channel)
    await running.stop(0)


@pytest_asyncio.fixture
async def small() -> AsyncIterator[risk_pb2_grpc.RiskServiceStub]:
    running = await start_server(GraphRegistry.from_directory(SMALL))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield risk_pb2_grpc.RiskServiceStub(channel)
    await running.stop(0)


async def collect(
    stub: risk_pb2_grpc.RiskServiceStub, request: risk_pb2.SimulateDisruptionsRequest
) -> tuple[list[simulation_pb2.SimulationProgress], simulation_pb2.SimulationResult]:
    progress, result = [], None
    async for message in stub.SimulateDisruptions(request):
        if message.HasField("progress"):
            progress.append(message.progress)
        else:
            assert result is None, "the result is the last message"
            result = message.result
    assert result is not None
    return progress, result


async def test_streams_progress_then_a_seeded_result(
    bundled: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    _, stub = bundled
    request = risk_pb2.SimulateDisruptionsRequest(samples=3000, seed=11)
    progress, result = await collect(stub, request)
    done = [p.samples_done for p in progress]
    assert done == sorted(done) and done[-1] == 3000
    assert all(p.samples_total == 3000 for p in progress)
    assert result.samples == 3000 and result.provenance.seed == 11
    assert {p.provider for p in result.providers} >= {"providers/aws", "providers/coreweave"}
    for p in result.providers:
        assert 0 <= p.p50_loss <= p.p95_loss <= p.cvar95 <= 1
        assert p.var95 == pytest.approx(p.p95_loss)
        assert p.prob_below_half_se == pytest.approx(
            (p.prob_below_half * (1 - p.prob_below_half) / 3000) ** 0.5, rel=1e-9
        )
        assert p.attributions
    assert any(e.id == "taiwan-strait-blockade" for e in result.events)
    # the same seed gives the same bytes; another seed does not
    _, again = await collect(stub, request)
    assert again.SerializeToString() == result.SerializeToString()
    _, other = await collect(stub, risk_pb2.SimulateDisruptionsRequest(samples=3000, seed=12))
    assert other.SerializeToString() != result.SerializeToString()


async def test_caller_events_and_sensitivity(small: risk_pb2_grpc.RiskServiceStub) -> None:
    # One event that always takes the tool t down for the whole year (the fixture has no
    # buffers): p loses everything in every sample.
    event = simulation_pb2.DisruptionEvent(
        id="tool-down",
        probability=1.0,
        severity=simulation_pb2.PertRange(min=1, mode=1, max=1),
        duration_weeks=simulation_pb2.PertRange(min=52, mode=52, max=52),
        member_nodes=["nodes/t"],
    )
    request = risk_pb2.SimulateDisruptionsRequest(
        samples=500,
        seed=3,
        events=[event],
        independent_failure_probability=0.0,
        sensitivity=True,
    )
    _, result = await collect(small, request)
    [p] = result.providers
    assert p.mean_loss == pytest.approx(1.0) and p.cvar95 == pytest.approx(1.0)
    assert p.prob_below_half == pytest.approx(1.0)
    top = max(p.attributions, key=lambda a: a.mean_loss_contribution)
    assert top.event == "tool-down" and top.mean_loss_contribution == pytest.approx(1.0)


def _event() -> simulation_pb2.DisruptionEvent:
    return simulation_pb2.DisruptionEvent(
        id="tool-down",
        probability=0.1,
        severity=simulation_pb2.PertRange(min=1, mode=1, max=1),
        duration_weeks=simulation_pb2.PertRange(min=4, mode=4, max=4),
        member_nodes=["nodes/t"],
    )


async def test_bad_requests_are_invalid_argument(small: risk_pb2_grpc.RiskServiceStub) -> None:
    cases = [
        (risk_pb2.SimulateDisruptionsRequest(samples=2_000_000), "samples"),
        (risk_pb2.SimulateDisruptionsRequest(seed=-1), "seed"),
        (risk_pb2.SimulateDisruptionsRequest(providers=["aws"]), "providers[0]"),
        (
            risk_pb2.SimulateDisruptionsRequest(
                events=[simulation_pb2.DisruptionEvent(id="x", member_nodes=["t"])]
            ),
            "events[0].member_nodes[0]",
        ),
        # 100,000 samples of 2,000 events once ran for 15 minutes and took 11 GB
        (risk_pb2.SimulateDisruptionsRequest(samples=100_000, events=[_event()] * 2000), "events"),
        (risk_pb2.SimulateDisruptionsRequest(samples=100_000, events=[_event()] * 201), "samples"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await collect(small, request)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(exc.value)
        assert status is not None and field in status.message


async def test_cancel_stops_the_work_promptly(
    bundled: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    running, stub = bundled
    call = stub.SimulateDisruptions(risk_pb2.SimulateDisruptionsRequest(samples=1_000_000))
    first = await call.read()
    assert first.HasField("progress")
    assert running.registry.running_jobs == 1
    call.cancel()
    deadline = time.monotonic() + 5.0
    while running.registry.running_jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert running.registry.running_jobs == 0, "the simulation kept running after cancel"


async def test_deadline_stops_the_work(
    bundled: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    running, stub = bundled
    call = stub.SimulateDisruptions(
        risk_pb2.SimulateDisruptionsRequest(samples=1_000_000), timeout=0.3
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in call:
            pass
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 5.0
    while running.registry.running_jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert running.registry.running_jobs == 0
