"""SIGTERM with open watch streams (HTTP and gRPC): the server ends them and exits within its
5 s drain, without tracebacks (it took over a minute with 30 abandoned HTTP watches), and an
HTTP watch sends its headers at once, not when the first alert comes."""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc
import pytest

from sovrisk.service.grpc_gen.sovrisk.v1 import history_pb2, risk_pb2_grpc
from tests.conftest import SMALL
from tests.serverproc import free_port, spawn_server

pytestmark = pytest.mark.smoke

WATCH = {"thresholds": [{"kind": "THRESHOLD_KIND_ABOVE", "value": 60}]}


async def test_sigterm_with_open_watches_exits_within_the_drain() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        http_port = free_port()
        log = Path(tmp) / "server.log"
        server = spawn_server(
            data=str(SMALL),
            store=str(Path(tmp) / "store"),
            log=log,
            extra=["--http-port", str(http_port)],
        )
        try:
            async with aiohttp.ClientSession() as session:
                started = time.monotonic()
                streams = [
                    await session.post(
                        f"http://127.0.0.1:{http_port}/v1/providers:watchScores", json=WATCH
                    )
                    for _ in range(10)
                ]
                # headers within about a second each, before any alert exists
                assert all(s.status == 200 for s in streams)
                assert time.monotonic() - started < 10 * 2.5
                async with grpc.aio.insecure_channel(server.target) as channel:
                    stub = risk_pb2_grpc.RiskServiceStub(channel)
                    request = history_pb2.WatchProviderScoresRequest(
                        thresholds=[
                            history_pb2.ScoreThreshold(
                                kind=history_pb2.THRESHOLD_KIND_ABOVE, value=60
                            )
                        ]
                    )
                    calls = [stub.WatchProviderScores(request) for _ in range(3)]
                    await asyncio.sleep(1.0)  # (a gRPC watch sends nothing until an alert)
                    stopping = time.monotonic()
                    server.proc.send_signal(signal.SIGTERM)
                    for call in calls:  # each stream ends cleanly (no more alerts to come)
                        async for _ in call:
                            pass
                    for stream in streams:
                        await stream.read()
                        stream.close()
            code = server.proc.wait(timeout=15)
            elapsed = time.monotonic() - stopping
        finally:
            server.stop()
        output = log.read_text(errors="replace")
        assert code == 0, output[-3000:]
        assert elapsed < 5, (elapsed, output[-3000:])
        assert "Traceback" not in output and "Task was destroyed" not in output, output[-3000:]
