"""The issue's acceptance run, with the grpcurl binary against ``sovrisk serve`` on the bundled
data: a watcher subscribes, an editor adds a second HBM source for Trainium3, a new version
appears, AWS's assessment changes, CompareAssessments explains why, the watcher is alerted."""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import Server, spawn_server
from tests.test_smoke_grpcurl import grpcurl, run_grpcurl  # noqa: F401 - fixture

pytestmark = pytest.mark.smoke

TOKEN_HEADER = "authorization: Bearer smoke-editor-token"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory() as tmp:
        running = spawn_server(
            data="data",
            store=str(Path(tmp) / "store"),
            log=Path(tmp) / "server.log",
            env={"SOVRISK_TOKENS": "analyst:editor:smoke-editor-token"},
        )
        try:
            yield running
        finally:
            running.stop()


def _hbm(supplier: str, share: float) -> dict[str, object]:
    return {
        "upsertEdge": {
            "consumer": "aws-trainium3",
            "category": "memory",
            "supplier": supplier,
            "share": share,
            "quality": "C",
            "sources": ["analyst-estimate"],
            "asOf": {"year": 2026, "month": 11, "day": 24},
            "notes": "Samsung HBM4 qualified as a further source (what-if edit)",
        }
    }


def _first_message(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The first message grpcurl prints for a stream: lines up to the closing brace."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()  # raw reads: a buffered readline would hide data from select
    text = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        text += chunk.decode()
        if "\n}\n" in text:
            message: dict[str, Any] = json.loads(text[: text.index("\n}\n") + 2])
            return message
    pytest.fail(f"no message from the watch stream within {timeout:.0f} s: {text}")


def test_an_edit_over_grpc_is_versioned_explained_and_alerted(grpcurl: str, server: Server) -> None:  # noqa: F811
    score = json.loads(
        run_grpcurl(
            grpcurl, server, "sovrisk.v1.RiskService/ScoreProvider", {"name": "providers/aws"}
        )
    )
    watch = subprocess.Popen(
        [
            grpcurl,
            "-plaintext",
            "-max-time",
            "120",
            "-d",
            json.dumps(
                {
                    "providers": ["providers/aws"],
                    "thresholds": [
                        {
                            "metric": "SCORE_METRIC_CONCENTRATION",
                            "kind": "THRESHOLD_KIND_CHANGE",
                            "value": 0.05,
                        },
                        {"kind": "THRESHOLD_KIND_ABOVE", "value": 90},
                    ],
                }
            ),
            server.target,
            "sovrisk.v1.RiskService/WatchProviderScores",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the watcher subscribes before the edit
        edit = {
            "parent": "graph",
            "baseVersion": "graph/versions/1",
            "message": "Samsung HBM4 qualified for Trainium3",
            "changes": [
                _hbm("skhynix-hbm3e", 0.5),
                _hbm("micron-hbm3e", 0.2),
                _hbm("samsung-hbm3e", 0.15),
                _hbm("samsung-hbm4", 0.15),
            ],
        }
        denied = subprocess.run(
            [
                grpcurl,
                "-plaintext",
                "-d",
                json.dumps(edit),
                server.target,
                "sovrisk.v1.GraphService/BatchUpdateGraph",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert denied.returncode != 0 and "Unauthenticated" in denied.stderr
        done = json.loads(
            run_grpcurl(
                grpcurl,
                server,
                "sovrisk.v1.GraphService/BatchUpdateGraph",
                edit,
                headers=[TOKEN_HEADER],
                max_time=60,
            )
        )
        assert done["graph_version"]["name"] == "graph/versions/2", done
        assert done["graph_version"]["author"] == "analyst"
        added = [c for c in done["changes"] if c["operation"] == "CHANGE_OPERATION_ADDED"]
        assert [c["key"] for c in added] == [["aws-trainium3", "memory", "samsung-hbm4"]]

        versions = json.loads(
            run_grpcurl(grpcurl, server, "sovrisk.v1.GraphService/ListGraphVersions", {})
        )
        assert [v["name"] for v in versions["graph_versions"]] == [
            "graph/versions/2",
            "graph/versions/1",
        ]
        after = json.loads(
            run_grpcurl(
                grpcurl, server, "sovrisk.v1.RiskService/ScoreProvider", {"name": "providers/aws"}
            )
        )
        assert after["provenance"]["graph_version"] == "graph/versions/2"
        assert after["composite"] != score["composite"]

        why = json.loads(
            run_grpcurl(
                grpcurl,
                server,
                "sovrisk.v1.RiskService/CompareAssessments",
                {"name": "providers/aws"},
                max_time=120,
            )
        )
        edits = why["steps"][0]
        assert edits["name"] == "graph_edits"
        assert [c["label"] for c in edits["causes"]] == ["edge aws-trainium3/memory"]
        assert why["delta"]["composite"] == pytest.approx(
            after["composite"] - score["composite"], abs=1e-6
        )
        assert "edge aws-trainium3/memory" in why["summary"]

        first = _first_message(watch, timeout=120)
    finally:
        watch.kill()
        watch.wait(timeout=10)
    assert first["graph_version"] == "graph/versions/2"
    [alert] = first["alerts"]
    assert alert["provider"] == "providers/aws"
    assert alert["threshold"]["metric"] == "SCORE_METRIC_CONCENTRATION"
    assert alert["score"]["delta"] < -0.05
