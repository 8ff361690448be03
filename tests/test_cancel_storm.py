"""A cancel storm (issue 13, hardening suite): 100 cancels of each streaming RPC and 100
unary calls past a short deadline leave the server as they found it: worker threads,
asyncio tasks and RSS back to their baseline, the server healthy and answering, no
traceback logged. Runs the server in this process, so its tasks can be counted."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    report_pb2,
    risk_pb2,
    risk_pb2_grpc,
    scenario_pb2,
)
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from tests.conftest import SMALL

CANCELS_PER_KIND = 100
SETTLE_SECONDS = 10.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _state() -> tuple[int, int, float]:
    return threading.active_count(), len(asyncio.all_tasks()), _rss_mb()


async def _cancel_stream(call: Any, rng: random.Random, first_message: bool) -> None:
    """Cancel a stream after its first message, or after a random short delay."""
    try:
        if first_message:
            await asyncio.wait_for(call.read(), timeout=10)
        else:
            await asyncio.sleep(rng.uniform(0, 0.02))
    except (TimeoutError, grpc.aio.AioRpcError):
        pass
    call.cancel()


async def _past_deadline(call: Awaitable[Any]) -> None:
    """A heavy call past a 5 ms deadline (or refused: one caller gets 2 heavy places)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), exc.code()


async def test_a_cancel_storm_leaves_threads_tasks_and_memory_at_baseline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(13)
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            simulate = risk_pb2.SimulateDisruptionsRequest(samples=1_000_000, seed=1)
            report = report_pb2.GenerateReportRequest(
                format=report_pb2.REPORT_FORMAT_HTML, simulate_samples=100_000
            )
            watch = history_pb2.WatchProviderScoresRequest(
                providers=["providers/p"],
                thresholds=[
                    history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_CHANGE, value=1.0)
                ],
            )
            export = graph_pb2.ExportGraphRequest()
            scenario = risk_pb2.RunScenarioRequest(
                perturbations=[
                    scenario_pb2.Perturbation(node=scenario_pb2.NodeDegradation(node="nodes/t"))
                ]
            )
            # Warm-up: every RPC once to the end, so lazy state (engines, analyses, pools,
            # channels) exists before the baseline.
            async for _ in risk.SimulateDisruptions(
                risk_pb2.SimulateDisruptionsRequest(samples=1000, seed=1)
            ):
                pass
            async for _ in risk.GenerateReport(report_pb2.GenerateReportRequest()):
                pass
            async for _ in graph.ExportGraph(export):
                pass
            await risk.RunScenario(scenario)
            await risk.CompareAssessments(risk_pb2.CompareAssessmentsRequest(name="providers/p"))
            await asyncio.sleep(0.5)
            threads0, tasks0, rss0 = _state()

            storms: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("SimulateDisruptions", lambda: _cancel_stream(
                    risk.SimulateDisruptions(simulate), rng, rng.random() < 0.5)),
                ("GenerateReport", lambda: _cancel_stream(
                    risk.GenerateReport(report), rng, rng.random() < 0.5)),
                ("WatchProviderScores", lambda: _cancel_stream(
                    risk.WatchProviderScores(watch), rng, False)),
                ("ExportGraph", lambda: _cancel_stream(
                    graph.ExportGraph(export), rng, rng.random() < 0.5)),
                ("RunScenario past 5 ms", lambda: _past_deadline(
                    risk.RunScenario(scenario, timeout=0.005))),
                ("CompareAssessments past 5 ms", lambda: _past_deadline(
                    risk.CompareAssessments(
                        risk_pb2.CompareAssessmentsRequest(name="providers/p"), timeout=0.005))),
            ]  # fmt: skip
            with caplog.at_level(logging.INFO):
                for _name, make in storms:
                    for _ in range(CANCELS_PER_KIND // 10):  # ten at a time
                        await asyncio.gather(*(make() for _ in range(10)))

                # Settle: cancelled work stops at its next checkpoint.
                for _ in range(int(SETTLE_SECONDS * 10)):
                    threads, tasks, rss = _state()
                    if threads <= threads0 + 1 and tasks <= tasks0 + 1:
                        break
                    await asyncio.sleep(0.1)
            threads, tasks, rss = _state()
            print(
                f"cancel storm: {CANCELS_PER_KIND} x {len(storms)} kinds; threads {threads0} -> "
                f"{threads}, asyncio tasks {tasks0} -> {tasks}, RSS {rss0:.0f} -> {rss:.0f} MB; "
                f"heavy jobs admitted {registry._heavy_admitted}"
            )
            assert threads <= threads0 + 1
            assert tasks <= tasks0 + 1
            assert rss <= rss0 + 100
            assert registry._heavy_admitted == 0
            # Healthy and answering.
            checked = await health.Check(health_pb2.HealthCheckRequest())
            assert checked.status == health_pb2.HealthCheckResponse.SERVING
            assert (
                await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            ).composite > 0
            await risk.RunScenario(scenario, timeout=30)
        tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
        assert tracebacks == [], [r.getMessage() for r in tracebacks[:3]]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors[:3]]
    finally:
        await running.stop(0)
        registry.close()
