"""A typed Python client for the sovrisk gRPC API.

Deadlines on every call, retries with exponential backoff on ``UNAVAILABLE`` for reads (by
gRPC's own retry policy, so a server restart or a load-balancer hiccup is invisible), and
iterators that walk AIP-158 pages for you.

>>> with SovriskClient("127.0.0.1:50051") as client:          # doctest: +SKIP
...     aws = client.score("aws")
...     for row in client.provider_scores():
...         print(row.rank, row.provider, round(row.composite, 1))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.type import date_pb2

from models.graph.dataset import DatasetFiles
from service.grpc_gen.sovrisk.v1 import (
    common_pb2,
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    risk_pb2,
    risk_pb2_grpc,
    version_pb2,
)

#: Reads are retried on UNAVAILABLE; writes are not (a retried commit would be ABORTED anyway,
#: but the caller should decide).
RETRIED_METHODS: dict[str, tuple[str, ...]] = {
    "sovrisk.v1.GraphService": (
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
    ),
}
DEFAULT_TIMEOUT = 60.0
CHUNK_BYTES = 1024 * 1024

T = TypeVar("T")
Page = TypeVar("Page")


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


class SovriskClient:
    """Sync client over one channel. ``token`` is sent as ``authorization: Bearer`` (needed
    for edits); ``timeout`` is each call's deadline in seconds."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 5,
        channel: grpc.Channel | None = None,
    ) -> None:
        self.timeout = timeout
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._channel = channel or grpc.insecure_channel(
            target,
            options=[
                ("grpc.enable_retries", 1),
                ("grpc.service_config", service_config(max_attempts)),
                ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            ],
        )
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

    def _kw(self, timeout: float | None = None) -> dict[str, Any]:
        return {"timeout": timeout or self.timeout, "metadata": self._metadata}

    # -- scores ------------------------------------------------------------------------------

    def score(
        self,
        provider: str,
        *,
        as_of: date_pb2.Date | None = None,
        graph_version: str = "",
    ) -> risk_pb2.RiskAssessment:
        """One provider's assessment (``provider`` is an id like "aws" or "providers/aws")."""
        request = risk_pb2.ScoreProviderRequest(
            name=_name("providers", provider), as_of=as_of, graph_version=graph_version
        )
        response: risk_pb2.RiskAssessment = self.risk.ScoreProvider(request, **self._kw())
        return response

    def provider_scores(
        self, *, page_size: int = 100, graph_version: str = ""
    ) -> Iterator[risk_pb2.ProviderScore]:
        """Every provider, riskiest first, across all pages."""
        return pages(
            lambda t: self.risk.ListProviderScores(
                risk_pb2.ListProviderScoresRequest(
                    page_size=page_size, page_token=t, graph_version=graph_version
                ),
                **self._kw(),
            ),
            lambda p: p.provider_scores,
            lambda p: p.next_page_token,
        )

    def chokepoints(
        self,
        *,
        kind: risk_pb2.ChokepointKind.ValueType = risk_pb2.CHOKEPOINT_KIND_UNSPECIFIED,
        min_impact: float = 0.0,
        page_size: int = 100,
    ) -> Iterator[risk_pb2.Chokepoint]:
        return pages(
            lambda t: self.risk.ListChokepoints(
                risk_pb2.ListChokepointsRequest(
                    page_size=page_size, page_token=t, kind=kind, min_impact=min_impact
                ),
                **self._kw(),
            ),
            lambda p: p.chokepoints,
            lambda p: p.next_page_token,
        )

    def compare(
        self, provider: str, *, base_version: str = "", target_version: str = ""
    ) -> risk_pb2.CompareAssessmentsResponse:
        request = risk_pb2.CompareAssessmentsRequest(
            name=_name("providers", provider),
            base_version=base_version,
            target_version=target_version,
        )
        response: risk_pb2.CompareAssessmentsResponse = self.risk.CompareAssessments(
            request, **self._kw(timeout=max(self.timeout, 300))
        )
        return response

    def simulate(
        self, *, samples: int = 10_000, seed: int = 0, providers: Sequence[str] = ()
    ) -> Iterator[risk_pb2.SimulateDisruptionsResponse]:
        """Progress messages, then the result (the last message)."""
        request = risk_pb2.SimulateDisruptionsRequest(
            samples=samples, seed=seed, providers=[_name("providers", p) for p in providers]
        )
        return iter(self.risk.SimulateDisruptions(request, **self._kw()))

    def watch(
        self,
        thresholds: Sequence[history_pb2.ScoreThreshold],
        *,
        providers: Sequence[str] = (),
        start_after_version: str = "",
        timeout: float | None = None,
    ) -> Iterator[history_pb2.WatchProviderScoresResponse]:
        """One message per new version; pass the last version seen to resume."""
        request = history_pb2.WatchProviderScoresRequest(
            providers=[_name("providers", p) for p in providers],
            thresholds=thresholds,
            start_after_version=start_after_version,
        )
        return iter(
            self.risk.WatchProviderScores(request, timeout=timeout, metadata=self._metadata)
        )

    # -- the graph and its versions ---------------------------------------------------------

    def nodes(
        self,
        *,
        kind: common_pb2.NodeKind.ValueType = common_pb2.NODE_KIND_UNSPECIFIED,
        country: str = "",
        page_size: int = 500,
    ) -> Iterator[graph_pb2.Node]:
        return pages(
            lambda t: self.graph.ListNodes(
                graph_pb2.ListNodesRequest(
                    page_size=page_size, page_token=t, kind=kind, country=country
                ),
                **self._kw(),
            ),
            lambda p: p.nodes,
            lambda p: p.next_page_token,
        )

    def versions(self, *, page_size: int = 100) -> Iterator[version_pb2.GraphVersion]:
        """Every version, newest first."""
        return pages(
            lambda t: self.graph.ListGraphVersions(
                graph_pb2.ListGraphVersionsRequest(page_size=page_size, page_token=t),
                **self._kw(),
            ),
            lambda p: p.graph_versions,
            lambda p: p.next_page_token,
        )

    def latest_version(self) -> version_pb2.GraphVersion:
        return next(self.versions(page_size=1))

    def batch_update(
        self,
        changes: Sequence[version_pb2.GraphChange],
        *,
        message: str,
        base_version: str | None = None,
        validate_only: bool = False,
    ) -> graph_pb2.BatchUpdateGraphResponse:
        """Commit ``changes`` on ``base_version`` (default: the latest, read now)."""
        request = graph_pb2.BatchUpdateGraphRequest(
            parent="graph",
            base_version=base_version or self.latest_version().name,
            changes=changes,
            message=message,
            validate_only=validate_only,
        )
        response: graph_pb2.BatchUpdateGraphResponse = self.graph.BatchUpdateGraph(
            request, **self._kw()
        )
        return response

    def import_files(
        self,
        files: DatasetFiles,
        *,
        message: str,
        base_version: str | None = None,
        validate_only: bool = False,
    ) -> graph_pb2.ImportGraphResponse:
        header = graph_pb2.ImportGraphHeader(
            base_version=base_version or self.latest_version().name,
            message=message,
            validate_only=validate_only,
        )

        def requests() -> Iterator[graph_pb2.ImportGraphRequest]:
            yield graph_pb2.ImportGraphRequest(header=header)
            for name, data in files.items():
                for start in range(0, max(len(data), 1), CHUNK_BYTES):
                    chunk = version_pb2.FileChunk(
                        file_name=name, data=data[start : start + CHUNK_BYTES]
                    )
                    yield graph_pb2.ImportGraphRequest(chunk=chunk)

        response: graph_pb2.ImportGraphResponse = self.graph.ImportGraph(
            requests(), **self._kw(timeout=max(self.timeout, 600))
        )
        return response

    def export_files(
        self, graph_version: str = ""
    ) -> tuple[version_pb2.GraphVersion, DatasetFiles]:
        version: version_pb2.GraphVersion | None = None
        parts: dict[str, bytes] = {}
        request = graph_pb2.ExportGraphRequest(graph_version=graph_version)
        for message in self.graph.ExportGraph(request, **self._kw()):
            if message.HasField("graph_version"):
                version = message.graph_version
            else:
                name = message.chunk.file_name
                parts[name] = parts.get(name, b"") + message.chunk.data
        assert version is not None, "the export stream carried no version"
        return version, DatasetFiles(parts)


def _name(collection: str, value: str) -> str:
    return value if value.startswith(f"{collection}/") else f"{collection}/{value}"
