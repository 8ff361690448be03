"""Nothing lost: a server killed with SIGKILL in the middle of a commit (paused inside the
store transaction by a fault-injection switch) leaves the previous version intact, and the
next start serves it and accepts writes again. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from sovrisk.service.grpc_gen.sovrisk.v1 import version_pb2 as v
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.store import open_store
from sovrisk.service.store.base import PAUSE_BEFORE_COMMIT_ENV
from sovrisk.service.store.sqlite import SqliteGraphStore
from tests.conftest import SMALL
from tests.serverproc import Server, spawn_server
from tests.test_server_versions import _resplit

pytestmark = pytest.mark.smoke

TOKENS = {"SOVRISK_TOKENS": "adam:admin:tok"}
AUTH = (("authorization", "Bearer tok"),)


def _import_requests() -> Iterator[graph_pb2.ImportGraphRequest]:
    files = DatasetFiles.from_directory(SMALL)
    edges = files["edges.csv"].replace(b"a,memory,m1,0.5", b"a,memory,m1,0.6")
    edges = edges.replace(b"a,memory,m2,0.5", b"a,memory,m2,0.4")
    header = graph_pb2.ImportGraphHeader(base_version="graph/versions/1", message="import")
    yield graph_pb2.ImportGraphRequest(header=header)
    for name, data in files.replace({"edges.csv": edges}).items():
        yield graph_pb2.ImportGraphRequest(chunk=v.FileChunk(file_name=name, data=data))


def _wait_for(server: Server, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output():
        if time.monotonic() > deadline or server.proc.poll() is not None:
            pytest.fail(f"never saw {text!r}:\n{server.output()}")
        time.sleep(0.05)


@pytest.mark.parametrize("write", ["batch_update", "import"])
def test_sigkill_mid_commit_keeps_the_previous_version(
    store_url: str, tmp_path: Path, write: str
) -> None:
    GraphRegistry.open(store_url, seed=SMALL).close()  # version 1
    before = open_store(store_url).files(1).digest
    env = {**TOKENS, PAUSE_BEFORE_COMMIT_ENV: "120"}
    server = spawn_server(data=str(SMALL), store=store_url, log=tmp_path / "1.log", env=env)
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = graph_pb2_grpc.GraphServiceStub(channel)
            if write == "batch_update":
                call = stub.BatchUpdateGraph.future(
                    _resplit("graph/versions/1"), metadata=AUTH, timeout=120
                )
            else:
                call = stub.ImportGraph.future(_import_requests(), metadata=AUTH, timeout=120)
            _wait_for(server, "sovrisk-fault: paused before commit")
            os.kill(server.proc.pid, signal.SIGKILL)
            assert server.proc.wait(timeout=10) == -signal.SIGKILL
            with pytest.raises(grpc.RpcError):
                call.result(timeout=30)
    finally:
        server.stop()

    store = open_store(store_url)
    latest = store.latest()
    assert latest is not None and latest.id == 1
    assert store.files(1).digest == before
    if isinstance(store, SqliteGraphStore):
        assert store.integrity_check() == "ok"

    server = spawn_server(data=str(SMALL), store=store_url, log=tmp_path / "2.log", env=TOKENS)
    try:
        with grpc.insecure_channel(server.target) as channel:
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            listed = graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(), timeout=30)
            assert [x.name for x in listed.graph_versions] == ["graph/versions/1"]
            score = risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            assert score.provenance.graph_version == "graph/versions/1"
            done = graph.BatchUpdateGraph(_resplit("graph/versions/1"), metadata=AUTH, timeout=60)
            assert done.graph_version.name == "graph/versions/2"
    finally:
        server.stop()
