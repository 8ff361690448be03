"""SIGKILL at random points during writes (issue 13, hardening suite), on SQLite and on
PostgreSQL: a real ``sovrisk serve`` takes a stream of BatchUpdateGraph commits and is killed
after a seeded random delay (before, inside or after a commit, while scores are recorded,
between two calls), then restarted on the same store, many times. After every kill: every
version the client saw acknowledged is stored with the content it was acknowledged with, the
versions are contiguous (1..n, each on top of the one before), every stored version's files
match their digest and load and validate to their content hash (no torn version), and the
restarted server serves the latest version and accepts a new write.

tests/test_crash_safety.py kills inside the commit transaction at a fault-injection pause; here
nothing is paused. The servers are forked from a warm helper (tests/serverfork.py): a cold
start costs ~5 s, a fork ~0.3 s."""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sovrisk.models.graph.editing import validate_files
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from sovrisk.service.grpc_gen.sovrisk.v1 import version_pb2 as v
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.store import open_store
from sovrisk.service.store.base import SqlGraphStore
from sovrisk.service.store.sqlite import SqliteGraphStore
from tests.conftest import SMALL
from tests.serverfork import ForkedServer, ServerForker
from tests.test_server_versions import _resplit

pytestmark = pytest.mark.smoke

TRIALS_PER_BACKEND = 20
#: Seconds: the kill comes uniformly within this after the writes start (a commit on the
#: small fixture takes ~30-60 ms, so a trial sees 0 to about a dozen commits).
MAX_KILL_DELAY = 0.5
SEED = 20261213
TOKENS = {"SOVRISK_TOKENS": "ann:editor:tok"}
AUTH = (("authorization", "Bearer tok"),)


@pytest.fixture(scope="module")
def forker() -> Iterator[ServerForker]:
    forker = ServerForker()
    try:
        yield forker
    finally:
        forker.close()


def _write(stub: graph_pb2_grpc.GraphServiceStub, base: str, rng: random.Random) -> v.GraphVersion:
    """One commit on top of ``base`` that changes m1's share of chip a's memory."""
    request = _resplit(base, round(rng.uniform(0.05, 0.95), 4))
    request.request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    response = stub.BatchUpdateGraph(request, metadata=AUTH, timeout=30)
    return response.graph_version


class _Writer(threading.Thread):
    """Commits one version after another until the server dies."""

    def __init__(self, target: str, base: str, rng: random.Random) -> None:
        super().__init__()
        self.target, self.base, self.rng = target, base, rng
        self.acked: list[v.GraphVersion] = []  # what the server acknowledged
        self.in_flight = False  # a call sent and not yet answered
        self.ended = ""  # the code of the call the kill ended

    def run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = graph_pb2_grpc.GraphServiceStub(channel)
            while True:
                self.in_flight = True
                try:
                    version = _write(stub, self.base, self.rng)
                except grpc.RpcError as error:
                    self.ended = error.code().name  # type: ignore[attr-defined]
                    return
                self.in_flight = False
                self.acked.append(version)
                self.base = version.name


def _serves_latest_and_writes(
    server: ForkedServer, store: SqlGraphStore, rng: random.Random
) -> v.GraphVersion:
    """The restarted server serves the store's latest version and accepts a write on it."""
    latest = store.latest()
    assert latest is not None
    with grpc.insecure_channel(server.target) as channel:
        graph = graph_pb2_grpc.GraphServiceStub(channel)
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        listed = graph.ListGraphVersions(graph_pb2.ListGraphVersionsRequest(), timeout=30)
        assert listed.graph_versions[0].name == latest.name
        score = risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"), timeout=30)
        assert score.provenance.graph_version == latest.name
        version = _write(graph, latest.name, rng)
        assert version.name == f"graph/versions/{latest.id + 1}"
        return version


def test_sigkill_at_random_points_during_writes_loses_and_tears_nothing(
    store_url: str, tmp_path: Path, forker: ServerForker
) -> None:
    backend = "postgresql" if store_url.startswith("postgresql") else "sqlite"
    rng = random.Random(f"{SEED}-{backend}")
    GraphRegistry.open(store_url, seed=SMALL).close()  # version 1
    store = open_store(store_url)
    acked: dict[int, v.GraphVersion] = {}
    checked: set[int] = set()
    lost: list[int] = []
    torn: list[str] = []
    ended: Counter[str] = Counter()  # how the writes the kills ended ended
    before_commit = 0  # kills before the write in flight committed
    unacknowledged = 0  # kills after it committed, before the client had the answer
    started = time.monotonic()
    try:
        for trial in range(TRIALS_PER_BACKEND):
            server = forker.spawn(
                data=str(SMALL), store=store_url, log=tmp_path / f"{trial}.log", env=TOKENS
            )
            first = _serves_latest_and_writes(server, store, rng)
            acked[int(first.name.rsplit("/", 1)[1])] = first
            writer = _Writer(server.target, first.name, random.Random(rng.random()))
            writer.start()
            time.sleep(rng.uniform(0, MAX_KILL_DELAY))
            assert forker.kill(server) == -signal.SIGKILL
            writer.join(60)
            assert not writer.is_alive()
            ended[writer.ended] += 1
            trial_acked = writer.acked
            output = server.output()
            assert "Traceback" not in output, output[-3000:]
            for version in trial_acked:
                acked[int(version.name.rsplit("/", 1)[1])] = version

            # The store as the next start finds it.
            versions = sorted(store.list_versions(limit=100_000), key=lambda r: r.id)
            ids = [r.id for r in versions]
            assert ids == list(range(1, len(ids) + 1)), ids
            assert [r.parent_id for r in versions] == [None, *ids[:-1]]
            committed = len(ids) - (int(first.name.rsplit("/", 1)[1]) + len(trial_acked))
            assert committed in (0, 1)  # at most the write in flight
            unacknowledged += committed
            before_commit += writer.in_flight and not committed
            by_id = {r.id: r for r in versions}
            for vid, seen in acked.items():
                record = by_id.get(vid)
                if record is None:
                    lost.append(vid)
                elif (record.files_digest, record.content_hash) != (
                    seen.files_digest,
                    seen.content_hash,
                ):
                    torn.append(f"{vid}: stored differs from acknowledged")
            for record in versions:
                if record.id in checked:
                    continue
                files = store.files(record.id)
                if files.digest != record.files_digest:
                    torn.append(f"{record.id}: files digest")
                elif validate_files(files).graph.content_hash != record.content_hash:
                    torn.append(f"{record.id}: content hash")
                checked.add(record.id)
            if isinstance(store, SqliteGraphStore):
                assert store.integrity_check() == "ok"

        # After the last kill: a restart serves the latest version and takes a write.
        server = forker.spawn(
            data=str(SMALL), store=store_url, log=tmp_path / "last.log", env=TOKENS
        )
        try:
            _serves_latest_and_writes(server, store, rng)
        finally:
            forker.kill(server)
        latest = store.latest()
        assert latest is not None
        print(
            f"\nSIGKILL trials on {backend}: {TRIALS_PER_BACKEND} kills at random points "
            f"(0-{MAX_KILL_DELAY * 1000:.0f} ms into a stream of writes) in "
            f"{time.monotonic() - started:.1f} s; {latest.id} versions, {len(acked)} "
            f"acknowledged; kills before the write in flight committed {before_commit}, after "
            f"it committed but before its answer {unacknowledged}; the kills ended the writes "
            f"with {dict(ended)}; lost {len(lost)}, torn {len(torn)}"
        )
        assert lost == [] and torn == [], (lost, torn)
    finally:
        store.close()
