"""A typed Python client for the sovrisk gRPC API.

Results are frozen dataclasses (:mod:`service.client_types`): bands and kinds are lowercase
strings (``score.band == "high"``), dates are :class:`datetime.date`, sub-scores are keyed by
name, and every result keeps the message it came from in ``.raw``. Dates may be passed as
dates or ``"YYYY-MM-DD"``; providers and nodes by id ("aws") or resource name
("providers/aws").

Deadlines on every call, retries with exponential backoff on ``UNAVAILABLE`` for reads (by
gRPC's own retry policy, so a server restart or a load-balancer hiccup is invisible),
iterators that walk AIP-158 pages for you, TLS and bearer tokens.

>>> with SovriskClient("127.0.0.1:50051") as client:          # doctest: +SKIP
...     aws = client.score("aws", as_of="2026-01-01")
...     print(aws.band, aws.sub_scores["structural"].score)
...     for row in client.provider_scores():
...         print(row.rank, row.provider_id, round(row.composite, 1))

Only grpc, protobuf, googleapis-common-protos, the generated stubs and the standard library
are imported here (tests/test_client_typed.py checks it): a client install needs no engine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from sovrisk.service.client_types import (
    Assessment,
    Chokepoint,
    Comparison,
    DatasetFolder,
    EditResult,
    GraphDiff,
    GraphInfo,
    GraphVersion,
    Node,
    ProviderScore,
    Report,
    ReportProgress,
    ScenarioResult,
    ScreeningResult,
    SimulationProgress,
    SimulationResult,
    Trajectory,
    WatchEvent,
    date_arg,
    enum_number,
)
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    common_pb2,
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    report_pb2,
    risk_pb2,
    risk_pb2_grpc,
    scenario_pb2,
    screening_pb2,
    simulation_pb2,
    version_pb2,
)

#: Reads are retried on UNAVAILABLE, and so is BatchUpdateGraph: every edit carries a fresh
#: AIP-155 ``request_id`` that gRPC's retry resends, so a commit whose answer was lost is
#: returned, not made twice. Streams are not retried: a retry after the first message would
#: replay it (an import can be retried by calling again with the same ``request_id``).
RETRIED_METHODS: dict[str, tuple[str, ...]] = {
    "sovrisk.v1.GraphService": (
        "BatchUpdateGraph",
        "GetGraph",
        "ListNodes",
        "GetNode",
        "ListGraphVersions",
        "GetGraphVersion",
        "DiffGraphVersions",
    ),
    "sovrisk.v1.RiskService": (
        "ScoreProvider",
        "ListProviderScores",
        "ListChokepoints",
        "RunScenario",
        "CompareAssessments",
        "ScreenSuppliers",
        "GetScoreTrajectory",
    ),
}
DEFAULT_TIMEOUT = 60.0
#: Deadline floor of the long computations (comparisons, simulations, reports, imports).
LONG_TIMEOUT = 600.0
CHUNK_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

T = TypeVar("T")
M = TypeVar("M", bound=Message)
Page = TypeVar("Page")
DateArg = dt.date | str | None
Pem = bytes | str | os.PathLike[str]
Threshold = history_pb2.ScoreThreshold | Mapping[str, Any] | tuple[str, str, float]


def service_config(max_attempts: int = 5) -> str:
    """gRPC service config: retry reads on UNAVAILABLE with backoff 0.1 s x2 up to 2 s."""
    policy = {
        "maxAttempts": max_attempts,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [
                        {"service": s, "method": m} for s, ms in RETRIED_METHODS.items() for m in ms
                    ],
                    "retryPolicy": policy,
                }
            ]
        }
    )


def pages(
    call: Callable[[str], Page], items: Callable[[Page], Iterable[T]], token: Callable[[Page], str]
) -> Iterator[T]:
    """Walk a paginated list method: ``call(page_token)`` until the token is empty."""
    next_token = ""
    while True:
        page = call(next_token)
        yield from items(page)
        next_token = token(page)
        if not next_token:
            return


# -- request builders ------------------------------------------------------------------------
# Scenario perturbations by keyword; ``SovriskClient.scenario`` also takes the same changes as
# dicts in the proto's shape ({"country": {"country": "TWN", "kind": "blockade"}}).


def node_loss(
    node: str, fraction: float | None = None, *, weeks: float = 0.0
) -> scenario_pb2.Perturbation:
    """A node loses ``fraction`` of its capacity (default: all of it) for ``weeks``."""
    change = scenario_pb2.NodeDegradation(
        node=_name("nodes", node), fraction_lost=fraction, duration_weeks=weeks
    )
    return scenario_pb2.Perturbation(node=change)


def country_loss(
    country: str, fraction: float | None = None, *, weeks: float = 0.0, blockade: bool = False
) -> scenario_pb2.Perturbation:
    """Every site in ``country`` (ISO3) loses ``fraction`` of its capacity, or with
    ``blockade`` every edge crossing its border stops."""
    change = scenario_pb2.CountryDegradation(
        country=country,
        fraction_lost=fraction,
        duration_weeks=weeks,
        kind=_country_event(blockade),
    )
    return scenario_pb2.Perturbation(country=change)


def pool_loss(
    pool: str, fraction: float | None = None, *, weeks: float = 0.0
) -> scenario_pb2.Perturbation:
    """Every node of a constrained pool (e.g. "cowos") loses ``fraction`` of its capacity."""
    change = scenario_pb2.PoolDegradation(pool=pool, fraction_lost=fraction, duration_weeks=weeks)
    return scenario_pb2.Perturbation(pool=change)


def regime_activation(
    regime: str, severity: float | None = None, *, weeks: float = 0.0
) -> scenario_pb2.Perturbation:
    """An existing regime in force on the scenario date, optionally at another severity."""
    change = scenario_pb2.RegimeActivation(
        regime=_name("regimes", regime), severity=severity, duration_weeks=weeks
    )
    return scenario_pb2.Perturbation(activate_regime=change)


def share_override(
    consumer: str, category: str, supplier: str, share: float
) -> scenario_pb2.Perturbation:
    """Set a supplier's share of a consumer's category (0 removes it)."""
    change = scenario_pb2.ShareOverride(
        consumer=_name("nodes", consumer),
        category=category,
        supplier=_name("nodes", supplier),
        share=share,
    )
    return scenario_pb2.Perturbation(share=change)


def parameter(name: str, value: float) -> scenario_pb2.Perturbation:
    """Override a scoring parameter ("alpha", "weights.structural", "capacity.{node}")."""
    return scenario_pb2.Perturbation(
        parameter=scenario_pb2.ParameterOverride(name=name, value=value)
    )


class SovriskClient:
    """Sync client over one channel.

    ``tls`` (or any of ``root_certificates``, ``certificate_chain``, ``private_key``) makes a
    TLS channel; certificates are PEM bytes, PEM text or a file path, and without
    ``root_certificates`` the system roots are used. ``server_name`` overrides the name the
    server's certificate is checked against. ``token`` is sent as ``authorization: Bearer``
    (needed for edits): as call credentials over TLS, as plain metadata otherwise (gRPC
    refuses call credentials on an insecure channel). ``timeout`` is each call's deadline in
    seconds (long computations get at least ``LONG_TIMEOUT``).
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: Pem | None = None,
        certificate_chain: Pem | None = None,
        private_key: Pem | None = None,
        server_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 5,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        self.timeout = timeout
        secure = tls or any(v is not None for v in (root_certificates, certificate_chain))
        credentials = None
        if secure and channel is None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates),
                private_key=_pem(private_key),
                certificate_chain=_pem(certificate_chain),
            )
            if token:
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.access_token_call_credentials(token)
                )
        in_metadata = bool(token) and credentials is None
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if in_metadata else ()
        )
        channel_options = [
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(max_attempts)),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            *((("grpc.ssl_target_name_override", server_name),) if server_name else ()),
            *options,
        ]
        if channel is not None:
            self._channel = channel
        elif credentials is not None:
            self._channel = grpc.secure_channel(target, credentials, options=channel_options)
        else:
            self._channel = grpc.insecure_channel(target, options=channel_options)
        self.graph = graph_pb2_grpc.GraphServiceStub(self._channel)
        self.risk = risk_pb2_grpc.RiskServiceStub(self._channel)

    # -- plumbing ----------------------------------------------------------------------------

    def __enter__(self) -> SovriskClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _kw(self, timeout: float | None = None, *, floor: float = 0.0) -> dict[str, Any]:
        return {"timeout": max(timeout or self.timeout, floor), "metadata": self._metadata}

    def _latest_name(self, base_version: str | int | None) -> str:
        """The version an edit is based on: the one given, else the latest, read now."""
        return _version_name(base_version) if base_version else self.latest_version().name

    # -- scores ------------------------------------------------------------------------------

    def score(
        self,
        provider: str,
        *,
        as_of: DateArg = None,
        graph_version: str | int = "",
        horizon_weeks: float = 0.0,
        weights: Mapping[str, float] | None = None,
        view: str = "full",
        interval_draws: int | None = None,
        interval_seed: int | None = None,
    ) -> Assessment:
        """One provider's assessment (``provider`` is an id like "aws" or "providers/aws");
        ``view="basic"`` is the headline without the per-node, per-country, ... lists."""
        request = risk_pb2.ScoreProviderRequest(
            name=_name("providers", provider),
            as_of=date_arg(as_of, "as_of"),
            weights=_weights(weights),
            graph_version=_version_name(graph_version),
            horizon_weeks=horizon_weeks,
            interval_draws=interval_draws,
            interval_seed=interval_seed,
            view=_choice(risk_pb2.AssessmentView, view),
        )
        return Assessment.from_proto(self.risk.ScoreProvider(request, **self._kw()))

    def provider_scores(
        self,
        *,
        as_of: DateArg = None,
        graph_version: str | int = "",
        horizon_weeks: float = 0.0,
        weights: Mapping[str, float] | None = None,
        view: str = "basic",
        interval_draws: int | None = None,
        interval_seed: int | None = None,
        page_size: int = 100,
    ) -> Iterator[ProviderScore]:
        """Every provider, riskiest first, across all pages (``view="full"`` adds each
        provider's whole assessment as ``row.assessment``)."""
        base = risk_pb2.ListProviderScoresRequest(
            page_size=page_size,
            as_of=date_arg(as_of, "as_of"),
            weights=_weights(weights),
            graph_version=_version_name(graph_version),
            horizon_weeks=horizon_weeks,
            interval_draws=interval_draws,
            interval_seed=interval_seed,
            view=_choice(risk_pb2.AssessmentView, view),
        )
        rows = pages(
            lambda t: self.risk.ListProviderScores(_with_token(base, t), **self._kw()),
            lambda p: p.provider_scores,
            lambda p: p.next_page_token,
        )
        return map(ProviderScore.from_proto, rows)

    def chokepoints(
        self,
        *,
        kind: str | int = 0,
        min_impact: float = 0.0,
        as_of: DateArg = None,
        horizon_weeks: float = 0.0,
        blockade: bool = False,
        graph_version: str | int = "",
        page_size: int = 100,
    ) -> Iterator[Chokepoint]:
        """Nodes, firms and countries whose loss cuts providers, worst first; ``kind`` is
        "node", "firm" or "country" (default all); ``blockade`` reads country chokepoints as
        blockades rather than site losses."""
        base = risk_pb2.ListChokepointsRequest(
            page_size=page_size,
            as_of=date_arg(as_of, "as_of"),
            min_impact=min_impact,
            kind=_choice(risk_pb2.ChokepointKind, kind),
            graph_version=_version_name(graph_version),
            horizon_weeks=horizon_weeks,
            country_event=_country_event(blockade),
        )
        rows = pages(
            lambda t: self.risk.ListChokepoints(_with_token(base, t), **self._kw()),
            lambda p: p.chokepoints,
            lambda p: p.next_page_token,
        )
        return map(Chokepoint.from_proto, rows)

    def trajectory(
        self,
        providers: Sequence[str] = (),
        *,
        start_quarter: str = "",
        end_quarter: str = "",
        horizon_weeks: int = 0,
        weights: Mapping[str, float] | None = None,
        timeout: float | None = None,
    ) -> Trajectory:
        """Scores quarter by quarter ("2025Q1".."2026Q4"; default: the fleet series)."""
        request = risk_pb2.GetScoreTrajectoryRequest(
            names=[_name("providers", p) for p in providers],
            start_quarter=start_quarter,
            end_quarter=end_quarter,
            horizon_weeks=horizon_weeks,
            weights=_weights(weights),
        )
        response = self.risk.GetScoreTrajectory(request, **self._kw(timeout))
        return Trajectory.from_proto(response)

    def compare(
        self,
        provider: str,
        *,
        base_version: str | int = "",
        target_version: str | int = "",
        base_as_of: DateArg = None,
        target_as_of: DateArg = None,
        timeout: float | None = None,
    ) -> Comparison:
        """Why a provider's assessment changed between two versions and/or dates (default:
        the latest version against its base, each at its dataset's date)."""
        request = risk_pb2.CompareAssessmentsRequest(
            name=_name("providers", provider),
            base_version=_version_name(base_version),
            target_version=_version_name(target_version),
            base_as_of=date_arg(base_as_of, "base_as_of"),
            target_as_of=date_arg(target_as_of, "target_as_of"),
        )
        response = self.risk.CompareAssessments(request, **self._kw(timeout, floor=LONG_TIMEOUT))
        return Comparison.from_proto(response)

    # -- what-ifs, simulations, screening, reports ------------------------------------------

    def scenario(
        self,
        *perturbations: scenario_pb2.Perturbation | Mapping[str, Any],
        display_name: str = "",
        providers: Sequence[str] = (),
        as_of: DateArg = None,
        horizon_weeks: float = 0.0,
        weights: Mapping[str, float] | None = None,
        allocation_rule: str | int = 0,
        priority: Sequence[str] = (),
        graph_version: str | int = "",
        timeout: float | None = None,
    ) -> ScenarioResult:
        """What-if: apply the perturbations (built with :func:`node_loss`,
        :func:`country_loss`, ... or dicts in the proto's shape) and compare every provider
        (or ``providers``) with the baseline."""
        if not perturbations:
            raise ValueError("a scenario needs at least one perturbation")
        request = risk_pb2.RunScenarioRequest(
            display_name=display_name,
            perturbations=[_message(p, scenario_pb2.Perturbation) for p in perturbations],
            providers=[_name("providers", p) for p in providers],
            as_of=date_arg(as_of, "as_of"),
            weights=_weights(weights),
            graph_version=_version_name(graph_version),
            horizon_weeks=horizon_weeks,
            allocation_rule=_choice(common_pb2.AllocationRule, allocation_rule),
            priority=list(priority),
        )
        response = self.risk.RunScenario(request, **self._kw(timeout))
        return ScenarioResult.from_proto(response)

    def simulate_stream(
        self,
        *,
        samples: int = 10_000,
        seed: int = 0,
        providers: Sequence[str] = (),
        events: Sequence[simulation_pb2.DisruptionEvent | Mapping[str, Any]] = (),
        independent_failure_probability: float | None = None,
        sensitivity: bool = False,
        graph_version: str | int = "",
        timeout: float | None = None,
    ) -> Generator[SimulationProgress | SimulationResult, None, None]:
        """Progress messages, then the result (the last item). Closing the generator early
        cancels the simulation on the server."""
        request = risk_pb2.SimulateDisruptionsRequest(
            providers=[_name("providers", p) for p in providers],
            samples=samples,
            seed=seed,
            events=[_message(e, simulation_pb2.DisruptionEvent) for e in events],
            independent_failure_probability=independent_failure_probability,
            sensitivity=sensitivity,
            graph_version=_version_name(graph_version),
        )
        call = self.risk.SimulateDisruptions(request, **self._kw(timeout, floor=LONG_TIMEOUT))
        for message in _cancelling(call):
            if message.HasField("result"):
                yield SimulationResult.from_proto(message.result)
            else:
                yield SimulationProgress.from_proto(message.progress)

    def simulate(
        self,
        *,
        samples: int = 10_000,
        seed: int = 0,
        providers: Sequence[str] = (),
        events: Sequence[simulation_pb2.DisruptionEvent | Mapping[str, Any]] = (),
        independent_failure_probability: float | None = None,
        sensitivity: bool = False,
        graph_version: str | int = "",
        on_progress: Callable[[SimulationProgress], None] | None = None,
        timeout: float | None = None,
    ) -> SimulationResult:
        """Correlated Monte Carlo of disruptions: the result; ``on_progress`` sees each
        progress message on the way (use :meth:`simulate_stream` to iterate instead)."""
        stream = self.simulate_stream(
            samples=samples,
            seed=seed,
            providers=providers,
            events=events,
            independent_failure_probability=independent_failure_probability,
            sensitivity=sensitivity,
            graph_version=graph_version,
            timeout=timeout,
        )
        return _last(stream, SimulationResult, on_progress, "the simulation")

    def screen(
        self,
        suppliers: Iterable[str | Mapping[str, Any] | screening_pb2.SupplierRecord],
        *,
        match_threshold: float = 0.0,
        review_threshold: float = 0.0,
        graph_version: str | int = "",
        timeout: float | None = None,
    ) -> ScreeningResult:
        """Screen a supplier list (names, or dicts with name, country, spend, category)
        against the graph's firms and the export-control entity list. Evidence for review,
        not a compliance determination."""
        request = screening_pb2.ScreenSuppliersRequest(
            suppliers=[_supplier(s) for s in suppliers],
            match_threshold=match_threshold,
            review_threshold=review_threshold,
            graph_version=_version_name(graph_version),
        )
        response = self.risk.ScreenSuppliers(request, **self._kw(timeout))
        return ScreeningResult.from_proto(response)

    def report(
        self,
        *,
        format: str | int = "html",
        providers: Sequence[str] = (),
        as_of: DateArg = None,
        simulate_samples: int = 0,
        seed: int = 0,
        include_trajectory: bool = False,
        interval_draws: int | None = None,
        graph_version: str | int = "",
        path: str | os.PathLike[str] | None = None,
        on_progress: Callable[[ReportProgress], None] | None = None,
        timeout: float | None = None,
    ) -> Report:
        """Generate a report ("html", "markdown", "csv" or "json"): its bytes and media
        type; with ``path`` also written there (a folder: under the report's file name)."""
        request = report_pb2.GenerateReportRequest(
            format=_choice(report_pb2.ReportFormat, format),
            providers=[_name("providers", p) for p in providers],
            as_of=date_arg(as_of, "as_of"),
            simulate_samples=simulate_samples,
            seed=seed,
            graph_version=_version_name(graph_version),
            include_trajectory=include_trajectory,
            interval_draws=interval_draws,
        )
        call = self.risk.GenerateReport(request, **self._kw(timeout, floor=LONG_TIMEOUT))
        stream: Iterator[ReportProgress | report_pb2.Report] = (
            m.report if m.HasField("report") else ReportProgress.from_proto(m.progress)
            for m in _cancelling(call)
        )
        document = _last(stream, report_pb2.Report, on_progress, "the report")
        if path is None:
            return Report.from_proto(document)
        target = Path(path)
        if target.is_dir():
            target = target / document.file_name
        target.write_bytes(document.content)
        return Report.from_proto(document, target)

    def watch(
        self,
        thresholds: Sequence[
            history_pb2.ScoreThreshold | Mapping[str, Any] | tuple[str, str, float]
        ],
        *,
        providers: Sequence[str] = (),
        start_after_version: str | int = "",
        timeout: float | None = None,
    ) -> Generator[WatchEvent, None, None]:
        """One event per new graph version, with the alerts that fired; pass the last
        version seen as ``start_after_version`` to resume. Thresholds are
        ``("composite", "above", 60)``, ``("structural", "change", 5)``, dicts or protos.
        Runs until ``timeout`` (default: none) or until the generator is closed (leaving a
        ``for`` loop early, then ``close()``), which cancels the stream."""
        request = history_pb2.WatchProviderScoresRequest(
            providers=[_name("providers", p) for p in providers],
            thresholds=[_threshold(t) for t in thresholds],
            start_after_version=_version_name(start_after_version),
        )
        call = self.risk.WatchProviderScores(request, timeout=timeout, metadata=self._metadata)
        for message in _cancelling(call):
            yield WatchEvent.from_proto(message)

    # -- the graph and its versions ---------------------------------------------------------

    def graph_info(self, graph_version: str | int = "") -> GraphInfo:
        """The graph singleton: version, dataset, node counts by kind and the sources."""
        request = graph_pb2.GetGraphRequest(
            name="graph", graph_version=_version_name(graph_version)
        )
        return GraphInfo.from_proto(self.graph.GetGraph(request, **self._kw()))

    def nodes(
        self,
        *,
        kind: str | int = 0,
        country: str = "",
        graph_version: str | int = "",
        page_size: int = 500,
    ) -> Iterator[Node]:
        """Supply nodes by id, optionally of one kind ("memory", "foundry_process", ...) or
        with a site in ``country`` (ISO3)."""
        base = graph_pb2.ListNodesRequest(
            page_size=page_size,
            kind=_choice(common_pb2.NodeKind, kind),
            country=country,
            graph_version=_version_name(graph_version),
        )
        rows = pages(
            lambda t: self.graph.ListNodes(_with_token(base, t), **self._kw()),
            lambda p: p.nodes,
            lambda p: p.next_page_token,
        )
        return map(Node.from_proto, rows)

    def node(self, node: str, *, graph_version: str | int = "") -> Node:
        """One node with its suppliers, consumers, sites and sources."""
        request = graph_pb2.GetNodeRequest(
            name=_name("nodes", node), graph_version=_version_name(graph_version)
        )
        return Node.from_proto(self.graph.GetNode(request, **self._kw()))

    def versions(self, *, page_size: int = 100) -> Iterator[GraphVersion]:
        """Every version, newest first."""
        rows = pages(
            lambda t: self.graph.ListGraphVersions(
                graph_pb2.ListGraphVersionsRequest(page_size=page_size, page_token=t),
                **self._kw(),
            ),
            lambda p: p.graph_versions,
            lambda p: p.next_page_token,
        )
        return map(GraphVersion.from_proto, rows)

    def latest_version(self) -> GraphVersion:
        return next(self.versions(page_size=1))

    def version(self, version: str | int) -> GraphVersion:
        """One version: 3, "3" or "graph/versions/3"."""
        request = graph_pb2.GetGraphVersionRequest(name=_version_name(version))
        return GraphVersion.from_proto(self.graph.GetGraphVersion(request, **self._kw()))

    def diff(self, version: str | int, other_version: str | int = "") -> GraphDiff:
        """What changed from ``other_version`` (default: ``version``'s base) to ``version``."""
        request = graph_pb2.DiffGraphVersionsRequest(
            name=_version_name(version), other_version=_version_name(other_version)
        )
        return GraphDiff.from_proto(self.graph.DiffGraphVersions(request, **self._kw()))

    def batch_update(
        self,
        changes: Sequence[version_pb2.GraphChange | Mapping[str, Any]],
        *,
        message: str,
        base_version: str | int | None = None,
        validate_only: bool = False,
        request_id: str | None = None,
    ) -> EditResult:
        """Commit ``changes`` (protos or dicts such as ``{"upsert_edge": {...},
        "update_mask": "share"}``) on ``base_version`` (default: the latest, read now).
        Needs a token with the editor role. ``request_id`` (default: a new UUID) makes the
        write idempotent: calling again with the same id returns the first commit."""
        request = graph_pb2.BatchUpdateGraphRequest(
            parent="graph",
            base_version=self._latest_name(base_version),
            changes=[_message(c, version_pb2.GraphChange) for c in changes],
            message=message,
            validate_only=validate_only,
            request_id=request_id or str(uuid.uuid4()),
        )
        return EditResult.from_proto(self.graph.BatchUpdateGraph(request, **self._kw()))

    def import_graph(
        self,
        files: Mapping[str, bytes] | str | os.PathLike[str],
        *,
        message: str,
        base_version: str | int | None = None,
        validate_only: bool = False,
        request_id: str | None = None,
        format: str = "dataset",
    ) -> EditResult:
        """Import a whole dataset (a folder, or file name -> bytes) as one new version on
        ``base_version`` (default: the latest, read now). Needs a token. ``request_id``
        (default: a new UUID): calling again with the same id returns the first commit.
        ``format="edges"``: ``files`` is ``{"edge_table.npz": bytes}``, a large graph."""
        return EditResult.from_proto(
            self._import(
                files,
                message=message,
                base_version=base_version,
                validate_only=validate_only,
                request_id=request_id,
                format=format,
            )
        )

    def _import(
        self,
        files: Mapping[str, bytes] | str | os.PathLike[str],
        *,
        message: str,
        base_version: str | int | None,
        validate_only: bool,
        request_id: str | None = None,
        format: str = "dataset",
    ) -> graph_pb2.ImportGraphResponse:
        folder = (
            DatasetFolder(files)
            if isinstance(files, Mapping)
            else DatasetFolder.from_directory(files)
        )
        header = graph_pb2.ImportGraphHeader(
            base_version=self._latest_name(base_version),
            message=message,
            validate_only=validate_only,
            request_id=request_id or str(uuid.uuid4()),
            format=_IMPORT_FORMATS[format],
        )
        response: graph_pb2.ImportGraphResponse = self.graph.ImportGraph(
            _import_requests(header, folder), **self._kw(floor=LONG_TIMEOUT)
        )
        return response

    def export_graph(
        self, graph_version: str | int = "", *, to: str | os.PathLike[str] | None = None
    ) -> tuple[GraphVersion, DatasetFolder]:
        """A version's dataset files (default: the latest), written to folder ``to`` if
        given. ``files.digest == version.files_digest`` holds for a complete export."""
        version, files = self._export(graph_version)
        folder = DatasetFolder(files)
        if to is not None:
            folder.write(to)
        return GraphVersion.from_proto(version), folder

    def _export(
        self, graph_version: str | int
    ) -> tuple[version_pb2.GraphVersion, dict[str, bytes]]:
        version: version_pb2.GraphVersion | None = None
        parts: dict[str, list[bytes]] = {}
        request = graph_pb2.ExportGraphRequest(graph_version=_version_name(graph_version))
        for message in self.graph.ExportGraph(request, **self._kw(floor=LONG_TIMEOUT)):
            if message.HasField("graph_version"):
                version = message.graph_version
            else:
                parts.setdefault(message.chunk.file_name, []).append(message.chunk.data)
        if version is None:
            raise RuntimeError("the export stream carried no version")
        return version, {name: b"".join(chunks) for name, chunks in parts.items()}


# -- helpers ---------------------------------------------------------------------------------


_IMPORT_FORMATS = {
    "dataset": graph_pb2.IMPORT_FORMAT_DATASET,
    "edges": graph_pb2.IMPORT_FORMAT_EDGE_TABLE,
}


def _name(collection: str, value: str) -> str:
    return value if value.startswith(f"{collection}/") else f"{collection}/{value}"


def _version_name(value: str | int | None) -> str:
    """3, "3" or "graph/versions/3" -> "graph/versions/3"; "" stays "" (the latest)."""
    if value is None or value == "":
        return ""
    text = str(value)
    return f"graph/versions/{text}" if text.isdigit() else text


def _pem(value: Pem | None) -> bytes | None:
    """PEM bytes, PEM text or a path to a PEM file, as bytes."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return Path(value).read_bytes()


def _weights(weights: Mapping[str, float] | None) -> risk_pb2.ScoringWeights | None:
    """{"structural": 0.5} -> ScoringWeights; unknown names raise ValueError."""
    return None if weights is None else risk_pb2.ScoringWeights(**weights)


def _choice(enum: Any, value: str | int) -> Any:
    """A proto enum argument from "high", "RISK_BAND_HIGH" or the number (typed Any: the
    stubs' ValueType is a NewType of int)."""
    return enum_number(enum.DESCRIPTOR, value)


def _country_event(blockade: bool) -> common_pb2.CountryEventKind.ValueType:
    if blockade:
        return common_pb2.COUNTRY_EVENT_KIND_BLOCKADE
    return common_pb2.COUNTRY_EVENT_KIND_UNSPECIFIED  # the server's default: a site loss


def _with_token(request: M, page_token: str) -> M:
    """A copy of a list request for one page (tokens are bound to the other fields)."""
    page = type(request)()
    page.CopyFrom(request)
    page.page_token = page_token  # type: ignore[attr-defined]
    return page


def _message(value: M | Mapping[str, Any], cls: type[M]) -> M:
    """A proto from itself or from a dict in its shape (json_format.ParseDict: field names
    as in the proto or in camelCase). Enum values may be short ("blockade"), dates may be
    dates or "YYYY-MM-DD", which ParseDict alone would reject."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a {cls.__name__} or a dict, not {type(value).__name__}")
    message = cls()
    json_format.ParseDict(_normalised(value, cls.DESCRIPTOR), message)
    return message


def _normalised(data: Mapping[str, Any], descriptor: Any) -> dict[str, Any]:
    by_name = {**{f.json_name: f for f in descriptor.fields}, **descriptor.fields_by_name}
    out: dict[str, Any] = {}
    for key, value in data.items():
        fd = by_name.get(key)
        if fd is None:  # ParseDict names the unknown field
            out[key] = value
            continue
        repeated = fd.is_repeated and isinstance(value, list | tuple)
        values = list(value) if repeated else None
        convert = _field_converter(fd)
        out[key] = [convert(v) for v in values] if values is not None else convert(value)
    return out


def _field_converter(fd: Any) -> Callable[[Any], Any]:
    if fd.enum_type is not None:
        return lambda v: fd.enum_type.values_by_number[enum_number(fd.enum_type, v)].name
    if fd.message_type is None:
        return lambda v: v
    if fd.message_type.full_name == "google.type.Date":
        return _date_dict
    if fd.message_type.GetOptions().map_entry:
        return lambda v: v
    return lambda v: _normalised(v, fd.message_type) if isinstance(v, Mapping) else v


def _date_dict(value: Any) -> Any:
    if isinstance(value, dt.date | str):
        d = date_arg(value)
        return {"year": d.year, "month": d.month, "day": d.day}
    return value


def _supplier(value: str | Mapping[str, Any] | screening_pb2.SupplierRecord) -> Any:
    if isinstance(value, str):
        return screening_pb2.SupplierRecord(name=value)
    return _message(value, screening_pb2.SupplierRecord)


def _threshold(value: Threshold) -> history_pb2.ScoreThreshold:
    if isinstance(value, tuple):
        metric, kind, level = value
        return history_pb2.ScoreThreshold(
            metric=_choice(history_pb2.ScoreMetric, metric),
            kind=_choice(history_pb2.ThresholdKind, kind),
            value=level,
        )
    return _message(value, history_pb2.ScoreThreshold)


def _import_requests(
    header: graph_pb2.ImportGraphHeader, files: Mapping[str, bytes]
) -> Iterator[graph_pb2.ImportGraphRequest]:
    """The header, then every file in chunks (an empty file still sends one chunk)."""
    yield graph_pb2.ImportGraphRequest(header=header)
    for name, data in files.items():
        for start in range(0, max(len(data), 1), CHUNK_BYTES):
            chunk = version_pb2.FileChunk(file_name=name, data=data[start : start + CHUNK_BYTES])
            yield graph_pb2.ImportGraphRequest(chunk=chunk)


def _cancelling(call: Any) -> Iterator[Any]:
    """Iterate a server stream; cancel it when the caller stops early, so the server stops
    working for nobody."""
    try:
        yield from call
    finally:
        call.cancel()  # a no-op once the stream has ended


def _last(
    stream: Iterator[Any], final: type[T], on_progress: Callable[[Any], None] | None, what: str
) -> T:
    """The stream's final item, handing every other item to ``on_progress``."""
    result: T | None = None
    for item in stream:
        if isinstance(item, final):
            result = item
        elif on_progress is not None:
            on_progress(item)
    if result is None:
        raise RuntimeError(f"{what} stream ended without a result")
    return result
