"""JSON logs: one object per request line, the request fields as keys, no token."""

from __future__ import annotations

import io
import json
import logging

import grpc

from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc
from sovrisk.service.logs import HANDLER_NAME, JsonFormatter
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from tests.conftest import SMALL


async def test_json_request_lines_carry_method_code_and_duration() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.set_name(HANDLER_NAME + "-test")
    requests = logging.getLogger("sovrisk.requests")
    requests.addHandler(handler)
    requests.setLevel(logging.INFO)
    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            await risk.ScoreProvider(
                risk_pb2.ScoreProviderRequest(name="providers/p"),
                metadata=(("authorization", "Bearer secret-token"),),
            )
    finally:
        await running.stop(0)
        requests.removeHandler(handler)
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if "ScoreProvider" in x]
    assert line["transport"] == "grpc" and line["code"] == "OK" and line["ms"] >= 0
    assert line["method"] == "/sovrisk.v1.RiskService/ScoreProvider"
    assert line["level"] == "INFO" and line["logger"] == "sovrisk.requests"
    assert "secret-token" not in stream.getvalue()
