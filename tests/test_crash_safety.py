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


#: Kill trials per backend (issue 13: >= 30 across SQLite and PostgreSQL).
KILL_TRIALS = 15


def test_sigkill_at_random_points_of_a_write_stream_loses_and_tears_nothing(
    store_url: str, tmp_path: Path
) -> None:
    """A client commits versions back to back while the server is SIGKILLed at a random
    moment (seeded), KILL_TRIALS times: every version the client saw acknowledged is
    stored, versions stay contiguous, every new version's files validate, and the restarted
    server (the next trial's) serves the latest and takes writes."""
    import random
    import threading

    from sovrisk.models.graph.editing import validate_files

    rng = random.Random(20261202)
    GraphRegistry.open(store_url, seed=SMALL).close()  # version 1
    acknowledged: list[int] = []
    killed_mid_write = 0
    for trial in range(KILL_TRIALS):
        server = spawn_server(
            data=str(SMALL), store=store_url, log=tmp_path / f"{trial}.log", env=TOKENS
        )
        stop = threading.Event()
        errors: list[grpc.RpcError] = []

        def write(
            target: str = server.target,
            stop: threading.Event = stop,
            errors: list[grpc.RpcError] = errors,
        ) -> None:
            with grpc.insecure_channel(target) as channel:
                graph = graph_pb2_grpc.GraphServiceStub(channel)
                listed = graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(), timeout=30)
                latest = int(listed.graph_versions[0].name.rsplit("/", 1)[1])
                k = latest
                while not stop.is_set():
                    k += 1
                    request = _resplit(f"graph/versions/{latest}", m1=0.5 + (k % 40) / 100)
                    try:
                        done = graph.BatchUpdateGraph(request, metadata=AUTH, timeout=30)
                    except grpc.RpcError as exc:
                        errors.append(exc)
                        return
                    latest = int(done.graph_version.name.rsplit("/", 1)[1])
                    acknowledged.append(latest)

        writer = threading.Thread(target=write)
        before = len(acknowledged)
        writer.start()
        time.sleep(rng.uniform(0.05, 1.0))
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        stop.set()
        writer.join(timeout=60)
        server.stop()
        killed_mid_write += bool(errors)
        assert len(acknowledged) > before or errors, "the trial wrote nothing"

        store = open_store(store_url)
        try:
            versions = sorted(v.id for v in store.list_versions(limit=10_000))
            assert versions == list(range(1, versions[-1] + 1))  # contiguous
            assert set(acknowledged) <= set(versions)  # nothing acknowledged was lost
            for vid in versions[-(len(acknowledged) - before) - 1 :]:
                validate_files(store.files(vid))  # no torn version
            if isinstance(store, SqliteGraphStore):
                assert store.integrity_check() == "ok"
        finally:
            store.close()
    print(
        f"{KILL_TRIALS} SIGKILL trials: {len(acknowledged)} versions acknowledged, "
        f"{killed_mid_write} kills cut a write in flight, 0 lost, 0 torn"
    )
    # The last restart serves the latest version.
    server = spawn_server(data=str(SMALL), store=store_url, log=tmp_path / "last.log", env=TOKENS)
    try:
        with grpc.insecure_channel(server.target) as channel:
            listed = graph_pb2_grpc.GraphServiceStub(channel).ListGraphVersions(
                graph_pb2.ListGraphVersionsRequest(), timeout=30
            )
            assert listed.graph_versions[0].name == f"graph/versions/{max(acknowledged)}" or (
                int(listed.graph_versions[0].name.rsplit("/", 1)[1]) >= max(acknowledged)
            )
    finally:
        server.stop()
