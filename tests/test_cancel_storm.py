"""A cancel storm (issue 13, hardening suite): 100 cancels of each streaming RPC and 100
unary calls past a short deadline leave the server as they found it: worker threads,
asyncio tasks and RSS back to their baseline, the server healthy and answering, no
traceback logged. Runs the server in this process, so its tasks can be counted, and then
as a process of its own, whose OS threads, RSS and log are read from outside."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    report_pb2,
    risk_pb2,
    risk_pb2_grpc,
    scenario_pb2,
)
from sovrisk.service.logs import quiet_ended_calls
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from sovrisk.service.servicers import rpc, rpc_stream
from tests.conftest import SMALL
from tests.serverproc import free_port, spawn_server
from tests.test_metrics import _scrape

CANCELS_PER_KIND = 100
SETTLE_SECONDS = 10.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _state() -> tuple[int, int, float]:
    return threading.active_count(), len(asyncio.all_tasks()), _rss_mb()


async def _cancel_stream(call: Any, rng: random.Random, first_message: bool) -> str:
    """Cancel a stream after its first message, or after a random short delay; what
    happened (or the code it ended with before the cancel: RESOURCE_EXHAUSTED when refused)."""
    outcome = "cancelled after a delay"
    try:
        if first_message:
            await asyncio.wait_for(call.read(), timeout=10)
            outcome = "cancelled after its first message"
        else:
            await asyncio.sleep(rng.uniform(0, 0.02))
            if call.done():
                outcome = (await call.code()).name
    except TimeoutError:
        outcome = "cancelled after 10 s without a message"
    except grpc.aio.AioRpcError as exc:
        outcome = exc.code().name
    call.cancel()
    return outcome


async def _past_deadline(call: Awaitable[Any]) -> str:
    """A heavy call past a 5 ms deadline (or refused: one caller gets 2 heavy places)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), exc.code()
        return str(exc.code().name)
    return "OK"


SIMULATE = risk_pb2.SimulateDisruptionsRequest(samples=1_000_000, seed=1)
REPORT = report_pb2.GenerateReportRequest(
    format=report_pb2.REPORT_FORMAT_HTML, simulate_samples=100_000
)
WATCH = history_pb2.WatchProviderScoresRequest(
    providers=["providers/p"],
    thresholds=[history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_CHANGE, value=1.0)],
)
EXPORT = graph_pb2.ExportGraphRequest()
SCENARIO = risk_pb2.RunScenarioRequest(
    perturbations=[scenario_pb2.Perturbation(node=scenario_pb2.NodeDegradation(node="nodes/t"))]
)
COMPARE = risk_pb2.CompareAssessmentsRequest(name="providers/p")
HEAVY_STREAMS = ("SimulateDisruptions", "GenerateReport")

Storm = tuple[str, Callable[[], Awaitable[str]]]


async def _warm_up(risk: Any, graph: Any) -> None:
    """Every RPC once to the end, so lazy state (engines, analyses, pools, channels) exists
    before the baseline."""
    async for _ in risk.SimulateDisruptions(
        risk_pb2.SimulateDisruptionsRequest(samples=1000, seed=1)
    ):
        pass
    async for _ in risk.GenerateReport(report_pb2.GenerateReportRequest()):
        pass
    async for _ in graph.ExportGraph(EXPORT):
        pass
    await risk.RunScenario(SCENARIO)
    await risk.CompareAssessments(COMPARE)
    await asyncio.sleep(0.5)


def _storms(risk: Any, graph: Any, rng: random.Random) -> list[Storm]:
    return [
        ("SimulateDisruptions", lambda: _cancel_stream(
            risk.SimulateDisruptions(SIMULATE), rng, rng.random() < 0.5)),
        ("GenerateReport", lambda: _cancel_stream(
            risk.GenerateReport(REPORT), rng, rng.random() < 0.5)),
        ("WatchProviderScores", lambda: _cancel_stream(
            risk.WatchProviderScores(WATCH), rng, False)),
        ("ExportGraph", lambda: _cancel_stream(
            graph.ExportGraph(EXPORT), rng, rng.random() < 0.5)),
        ("RunScenario past 5 ms", lambda: _past_deadline(
            risk.RunScenario(SCENARIO, timeout=0.005))),
        ("CompareAssessments past 5 ms", lambda: _past_deadline(
            risk.CompareAssessments(COMPARE, timeout=0.005))),
    ]  # fmt: skip


async def _run_storms(storms: list[Storm], heavy_at_a_time: int = 10) -> dict[str, Counter[str]]:
    """CANCELS_PER_KIND calls of each kind, ten at a time (the heavy streams
    ``heavy_at_a_time``); how each ended, by kind."""
    outcomes: dict[str, Counter[str]] = {}
    for name, make in storms:
        at_a_time = heavy_at_a_time if name in HEAVY_STREAMS else 10
        outcomes[name] = Counter()
        for _ in range(CANCELS_PER_KIND // at_a_time):
            outcomes[name].update(await asyncio.gather(*(make() for _ in range(at_a_time))))
    return outcomes


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
            await _warm_up(risk, graph)
            threads0, tasks0, rss0 = _state()

            storms = _storms(risk, graph, rng)
            with caplog.at_level(logging.INFO):
                await _run_storms(storms)

                # Settle: cancelled work stops at its next checkpoint.
                for _ in range(int(SETTLE_SECONDS * 10)):
                    threads, tasks, rss = _state()
                    idle = registry._heavy_admitted == 0
                    if threads <= threads0 + 1 and tasks <= tasks0 + 1 and idle:
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
            await risk.RunScenario(SCENARIO, timeout=30)
        tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
        assert tracebacks == [], [r.getMessage() for r in tracebacks[:3]]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors[:3]]
    finally:
        await running.stop(0)
        registry.close()


def _process_state(pid: int) -> tuple[int, float]:
    """The OS threads (gRPC's core threads included) and the RSS (MB) of a process."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


@pytest.mark.smoke
async def test_a_cancel_storm_leaves_a_server_process_as_it_found_it(tmp_path: Path) -> None:
    """The same storm against ``sovrisk serve`` in its own process: its OS threads (gRPC's
    included) and RSS from /proc, its heavy-job and in-flight gauges, its log, and a clean
    SIGTERM exit afterwards. The heavy streams go two at a time (one caller's quota), so
    most are admitted and cancelled while they compute."""
    rng = random.Random(1313)
    metrics_port = free_port()
    log = tmp_path / "server.log"
    server = spawn_server(
        data=str(SMALL),
        store=str(tmp_path / "store"),
        log=log,
        extra=["--metrics-port", str(metrics_port), "--poll-interval", "0"],
    )
    pid = server.proc.pid
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            await _warm_up(risk, graph)
            threads0, rss0 = _process_state(pid)
            outcomes = await _run_storms(_storms(risk, graph, rng), heavy_at_a_time=2)
            # Settle: cancelled heavy jobs keep their places until their next checkpoint (a
            # second at most on an idle machine, more on a loaded 2-core one).
            for _ in range(int(SETTLE_SECONDS * 10)):
                threads, rss = _process_state(pid)
                gauges = await asyncio.to_thread(_scrape, metrics_port)
                heavy = gauges["sovrisk_heavy_jobs"]
                in_flight = gauges['sovrisk_requests_in_flight{transport="grpc"}']
                if threads <= threads0 + 2 and heavy == 0 and in_flight == 0:
                    break
                await asyncio.sleep(0.1)
            print(
                f"\ncancel storm on a server process (pid {pid}): threads {threads0} -> "
                f"{threads}, RSS {rss0:.0f} -> {rss:.0f} MB; heavy jobs {heavy:.0f}, gRPC "
                f"requests in flight {in_flight:.0f}"
            )
            for name, counts in outcomes.items():
                print(f"  {name:30} {dict(counts)}")
            assert threads <= threads0 + 2
            assert rss <= rss0 + 100
            assert heavy == 0 and in_flight == 0
            # Many heavy streams were admitted and cancelled while they computed (the others
            # were refused while cancelled ones still held their places, up to a second).
            for heavy_stream in HEAVY_STREAMS:
                assert outcomes[heavy_stream]["cancelled after its first message"] >= 10
            checked = await health.Check(health_pb2.HealthCheckRequest())
            assert checked.status == health_pb2.HealthCheckResponse.SERVING
            score = await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            assert score.composite > 0
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
    finally:
        server.stop()
    output = log.read_text(errors="replace")
    for bad in ("Traceback", "Task was destroyed", " ERROR "):
        assert bad not in output, output[output.index(bad) - 2000 :][:4000]


async def test_a_status_that_can_no_longer_be_sent_ends_the_handler_as_cancelled() -> None:
    """The race the storm found: a call past its deadline whose error is being mapped when
    gRPC ends it. Sending the status then fails in gRPC's core, which logged an
    ExecuteBatchError with its traceback; the handler now ends as cancelled."""

    class Ended:
        async def abort_with_status(self, status: grpc.Status) -> None:
            raise grpc.aio.InternalError('Failed "execute_batch"')

    class Servicer:
        registry = SimpleNamespace(ready=True)

        @rpc
        async def Unary(self, request: object, context: object) -> None:
            raise InvalidParameterError([FieldViolation("page_size", "-1", "negative")])

        @rpc_stream
        async def Stream(self, request: object, context: object) -> AsyncIterator[None]:
            yield None
            raise InvalidParameterError([FieldViolation("page_size", "-1", "negative")])

    with pytest.raises(asyncio.CancelledError):
        await Servicer().Unary(None, Ended())
    with pytest.raises(asyncio.CancelledError):
        async for _ in Servicer().Stream(None, Ended()):
            pass


def test_a_reply_to_a_call_that_had_ended_is_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The other side of that race: the handler returned, and the call ended before gRPC sent
    the reply. gRPC logs it at ERROR with a traceback; the server makes it one INFO line."""
    quiet_ended_calls()
    try:
        raise grpc.aio.InternalError('Failed "execute_batch"')
    except grpc.aio.InternalError:
        with caplog.at_level(logging.INFO):
            logging.getLogger("grpc._cython.cygrpc").exception(
                "ExecuteBatchError raised in core by servicer method [%s]", "/m/M"
            )
    (record,) = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage().startswith("reply to [/m/M] not sent: the call had ended")
