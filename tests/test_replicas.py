"""Two `sovrisk serve` replicas on one PostgreSQL store (issue 14 item 4): an edit made
through one is served by the other within its poll interval (the delay is measured and
printed, `pytest -s`); a WatchProviderScores stream on one receives the alert for an edit made
through the other; an AIP-155 request id retried through the other replica finds the first
commit; both stay healthy. Runs on the small fixture with intervals off, so it takes seconds.

Both replicas start at once on a store that is migrated but holds no version: one seeds it, the
other finds the seed and serves it. (The migrations themselves are not safe to run from two
processes at once on PostgreSQL: two replicas that start together on a new database race on
CREATE TABLE and one exits; compose therefore starts the second replica once the first is
healthy.)"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    risk_pb2,
    risk_pb2_grpc,
)
from sovrisk.service.store import open_store
from tests import nginx_conf
from tests.conftest import SMALL, postgres_schema
from tests.serverproc import ROOT, START_TIMEOUT, Server, free_port, healthy, sovrisk_command
from tests.test_server_versions import _resplit

pytestmark = pytest.mark.smoke

POLL_INTERVAL = 0.5
#: Time allowed beyond the poll interval: building the new version's engine and scoring it
#: on a 2-core machine that may be busy with other tests.
MARGIN = 2.5
TOKENS = {"SOVRISK_TOKENS": "ann:editor:tok-editor"}
EDITOR = (("authorization", "Bearer tok-editor"),)
THRESHOLD = 52.5  # the small fixture's composite for p: 51.9 with m1 at 50 %, 53.3 at 70 %


@dataclass
class Replica:
    name: str
    server: Server
    http_port: int
    channel: grpc.Channel

    @property
    def graph(self) -> graph_pb2_grpc.GraphServiceStub:
        return graph_pb2_grpc.GraphServiceStub(self.channel)

    @property
    def risk(self) -> risk_pb2_grpc.RiskServiceStub:
        return risk_pb2_grpc.RiskServiceStub(self.channel)

    def served_version(self) -> tuple[str, float]:
        """The version ScoreProvider answers from when asked for the latest, and p's score."""
        score = self.risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
        return score.provenance.graph_version, score.composite

    def stored_versions(self) -> list[str]:
        listed = self.graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(page_size=100))
        return [v.name for v in listed.graph_versions]

    def log(self) -> str:
        return self.server.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def postgres_store() -> Iterator[str]:
    """A private schema of the test PostgreSQL."""
    with postgres_schema("replica") as url:
        yield url


@pytest.fixture(scope="module")
def replicas(
    postgres_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Replica, Replica]]:
    logs = tmp_path_factory.mktemp("replicas")
    open_store(postgres_store).close()  # migrated, no version yet

    # Both start at once. Unlike serverproc.spawn_server, which polls the health check in a
    # new process every 0.2 s, wait for the log line first: two such loops took a core from
    # the two servers importing on this 2-core machine (16.6 s to SERVING; about 10 s this way).
    started = time.monotonic()
    made: list[Replica] = []
    try:
        for name in ("A", "B"):
            port, http_port = free_port(), free_port()
            log = logs / f"{name}.log"
            with log.open("ab") as sink:
                proc = subprocess.Popen(
                    [
                        *sovrisk_command(),
                        "serve",
                        "--data",
                        str(SMALL),
                        "--store",
                        postgres_store,
                        "--port",
                        str(port),
                        "--http-port",
                        str(http_port),
                        "--poll-interval",
                        str(POLL_INTERVAL),
                        "--interval-draws",
                        "0",
                    ],
                    cwd=ROOT,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **TOKENS},
                )
            server = Server(proc, port, log)
            made.append(Replica(name, server, http_port, grpc.insecure_channel(server.target)))
        for replica in made:
            server = replica.server
            deadline = started + START_TIMEOUT
            while "sovrisk serving" not in replica.log() or not healthy(server.target):
                if server.proc.poll() is not None:
                    pytest.fail(f"{replica.name} exited {server.proc.returncode}:\n{replica.log()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{replica.name} not SERVING in time:\n{replica.log()}")
                time.sleep(0.1)
        print(f"\nreplicas: both SERVING {time.monotonic() - started:.1f} s after the start")
        yield made[0], made[1]
    finally:
        for replica in made:
            replica.channel.close()
            replica.server.stop()


def _latest(replica: Replica) -> int:
    return int(replica.stored_versions()[0].rsplit("/", 1)[1])


def _toggle(base: int) -> graph_pb2.BatchUpdateGraphRequest:
    """Move a's memory split on top of ``base`` (50 % <-> 70 % to m1: p's composite crosses
    52.5 one way or the other; version 1 is the fixture's 50 %)."""
    return _resplit(f"graph/versions/{base}", m1=0.7 if base % 2 else 0.5)


def _edit(replica: Replica) -> tuple[graph_pb2.BatchUpdateGraphResponse, float]:
    """Toggle the split through ``replica``: the response and the monotonic time it returned."""
    request = _toggle(_latest(replica))
    response = replica.graph.BatchUpdateGraph(request, metadata=EDITOR, timeout=60)
    return response, time.monotonic()


def _wait_served(replica: Replica, version: str, since: float) -> tuple[float, float]:
    """Poll ``replica`` until it answers the latest ScoreProvider from ``version``: the delay
    after ``since`` and the score."""
    deadline = since + POLL_INTERVAL + MARGIN
    while True:
        served, score = replica.served_version()
        if served == version:
            return time.monotonic() - since, score
        if time.monotonic() > deadline:
            pytest.fail(
                f"replica {replica.name} still serves {served}, not {version}, "
                f"{POLL_INTERVAL + MARGIN:.1f} s after the commit:\n{replica.server.output()}"
            )
        time.sleep(0.01)


def test_an_edit_through_one_replica_is_served_by_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    version, before = b.served_version()
    assert version == "graph/versions/1" and a.served_version() == (version, before)
    assert a.stored_versions() == b.stored_versions() == [version]  # one seed, not two

    committed, at = _edit(a)
    new = committed.graph_version.name
    assert new == "graph/versions/2"
    # The version list reads the store: B lists the new version at once, before its poll.
    assert b.stored_versions()[0] == new
    delay, after = _wait_served(b, new, at)
    assert a.served_version() == (new, after)
    assert after == pytest.approx(53.3, abs=0.05) and before == pytest.approx(51.9, abs=0.05)
    print(
        f"replicas: version 2 committed through A, served by B {1000 * delay:.0f} ms later "
        f"(poll interval {1000 * POLL_INTERVAL:.0f} ms); p {before:.1f} -> {after:.1f}"
    )
    assert delay <= POLL_INTERVAL + MARGIN

    # Each process compiles the new version's engine (A in its commit, B on its poll); the
    # analytics behind the scores are computed by one of them and read by the other
    # (test_no_per_version_analytics_are_computed_twice).
    assert f"installed as {new}" in a.log() and f"installed as {new}" in b.log()


def test_a_watch_on_one_replica_alerts_on_an_edit_through_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    current = f"graph/versions/{_latest(a)}"
    # B must have installed the version the watch starts after: a replica that has not polled
    # it yet answers NOT_FOUND for a start_after_version it does not know.
    _wait_served(b, current, time.monotonic())
    _, before = b.served_version()
    request = history_pb2.WatchProviderScoresRequest(
        providers=["providers/p"],
        thresholds=[
            history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_CHANGE, value=1.0),
            history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_ABOVE, value=THRESHOLD),
            history_pb2.ScoreThreshold(kind=history_pb2.THRESHOLD_KIND_BELOW, value=THRESHOLD),
        ],
        start_after_version=current,
    )
    stream = b.risk.WatchProviderScores(request, timeout=60)
    try:
        time.sleep(0.3)  # the stream is open and waiting before the edit lands
        committed, at = _edit(a)
        message = next(stream)
        delay = time.monotonic() - at
    finally:
        stream.cancel()
    new = committed.graph_version.name
    assert (message.graph_version, message.base_version) == (new, current)
    _, after = a.served_version()
    crossing = (
        history_pb2.THRESHOLD_KIND_ABOVE if after > before else history_pb2.THRESHOLD_KIND_BELOW
    )
    assert [x.threshold.kind for x in message.alerts] == [
        history_pb2.THRESHOLD_KIND_CHANGE,
        crossing,
    ]
    assert {x.provider for x in message.alerts} == {"providers/p"}
    assert message.alerts[0].score.base_value == pytest.approx(before)
    assert message.alerts[0].score.target_value == pytest.approx(after)
    print(
        f"replicas: {new} committed through A, its alert on B's watch {1000 * delay:.0f} ms "
        f"later; p {before:.1f} -> {after:.1f}"
    )
    assert delay <= POLL_INTERVAL + MARGIN


def test_a_request_id_retried_through_the_other_replica_makes_one_version(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    count = len(a.stored_versions())
    base = _latest(a)
    request = _toggle(base)
    request.request_id = str(uuid.uuid4())
    first = a.graph.BatchUpdateGraph(request, metadata=EDITOR, timeout=60)
    # At once, before B's poll installs it: B finds the commit by its id in the shared store.
    again = b.graph.BatchUpdateGraph(request, metadata=EDITOR, timeout=60)
    assert first.graph_version.name == f"graph/versions/{base + 1}"
    assert again.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    assert len(a.stored_versions()) == len(b.stored_versions()) == count + 1
    # Without the id the retry is a new write on a stale base: ABORTED, still one version.
    request.request_id = ""
    with pytest.raises(grpc.RpcError) as stale:
        b.graph.BatchUpdateGraph(request, metadata=EDITOR, timeout=60)
    assert stale.value.code() is grpc.StatusCode.ABORTED
    assert len(b.stored_versions()) == count + 1


def _count(replica: Replica, text: str) -> int:
    return replica.log().count(text)


def test_nginx_spreads_one_client_connection_over_both_replicas(
    replicas: tuple[Replica, Replica], tmp_path: Path
) -> None:
    """deploy/nginx.conf in front of the two replicas (when nginx is installed): the calls of
    one gRPC channel (one HTTP/2 connection) reach both, as do the gateway's; a watch opened
    through the balancer gets the alert of an edit made through it."""
    binary = nginx_conf.nginx()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx-light)")
    a, b = replicas
    grpc_port, http_port = free_port(), free_port()
    config = nginx_conf.local_config(
        binary=binary,
        folder=tmp_path,
        grpc_servers=[a.server.target, b.server.target],
        http_servers=[f"127.0.0.1:{r.http_port}" for r in replicas],
        grpc_port=grpc_port,
        http_port=http_port,
    )
    log = tmp_path / "nginx.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [binary, "-e", "stderr", "-p", str(tmp_path), "-c", str(config), "-g", "daemon off;"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    target = f"127.0.0.1:{grpc_port}"
    try:
        deadline = time.monotonic() + 20
        while not healthy(target):  # grpc.health.v1 through the balancer
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        method = "method=/sovrisk.v1.RiskService/ScoreProvider"
        before = [_count(r, method) for r in replicas]
        with grpc.insecure_channel(target) as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            for _ in range(10):
                risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"), timeout=30)
            time.sleep(0.2)  # the request lines are written after the answer
            spread = [_count(r, method) - n for r, n in zip(replicas, before, strict=True)]
            print(
                f"replicas: 10 ScoreProvider calls on one channel through nginx: A {spread[0]}, "
                f"B {spread[1]}"
            )
            assert sum(spread) == 10 and min(spread) >= 1

            route = "http GET /v1/providers/p:score"
            before = [_count(r, route) for r in replicas]
            for _ in range(6):
                url = f"http://127.0.0.1:{http_port}/v1/providers/p:score"
                with urllib.request.urlopen(url, timeout=30) as response:
                    assert response.status == 200
            time.sleep(0.2)
            spread = [_count(r, route) - n for r, n in zip(replicas, before, strict=True)]
            assert sum(spread) == 6 and min(spread) >= 1

            # A watch through the balancer, an edit through the balancer (either replica).
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            latest = graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest()).graph_versions
            current = latest[0].name
            for replica in replicas:
                _wait_served(replica, current, time.monotonic())
            stream = risk.WatchProviderScores(
                history_pb2.WatchProviderScoresRequest(
                    providers=["providers/p"],
                    thresholds=[
                        history_pb2.ScoreThreshold(
                            kind=history_pb2.THRESHOLD_KIND_CHANGE, value=1.0
                        )
                    ],
                    start_after_version=current,
                ),
                timeout=60,
            )
            try:
                time.sleep(0.3)
                base = int(current.rsplit("/", 1)[1])
                done = graph.BatchUpdateGraph(_toggle(base), metadata=EDITOR, timeout=60)
                message = next(stream)
            finally:
                stream.cancel()
            assert message.graph_version == done.graph_version.name
            assert [x.threshold.kind for x in message.alerts] == [history_pb2.THRESHOLD_KIND_CHANGE]
        assert proc.poll() is None, log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_both_replicas_are_healthy_after(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    latest = f"graph/versions/{_latest(a)}"
    for replica in replicas:
        assert replica.server.proc.poll() is None, replica.server.output()
        assert healthy(replica.server.target)
        url = f"http://127.0.0.1:{replica.http_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        _wait_served(replica, latest, time.monotonic())
        log = replica.log()
        assert "store refresh failed" not in log and "Traceback" not in log, log
    assert a.stored_versions() == b.stored_versions()


def test_no_per_version_analytics_are_computed_twice(
    replicas: tuple[Replica, Replica], postgres_store: str
) -> None:
    """Every analysis (cut sets and each published assessment here) of every
    version both replicas served was computed once: the computations logged by the two
    replicas add up to the rows stored, each row written by one of them."""
    for replica in replicas:
        replica.served_version()
    store = open_store(postgres_store)
    try:
        deadline = time.monotonic() + 60
        while True:  # the score history's background scoring may still hold a claim
            with store._transaction(write=False) as cur:
                cur.execute("SELECT COUNT(*) FROM analytics_claims")
                claims = int(cur.fetchone()[0])
            if claims == 0:
                break
            assert time.monotonic() < deadline, f"{claims} analytics claims still held"
            time.sleep(0.1)
        rows = store.analytics_computers()
        kinds = {kind: n for kind, n, _ in store.analytics_summary()}
    finally:
        store.close()
    computed = {r.name: r.log().count("computed and stored") for r in replicas}
    print(f"replicas: {len(rows)} analytics stored {kinds}; computed by A/B: {computed}")
    # (the small fixture has no events or resilience table: no tail, no LPs)
    assert kinds.keys() == {"assessment", "cut_sets"}
    assert sum(computed.values()) == len(rows)
