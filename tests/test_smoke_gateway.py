"""The issue's acceptance run for the gateway: ``sovrisk serve --http-port`` as a subprocess on
the bundled data, probed with the real ``curl``: AWS's assessment as JSON, and a 404 JSON error
for an unknown provider."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import Server, free_port, spawn_server

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def http() -> Iterator[tuple[Server, int]]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = spawn_server(
            data="data",
            store=str(Path(tmp) / "store"),
            log=Path(tmp) / "server.log",
            extra=["--http-port", str(port)],
        )
        try:
            yield server, port
        finally:
            server.stop()


def _curl(port: int, path: str) -> tuple[int, dict[str, object]]:
    out = subprocess.run(
        ["curl", "-s", "-w", "\\n%{http_code}", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


def test_curl_gets_aws_and_a_json_404(http: tuple[Server, int]) -> None:
    server, port = http
    status, aws = _curl(port, "/v1/providers/aws:score")
    assert status == 200, server.output()
    assert aws["provider"] == "providers/aws"
    assert aws["displayName"] == "Amazon Web Services"
    assert 0 < float(aws["composite"]) <= 100  # type: ignore[arg-type]
    status, missing = _curl(port, "/v1/providers/nobody:score")
    assert status == 404
    error = missing["error"]
    assert isinstance(error, dict)
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    status, spec = _curl(port, "/openapi.json")
    assert status == 200 and "/v1/providers/{provider}:score" in spec["paths"]  # type: ignore[operator]
