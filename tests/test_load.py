"""Load (issue 13, hardening suite): 32 clients, each with its own connection, make a
bounded number of mixed read calls against a `sovrisk serve` process: zero errors, and the
server's /metrics (scraped after) counts exactly the calls made, by method and code."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.conftest import SMALL
from tests.serverproc import free_port, spawn_server

pytestmark = pytest.mark.smoke

CLIENTS = 32
CALLS_PER_CLIENT = 60


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def test_32_clients_get_no_errors_and_the_metrics_count_every_call(tmp_path: Path) -> None:
    metrics_port = free_port()
    server = spawn_server(
        data=str(SMALL),
        store=str(tmp_path / "store"),
        log=tmp_path / "serve.log",
        extra=["--metrics-port", str(metrics_port)],
    )
    made: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def calls(risk: Any, graph: Any) -> list[tuple[str, Callable[[], Any]]]:
        return [
            ("ScoreProvider", lambda: risk.ScoreProvider(
                risk_pb2.ScoreProviderRequest(name="providers/p"), timeout=30)),
            ("ScoreProvider", lambda: risk.ScoreProvider(risk_pb2.ScoreProviderRequest(
                name="providers/p", view=risk_pb2.ASSESSMENT_VIEW_BASIC), timeout=30)),
            ("ListProviderScores", lambda: risk.ListProviderScores(
                risk_pb2.ListProviderScoresRequest(), timeout=30)),
            ("ListChokepoints", lambda: risk.ListChokepoints(
                risk_pb2.ListChokepointsRequest(), timeout=30)),
            ("GetNode", lambda: graph.GetNode(
                graph_pb2.GetNodeRequest(name="nodes/t"), timeout=30)),
            ("ListNodes", lambda: graph.ListNodes(graph_pb2.ListNodesRequest(), timeout=30)),
            ("ListGraphVersions", lambda: graph.ListGraphVersions(
                graph_pb2.ListGraphVersionsRequest(), timeout=30)),
        ]  # fmt: skip

    def client(k: int) -> None:
        with grpc.insecure_channel(server.target) as channel:
            mix = calls(
                risk_pb2_grpc.RiskServiceStub(channel), graph_pb2_grpc.GraphServiceStub(channel)
            )
            for i in range(CALLS_PER_CLIENT):
                name, call = mix[(k + i) % len(mix)]
                started = time.perf_counter()
                try:
                    call()
                except grpc.RpcError as exc:
                    with lock:
                        errors.append(f"{name}: {exc.code().name} {exc.details()}")
                    continue
                finally:
                    with lock:
                        made[name] += 1
                        latencies.append(time.perf_counter() - started)

    try:
        before = _scrape(metrics_port)
        assert "RiskService" not in before  # only the readiness checks so far
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        scrape = _scrape(metrics_port)
    finally:
        server.stop()
    total = sum(made.values())
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"\n{CLIENTS} clients x {CALLS_PER_CLIENT} calls = {total} in {wall:.1f} s "
        f"({total / wall:.0f}/s), p50 {1000 * cuts[49]:.1f} ms, p99 {1000 * cuts[98]:.1f} ms, "
        f"{len(errors)} errors"
    )
    counted = [line for line in scrape.splitlines() if line.startswith("sovrisk_requests_total{")]
    print("\n".join(counted))
    assert errors == []
    assert total == CLIENTS * CALLS_PER_CLIENT
    for name, n in made.items():
        service = (
            "GraphService"
            if name in ("GetNode", "ListNodes", "ListGraphVersions")
            else "RiskService"
        )
        line = (
            f'sovrisk_requests_total{{code="OK",method="/sovrisk.v1.{service}/{name}",'
            f'transport="grpc"}} {float(n)}'
        )
        assert line in counted, line
