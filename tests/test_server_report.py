"""``RiskService.GenerateReport`` over a real in-process server: progress, then the report,
identical to ``build_report``; bad formats are INVALID_ARGUMENT; a cancel stops the work."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from sovrisk.service.grpc_gen.sovrisk.v1 import report_pb2 as r
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2_grpc
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.reports import build_report
from sovrisk.service.server import RunningServer, start_server
from tests.conftest import SMALL
from tests.test_server import bad_fields


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[RunningServer, risk_pb2_grpc.RiskServiceStub]]:
    running = await start_server(GraphRegistry.from_directory(SMALL))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield running, risk_pb2_grpc.RiskServiceStub(channel)
    finally:
        await running.stop(grace=0)


async def test_progress_then_the_report(
    served: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    running, risk = served
    request = r.GenerateReportRequest(format=r.REPORT_FORMAT_CSV, simulate_samples=500, seed=3)
    messages = [m async for m in risk.GenerateReport(request)]
    progress = [m.progress for m in messages[:-1]]
    assert all(m.HasField("progress") for m in messages[:-1])
    stages = [p.stage for p in progress]
    assert stages[0] == "assess" and stages[-1] == "done" and "simulate" in stages
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    report = messages[-1].report
    assert (report.file_name, report.content_type) == (
        "sovrisk-report.csv",
        "text/csv; charset=utf-8",
    )
    assert report.sha256 == hashlib.sha256(report.content).hexdigest()
    assert report.graph_version == "graph/versions/1"
    expected = build_report(
        running.registry.engine, fmt="csv", providers=None, as_of=None, simulate_samples=500, seed=3
    )
    assert report.content == expected  # same bytes as the library and the CLI


async def test_html_report_over_grpc_has_its_charts(
    served: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    _, risk = served
    messages = [m async for m in risk.GenerateReport(r.GenerateReportRequest())]
    html = messages[-1].report.content.decode()
    assert messages[-1].report.content_type.startswith("text/html")
    for chart in ('id="ranking"', 'id="heatmap"', 'id="tree-p"'):
        assert chart in html


async def test_bad_requests_are_invalid_arguments(
    served: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    _, risk = served
    call = risk.GenerateReport(r.GenerateReportRequest(format=99))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert bad_fields(caught.value) == ["format"]
    call = risk.GenerateReport(r.GenerateReportRequest(providers=["providers/nobody"]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_cancelled_report_stops(
    served: tuple[RunningServer, risk_pb2_grpc.RiskServiceStub],
) -> None:
    running, risk = served
    call = risk.GenerateReport(r.GenerateReportRequest(simulate_samples=200_000, seed=1))
    first = await call.read()
    assert first.progress.stage == "assess"
    call.cancel()
    deadline = time.monotonic() + 30
    while running.registry.running_jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert running.registry.running_jobs == 0
