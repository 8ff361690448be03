"""Who is calling, as the server sees it: the principal of a valid token (never the token)
in every request's log line, gRPC's client-streaming ImportGraph logged like the rest
(issue 13 item 13: it was never logged), and heavy jobs counted per caller end to end."""

from __future__ import annotations

import asyncio
import logging
import threading

import grpc
import pytest

from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, risk_pb2, scenario_pb2
from sovrisk.service.request_context import set_request_owner
from sovrisk.service.server import RunningServer
from tests import test_server_versions as versions
from tests.test_server import rpc_error, unpack
from tests.test_server_versions import ADMIN, READER, Stubs, _export, _import_stream

server, stubs = versions.server, versions.stubs


def _lines(caplog: pytest.LogCaptureFixture, method: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "method", "").endswith(method)]


async def test_log_lines_name_the_principal_never_the_token(
    stubs: Stubs, caplog: pytest.LogCaptureFixture
) -> None:
    graph, risk = stubs
    with caplog.at_level(logging.INFO, logger="sovrisk.requests"):
        await risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"), metadata=READER)
        await risk.ListProviderScores(risk_pb2.ListProviderScoresRequest())
        _, files = await _export(graph)
        header = graph_pb2.ImportGraphHeader(base_version="graph/versions/1", message="same")
        await graph.ImportGraph(_import_stream(header, files.items()), metadata=ADMIN)
    [scored] = _lines(caplog, "/ScoreProvider")
    assert scored.principal == "rita" and "principal=rita" in scored.getMessage()  # type: ignore[attr-defined]
    [ranked] = _lines(caplog, "/ListProviderScores")
    assert ranked.principal == "-"  # type: ignore[attr-defined]
    [imported] = _lines(caplog, "/ImportGraph")
    assert imported.principal == "adam" and imported.code == "OK"  # type: ignore[attr-defined]
    assert not any("tok-" in r.getMessage() for r in caplog.records)


async def test_heavy_jobs_are_counted_per_principal_through_the_api(
    server: RunningServer, stubs: Stubs
) -> None:
    _, risk = stubs
    registry = server.registry
    registry.max_heavy_jobs_per_caller = 1
    gate = threading.Event()

    async def hold() -> object:
        set_request_owner("principal:rita")  # rita already runs one heavy job
        return await registry.call(gate.wait, 10, heavy=True)

    held = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    request = risk_pb2.RunScenarioRequest(
        perturbations=[scenario_pb2.Perturbation(node=scenario_pb2.NodeDegradation(node="nodes/t"))]
    )
    try:
        error = await rpc_error(risk.RunScenario(request, metadata=READER))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "you already have 1 heavy request" in (error.details() or "")
        assert unpack(error)["RetryInfo"].retry_delay.seconds == 5  # type: ignore[attr-defined]
        # another caller (no token: known by its address) is admitted (and queued behind the
        # held job in the one heavy worker)
        other = asyncio.ensure_future(risk.RunScenario(request))
        await asyncio.sleep(0.2)
        assert not other.done()
        gate.set()
        assert (await other).outcomes
    finally:
        gate.set()
        await held
