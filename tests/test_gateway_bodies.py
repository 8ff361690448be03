"""The gateway's request bodies and logs (issue 13 item 13): a JSON array where an object is
expected is 400, bytes that are not base64 are 400 (protobuf's parser read "!!!" as empty
bytes), and a %0A in the path cannot forge a log line."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import aiohttp
import pytest

from sovrisk.models.graph.dataset import DatasetFiles
from tests.conftest import SMALL
from tests.test_gateway import AUTH, gateway

__all__ = ["gateway"]  # the fixture

Gateway = Any


async def _post(url: str, body: str) -> tuple[int, dict[str, Any]]:
    headers = {**AUTH, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, json.loads(await response.text())


def _violations(body: dict[str, Any]) -> list[str]:
    details = body["error"]["details"]
    bad = next(d for d in details if d["@type"].endswith("BadRequest"))
    return [v["field"] for v in bad["fieldViolations"]]


@pytest.mark.parametrize("path", ["/v1/scenarios:run", "/v1/graph:batchUpdate"])
async def test_an_array_is_not_an_empty_request(gateway: Gateway, path: str) -> None:
    base, _ = gateway
    status, body = await _post(base + path, "[]")
    assert status == 400 and _violations(body) == ["body"]
    assert "must be a JSON object" in body["error"]["message"]


def _import_body(files: DatasetFiles, encode: Any, bad: str | None = None) -> str:
    items: list[dict[str, Any]] = [
        {"header": {"baseVersion": "graph/versions/1", "message": "x", "validateOnly": True}}
    ]
    for name, data in files.items():
        items.append({"chunk": {"fileName": name, "data": bad or encode(data).decode()}})
    return json.dumps(items)


async def test_bytes_must_be_base64_in_either_alphabet(gateway: Gateway) -> None:
    base, _ = gateway
    files = DatasetFiles.from_directory(SMALL)
    status, body = await _post(base + "/v1/graph:import", _import_body(files, base64.b64encode))
    assert status == 200, body
    unpadded = _import_body(files, lambda b: base64.urlsafe_b64encode(b).rstrip(b"="))
    status, _ = await _post(base + "/v1/graph:import", unpadded)
    assert status == 200
    for bad in ("!!!", "abcde", "a b c"):
        status, body = await _post(base + "/v1/graph:import", _import_body(files, None, bad))
        assert status == 400, bad
        assert _violations(body) == ["body[1].chunk.data"]


async def test_a_newline_in_the_path_cannot_forge_a_log_line(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = gateway
    with caplog.at_level(logging.INFO, logger="sovrisk"):
        async with (
            aiohttp.ClientSession() as session,
            session.get(base + "/v1/providers/p%0Aforged%20line:score") as response,
        ):
            assert response.status == 400
    lines = [r.getMessage() for r in caplog.records if "forged" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)
    assert "p%0Aforged%20line" in lines[0]
