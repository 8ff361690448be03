"""Prometheus metrics: a scrape after gRPC and HTTP requests counts them by method and code."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request

import aiohttp
import grpc

from sovrisk.service.gateway.server import start_gateway
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc
from sovrisk.service.metrics import start_metrics_server
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from tests.conftest import SMALL

SCORE = "/sovrisk.v1.RiskService/ScoreProvider"


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sovrisk_")
    }


def _value(sample: dict[str, float], name: str, **labels: str) -> float:
    key = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return sample.get(key, 0.0)


async def test_a_scrape_counts_requests_by_transport_method_and_code() -> None:
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    gateway = await start_gateway(registry, port=0)
    port = await asyncio.to_thread(start_metrics_server, "127.0.0.1", 0)
    try:
        before = await asyncio.to_thread(_scrape, port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            for _ in range(3):
                await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            with contextlib.suppress(grpc.aio.AioRpcError):  # NOT_FOUND, counted below
                await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/zz"))
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{gateway.port}/v1/providers/p:score") as response,
        ):
            assert response.status == 200
        after = await asyncio.to_thread(_scrape, port)

        def delta(name: str, **labels: str) -> float:
            return _value(after, name, **labels) - _value(before, name, **labels)

        total = "sovrisk_requests_total"
        assert delta(total, code="OK", method=SCORE, transport="grpc") == 3
        assert delta(total, code="NOT_FOUND", method=SCORE, transport="grpc") == 1
        assert delta(total, code="OK", method=SCORE, transport="http") == 1
        count = "sovrisk_request_duration_seconds_count"
        assert delta(count, method=SCORE, transport="grpc") == 4
        assert _value(after, "sovrisk_requests_in_flight", transport="grpc") == 0
        # 3 gRPC + 1 HTTP published reads of one key: the first of each servicer's cache
        # misses (the gateway has its own), the rest hit; the unknown provider is looked up
        # (a miss) before it is validated.
        cache = "sovrisk_response_cache_requests_total"
        assert delta(cache, result="miss") == 3 and delta(cache, result="hit") == 2
        # The per-version analyses ran once (the small fixture has no resilience data or
        # events: those are timed as well, as the nothing they compute).
        analyses = "sovrisk_analysis_seconds_count"
        assert _value(after, analyses, analysis="cut_sets") >= 1
    finally:
        await gateway.stop()
        await running.stop(0)
