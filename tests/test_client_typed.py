"""The typed client API against an in-process server on the bundled data: typed results
(bands as strings, dates as dates, sub-scores by name, ``raw`` kept), every read RPC,
scenarios, simulations, screening, reports, trajectories, comparisons; TLS with a
self-signed certificate; and the client's import footprint (no engine)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from sovrisk.models.graph.dataset import DATASET_FILES as ENGINE_DATASET_FILES
from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.client import (
    SovriskClient,
    country_loss,
    node_loss,
    service_config,
)
from sovrisk.service.client_types import (
    DATASET_FILES,
    Assessment,
    ProviderScore,
    SimulationProgress,
    date_arg,
    date_of,
    enum_name,
    enum_number,
)
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from sovrisk.service.paths import DEFAULT_DATA_DIR
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import RunningServer, start_server
from sovrisk.service.servicers import GraphServicer, RiskServicer
from tests.conftest import SMALL

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 12, 1)  # data/dataset.toml
TOKENS = "ann:admin:tok"
T = TypeVar("T")


class LoopThread:
    """An event loop on its own thread, so a sync client can call a grpc.aio server from a
    plain test, and one server (seconds to warm on the bundled data) serves a module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
        async def call() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(call(), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    loop = LoopThread()

    async def start() -> RunningServer:
        registry = GraphRegistry.from_directory(DEFAULT_DATA_DIR)
        return await start_server(registry, auth=TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS}))

    running = loop.run(start)
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        loop.run(lambda: running.stop(grace=0))
        loop.close()


@pytest.fixture(scope="module")
def client(target: str) -> Iterator[SovriskClient]:
    with SovriskClient(target, timeout=120) as c:
        yield c


# -- the client's own footprint ---------------------------------------------------------------


def test_importing_the_client_loads_no_engine() -> None:
    code = (
        "import service.client, sys; bad=[m for m in sys.modules if m.split('.')[0] in "
        "('models','numpy','scipy','networkx','sklearn','numba')]; assert not bad, bad"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_dataset_file_list_matches_the_engine() -> None:
    assert DATASET_FILES == ENGINE_DATASET_FILES


def test_enum_and_date_helpers() -> None:
    band = risk_pb2.RiskBand.DESCRIPTOR
    assert enum_name(band, risk_pb2.RISK_BAND_HIGH) == "high"
    assert enum_name(band, 0) == "unspecified" and enum_name(band, 99) == "99"
    for spelled in ("high", "HIGH", "RISK_BAND_HIGH", risk_pb2.RISK_BAND_HIGH):
        assert enum_number(band, spelled) == risk_pb2.RISK_BAND_HIGH
    with pytest.raises(ValueError, match="low, moderate, high, critical"):
        enum_number(band, "severe")
    assert date_of(date_arg("2026-03-31")) == dt.date(2026, 3, 31)
    assert date_of(date_arg(dt.datetime(2026, 3, 31, 12))) == dt.date(2026, 3, 31)
    assert date_arg(None) is None
    with pytest.raises(ValueError, match="as_of must be a date"):
        date_arg("31/03/2026", "as_of")
    assert "ScoreProvider" in service_config() and "GetScoreTrajectory" in service_config()


# -- scores and rankings ----------------------------------------------------------------------


def test_score_is_typed(client: SovriskClient) -> None:
    aws = client.score("aws")
    assert isinstance(aws, Assessment)
    assert aws.provider == "providers/aws" and aws.provider_id == "aws"
    assert aws.band in {"low", "moderate", "high", "critical"}
    assert aws.band == enum_name(risk_pb2.RiskBand.DESCRIPTOR, aws.raw.band)
    assert list(aws.sub_scores)[:4] == [
        "concentration",
        "structural",
        "geopolitical",
        "export_control",
    ]
    total = sum(s.contribution for s in aws.sub_scores.values()) + aws.floor_uplift
    assert total == pytest.approx(aws.composite, abs=1e-6)
    assert aws.as_of == AS_OF and aws.graph_version == "graph/versions/1"
    assert aws.dataset_version.startswith("2026.12.0") and len(aws.dataset_hash) == 64
    assert aws.horizon_weeks == 13
    assert aws.node_impacts and aws.top_chokepoints == aws.node_impacts[:5]
    assert aws.node_impacts[0].impact >= aws.node_impacts[-1].impact
    assert {c.status for c in aws.checks} <= {"pass", "fail", "inconclusive"}
    assert repr(aws).startswith(f"<Assessment aws composite={aws.composite:.1f} band={aws.band}")
    assert "raw" not in repr(aws) and len(repr(aws)) < 300
    plain = aws.to_dict()
    assert plain["band"] == aws.band and plain["as_of"] == "2026-12-01" and "raw" not in plain
    assert plain["sub_scores"]["structural"]["score"] == aws.sub_scores["structural"].score


def test_score_arguments_as_dates_strings_and_names(client: SovriskClient) -> None:
    early = client.score("providers/aws", as_of="2025-06-30", view="basic")
    same = client.score("aws", as_of=dt.date(2025, 6, 30), view="basic")
    assert early.as_of == dt.date(2025, 6, 30) and early == same  # raw is out of ==
    assert not early.node_impacts  # the BASIC view has no per-node lists
    weighted = client.score("aws", weights={"structural": 0.5}, view="basic")
    assert weighted.sub_scores["structural"].weight > early.sub_scores["structural"].weight
    with pytest.raises(grpc.RpcError) as caught:
        client.score("nobody")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_ranking_rows_and_full_view(client: SovriskClient) -> None:
    rows = list(client.provider_scores(page_size=3))
    assert all(isinstance(r, ProviderScore) for r in rows)
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].assessment is None and rows[0].band in {"low", "moderate", "high", "critical"}
    assert repr(rows[0]).startswith("<ProviderScore #1 ")
    [top] = [r for r in client.provider_scores(view="full", page_size=1)][:1]
    assert top.assessment is not None and top.assessment.provider == top.provider


def test_chokepoints_nodes_and_graph(client: SovriskClient) -> None:
    countries = list(client.chokepoints(kind="country", page_size=2))
    assert countries and {c.kind for c in countries} == {"country"}
    assert countries[0].rank == 1 and countries[0].name.startswith("countries/")
    assert all(0 <= v <= 1 for v in countries[0].impacts.values())
    assert repr(countries[0]).startswith("<Chokepoint #1 countries/")

    memory = list(client.nodes(kind="memory"))
    assert memory and {n.kind for n in memory} == {"memory"}
    node = client.node(memory[0].id)
    assert node.name == memory[0].name and node.sites and node.as_of is not None
    assert sum(s.share for s in node.sites) == pytest.approx(1.0)

    info = client.graph_info()
    assert info.as_of == AS_OF and info.dataset_version == "2026.12.0"
    assert info.kind_counts["provider"] == 7 and info.sources
    version = client.version(1)
    assert version == client.latest_version() and version.number == 1
    assert version.create_time is not None and version.create_time.tzinfo is not None


# -- what-ifs, simulation, screening, reports, trajectories, comparisons ---------------------


def test_scenario_with_builders_and_dicts(client: SovriskClient) -> None:
    result = client.scenario(
        country_loss("TWN", weeks=12),
        display_name="Taiwan, 12 weeks",
        providers=["aws", "google-cloud"],
    )
    aws = result.outcome("aws")
    assert result.display_name == "Taiwan, 12 weeks" and result.as_of == AS_OF
    assert aws.available_scenario < aws.available_baseline
    assert aws.deltas["available_capacity"].delta == pytest.approx(
        aws.available_scenario - aws.available_baseline, abs=1e-9
    )
    same = client.scenario(
        {"country": {"country": "TWN", "duration_weeks": 12, "kind": "site_loss"}},
        display_name="Taiwan, 12 weeks",
        providers=["aws", "google-cloud"],
    )
    assert same.outcome("aws") == aws
    blockade = client.scenario(country_loss("TWN", blockade=True), providers=["aws"])
    assert blockade.outcome("aws").available_scenario <= aws.available_baseline
    node = client.scenario(node_loss("tsmc-cowos-l", 0.5), providers=["aws"], as_of="2026-06-30")
    assert node.as_of == dt.date(2026, 6, 30)
    with pytest.raises(ValueError, match="at least one perturbation"):
        client.scenario()


def test_simulation_streams_progress_then_the_result(client: SovriskClient) -> None:
    seen: list[SimulationProgress] = []
    result = client.simulate(samples=2000, seed=3, providers=["aws"], on_progress=seen.append)
    assert result.samples == 2000 and result.provenance.seed == 3
    aws = result.provider("aws")
    assert 0 <= aws.p50_loss <= aws.p95_loss <= 1 and aws.cvar95 >= aws.p95_loss
    assert seen and all(0 <= p.fraction <= 1 for p in seen)
    items = list(client.simulate_stream(samples=2000, seed=3, providers=["aws"]))
    assert items[-1] == result  # seeded: the same numbers


def test_screening(client: SovriskClient) -> None:
    result = client.screen(
        ["Taiwan Semiconductor Manufacturing Co., Ltd.", {"name": "Acme Widgets", "country": "US"}]
    )
    tsmc, acme = result.results
    assert tsmc.name.startswith("Taiwan Semiconductor") and tsmc.graph_decision == "match"
    assert tsmc.graph_matches[0].target == "TSMC"
    assert acme.graph_decision == "no_match" and acme.country == "USA"
    assert "not a compliance determination" in result.disclaimer


def test_report_bytes_and_file(client: SovriskClient, tmp_path: Path) -> None:
    stages: list[str] = []
    report = client.report(
        format="markdown", providers=["aws"], on_progress=lambda p: stages.append(p.stage)
    )
    assert report.content_type.startswith("text/markdown") and report.text.startswith("#")
    assert stages and report.path is None
    written = client.report(format="csv", providers=["aws"], path=tmp_path)
    assert written.path == tmp_path / written.file_name
    assert written.path.read_bytes() == written.content and written.content_type.startswith(
        "text/csv"
    )


def test_trajectory_and_comparison(client: SovriskClient) -> None:
    trajectory = client.trajectory(["aws"], start_quarter="2026Q1", end_quarter="2026Q2")
    assert trajectory.quarters == ("2026Q1", "2026Q2")
    assert [r.as_of for r in trajectory.rows] == [dt.date(2026, 3, 31), dt.date(2026, 6, 30)]
    assert set(trajectory.series("aws")) == {"2026Q1", "2026Q2"}

    comparison = client.compare("aws", base_as_of="2025-06-30", target_as_of=AS_OF)
    assert comparison.base.as_of == dt.date(2025, 6, 30) and comparison.target.as_of == AS_OF
    assert comparison.delta.composite == pytest.approx(
        comparison.target.composite - comparison.base.composite, abs=1e-3
    )
    assert [s.name for s in comparison.steps] == ["graph_edits", "date_effects"]


# -- TLS -------------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[bytes, bytes]:
    """A self-signed certificate for localhost and 127.0.0.1 (openssl: `cryptography` is
    not a dependency)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a test certificate")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key.read_bytes(), cert.read_bytes()


def test_tls_with_a_token_as_call_credentials(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    loop = LoopThread()

    async def start() -> tuple[grpc.aio.Server, int]:
        # The public building blocks (servicers + grpc.aio.server) on a TLS port:
        # service/server.py itself serves plaintext behind a terminating proxy.
        registry = GraphRegistry.from_directory(SMALL)
        auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
        server = grpc.aio.server()
        graph_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(registry, auth), server)
        risk_pb2_grpc.add_RiskServiceServicer_to_server(RiskServicer(registry), server)
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
        await server.start()
        return server, port

    server, port = loop.run(start)
    try:
        with SovriskClient(
            f"localhost:{port}", tls=True, root_certificates=cert, token="tok", timeout=30
        ) as client:
            assert client.score("p").band in {"low", "moderate", "high", "critical"}
            # The token reached the server as `authorization: Bearer` (call credentials):
            # an edit needs it. A dict change with a date as text, validated only.
            site = {"node": "f1", "country": "TWN", "share": 1, "quality": "A"}
            site |= {"sources": ["fixture"], "as_of": "2024-01-01", "site_name": "Fab 18"}
            edit = client.batch_update([{"upsert_site": site}], message="dry", validate_only=True)
            assert edit.version is None
            [change] = edit.changes
            assert change.operation == "changed" and change.fields["site_name"] == ("", "Fab 18")
        cert_file = tmp_path / "cert.pem"
        with SovriskClient(f"127.0.0.1:{port}", root_certificates=cert_file, timeout=30) as c:
            with pytest.raises(grpc.RpcError) as caught:
                c.batch_update([{"delete_node": "t"}], message="x", validate_only=True)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED  # no token sent
        with SovriskClient(f"127.0.0.1:{port}", timeout=5, max_attempts=2) as plain:
            with pytest.raises(grpc.RpcError) as refused:
                plain.graph_info()
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE  # plaintext to TLS
    finally:
        loop.run(lambda: server.stop(0))
        loop.close()
