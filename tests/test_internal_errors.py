"""A failure nobody anticipated reaches the client as INTERNAL with a reference, never the
exception's class, message or traceback (issue 13 item 13: UNKNOWN statuses exposed them);
the server logs the traceback under the same reference. A cancelled domain operation is
CANCELLED."""

from __future__ import annotations

import logging

import grpc
import pytest

from sovrisk.models.cancellation import OperationCancelled
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from tests.conftest import SMALL
from tests.test_server import rpc_error, unpack

SECRET = "/srv/secret/path/db.sqlite: disk I/O"


async def test_unexpected_exceptions_are_internal_with_a_reference_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: RiskEngine, provider_id: str, params: object) -> None:
        raise OSError(SECRET)

    registry = GraphRegistry.from_directory(SMALL)
    running = await start_server(registry, port=0)
    monkeypatch.setattr(RiskEngine, "assess", broken)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            with caplog.at_level(logging.ERROR, logger="sovrisk.servicers"):
                error = await rpc_error(
                    risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
                )
            assert error.code() is grpc.StatusCode.INTERNAL
            text = error.details() or ""
            assert "secret" not in text and "OSError" not in text and "Traceback" not in text
            info = unpack(error)["ErrorInfo"]
            reference = info.metadata["reference"]  # type: ignore[attr-defined]
            assert len(reference) == 12 and reference in text
            logged = [r for r in caplog.records if reference in r.getMessage()]
            assert logged and logged[0].exc_info is not None  # the server keeps the traceback

            def cancelled(self: RiskEngine, provider_id: str, params: object) -> None:
                raise OperationCancelled()

            monkeypatch.setattr(RiskEngine, "assess", cancelled)
            error = await rpc_error(
                risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            )
            assert error.code() is grpc.StatusCode.CANCELLED
    finally:
        await running.stop(0)
        registry.close()
