"""A corpus of hostile requests (issue 13): odd names, NaN and infinite numbers, impossible
dates, huge and negative sizes, forged tokens and versions. Whatever the request, the answer
is a real code (never UNKNOWN or INTERNAL), no detail carries a traceback, and the server is
still healthy afterwards."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.type import date_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
    scenario_pb2,
)
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from tests.conftest import SMALL

NAMES = [
    "", "p", "providers/p", "providers/", "providers/p/x", "nodes/t", "²", "\x00", "x" * 5000,
    "graph/versions/0", "graph/versions/99999999999999999999", "graph/versions/1", "../etc",
]  # fmt: skip
NUMBERS = [0.0, -1.0, 1e308, float("nan"), float("inf"), float("-inf"), 0.5, 13.0, 1e-300]
REQUESTS_PER_KIND = 40


def _corpus(rng: random.Random, risk: Any, graph: Any) -> list[Callable[[], Awaitable[Any]]]:
    def name() -> str:
        return rng.choice(NAMES)

    def number() -> float:
        return rng.choice(NUMBERS)

    def date() -> date_pb2.Date:
        return date_pb2.Date(
            year=rng.choice([0, 1, 2024, 9999, -5, 2**31 - 1]),
            month=rng.choice([0, 1, 2, 13, -1]),
            day=rng.choice([0, 1, 29, 31, 32]),
        )

    def score() -> Awaitable[Any]:
        request = risk_pb2.ScoreProviderRequest(
            name=name(), as_of=date(), graph_version=name(), horizon_weeks=number()
        )
        request.weights.structural = number()
        request.interval_draws = rng.choice([-1, 0, 129, 2**31 - 1])
        request.view = rng.choice([0, 1, 2, 7])  # 7: not a view
        return risk.ScoreProvider(request, timeout=30)

    def ranking() -> Awaitable[Any]:
        request = risk_pb2.ListProviderScoresRequest(
            page_size=rng.choice([-1, 0, 1, 10**9]), page_token=name(), as_of=date()
        )
        return risk.ListProviderScores(request, timeout=30)

    def scenario() -> Awaitable[Any]:
        node = scenario_pb2.NodeDegradation(
            node=name(), fraction_lost=number(), duration_weeks=number()
        )
        request = risk_pb2.RunScenarioRequest(
            perturbations=[scenario_pb2.Perturbation(node=node)],
            providers=[name()],
            horizon_weeks=number(),
            as_of=date(),
        )
        return risk.RunScenario(request, timeout=30)

    def node() -> Awaitable[Any]:
        return graph.GetNode(graph_pb2.GetNodeRequest(name=name(), graph_version=name()))

    def nodes() -> Awaitable[Any]:
        request = graph_pb2.ListNodesRequest(
            page_size=rng.choice([-1, 0, 3]), page_token=name(), kind=rng.choice([0, 1, 99])
        )
        return graph.ListNodes(request, timeout=30)

    def compare() -> Awaitable[Any]:
        request = risk_pb2.CompareAssessmentsRequest(
            name=name(), base_version=name(), target_version=name(), base_as_of=date()
        )
        return risk.CompareAssessments(request, timeout=30)

    kinds = [score, ranking, scenario, node, nodes, compare]
    return [kind for kind in kinds for _ in range(REQUESTS_PER_KIND)]


async def test_hostile_requests_get_real_codes_and_the_server_stays_healthy() -> None:
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    codes: Counter[str] = Counter()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            for call in _corpus(random.Random(20261202), risk, graph):
                try:
                    await call()
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as error:
                    codes[error.code().name] += 1
                    assert error.code() not in (
                        grpc.StatusCode.UNKNOWN,
                        grpc.StatusCode.INTERNAL,
                    ), error
                    assert "Traceback" not in (error.details() or ""), error
            health = health_pb2_grpc.HealthStub(channel)
            status = await health.Check(health_pb2.HealthCheckRequest())
            assert status.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(0)
    # 240 requests; most are refused as INVALID_ARGUMENT or NOT_FOUND, a few are fine
    assert sum(codes.values()) == 6 * REQUESTS_PER_KIND
    assert set(codes) <= {"OK", "INVALID_ARGUMENT", "NOT_FOUND"}, codes
