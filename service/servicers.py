"""gRPC servicers: request -> convert -> domain (off the event loop) -> convert -> response."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, NoReturn, TypeVar, cast

import grpc
from google.protobuf.message import Message
from google.type import date_pb2

from sovrisk.models.analysis import simulation as sim
from sovrisk.models.analysis.sensitivity import SensitivityResult, sensitivity
from sovrisk.models.cancellation import OperationCancelled
from sovrisk.models.engine.impacts import CountryEvent, chokepoint_rank
from sovrisk.models.errors import (
    DataValidationError,
    FieldViolation,
    InvalidParameterError,
    NotFoundError,
    PreconditionError,
)
from sovrisk.models.graph.dataset import (
    DATASET_FILES,
    EDGE_TABLE_FILE,
    REQUIRED_FILES,
    DatasetFiles,
    RecordChange,
    diff_datasets,
    is_edge_table,
)
from sovrisk.models.graph.editing import EditRejected
from sovrisk.models.graph.loader import ISO3_RE
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring import compare
from sovrisk.models.scoring.alerts import fired, validate_thresholds
from sovrisk.models.scoring.assessment import SCORE_INTERPRETATION, RiskAssessment
from sovrisk.models.scoring.large import LargeGraphModel
from sovrisk.models.scoring.limits import DEFAULT_SEED
from sovrisk.models.scoring.params import DEFAULT_MIN_IMPACT, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.scenarios import run_scenario
from sovrisk.models.scoring.trajectory import check_range, default_window, trajectory
from sovrisk.models.scoring.uncertainty import Uncertainty, cached_uncertainty, check_draws
from sovrisk.service import converters as conv
from sovrisk.service import errors, metrics, tracing
from sovrisk.service import history_converters as hconv
from sovrisk.service import large_converters as lconv
from sovrisk.service import scenario_converters as scenario_conv
from sovrisk.service import screening_service as screening
from sovrisk.service import simulation_converters as sim_conv
from sovrisk.service import version_converters as vconv
from sovrisk.service.auth import (
    AuthError,
    PermissionDenied,
    Role,
    TokenAuthenticator,
    TokensUnavailable,
)
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    common_pb2,
    graph_pb2,
    graph_pb2_grpc,
    history_pb2,
    report_pb2,
    risk_pb2,
    risk_pb2_grpc,
    screening_pb2,
    version_pb2,
)
from sovrisk.service.pagination import paginate, query_digest
from sovrisk.service.registry import Final, GraphRegistry, Overloaded
from sovrisk.service.reports import build_report, default_filename
from sovrisk.service.response_cache import Encoded, ResponseCache, encoded_accepted
from sovrisk.service.screening_service import ScreeningService
from sovrisk.service.store import StaleBaseError, StoreError, VersionNotFoundError, WriteRequest

M = TypeVar("M", bound=Message)
log = logging.getLogger("sovrisk.servicers")

DEFAULT_SAMPLES = 10_000

T = TypeVar("T")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


#: Domain and store errors that become a rich status instead of INTERNAL.
MAPPED_ERRORS = (
    InvalidParameterError,
    NotFoundError,
    PreconditionError,
    DataValidationError,
    StoreError,
    AuthError,
    Overloaded,
)


def _status(exc: Exception) -> grpc.Status:
    if isinstance(exc, Overloaded):
        return errors.overloaded(str(exc), exc.retry_after)
    if isinstance(exc, StaleBaseError):
        base = vconv.version_name(exc.base) if exc.base else ""
        return errors.aborted_stale(base, exc.current.name if exc.current else "")
    if isinstance(exc, VersionNotFoundError):
        return errors.not_found("graph version", vconv.version_name(exc.version_id))
    if isinstance(exc, PermissionDenied):
        return errors.permission_denied(
            exc.principal.name, exc.principal.role.name.lower(), exc.needed.name.lower()
        )
    if isinstance(exc, TokensUnavailable):
        return errors.unavailable(
            "tokens cannot be checked now (the server's token file is invalid); retry later",
            reason="TOKENS_UNAVAILABLE",
        )
    if isinstance(exc, AuthError):
        return errors.unauthenticated(str(exc))
    status = errors.from_domain(exc)
    if status is None:
        raise exc
    return status


async def engine_for(registry: GraphRegistry, graph_version: str) -> RiskEngine:
    """The engine of the requested version (``graph/versions/{n}``; empty = the latest)."""
    return await registry.engine_for(vconv.parse_version(graph_version, "graph_version"))


async def _edge_table_for(registry: GraphRegistry, graph_version: str) -> LargeGraphModel | None:
    """The edge-table model of the requested version, or None when it is a dataset."""
    version = vconv.parse_version(graph_version, "graph_version")
    known, model = registry.known_kind(version)  # the common case: no thread hop, no I/O
    return model if known else await registry.call(registry.large_at, version)


def _refuse_on_edge_table(
    model: LargeGraphModel,
    request: risk_pb2.ScoreProviderRequest | risk_pb2.ListProviderScoresRequest,
) -> None:
    """Parameters an edge table cannot honour are refused, not silently ignored."""
    ignored = [
        name
        for name in ("weights", "as_of", "interval_draws", "interval_seed")
        if request.HasField(name)
    ] + (["horizon_weeks"] if request.horizon_weeks else [])
    if ignored:
        raise InvalidParameterError(
            [
                FieldViolation(
                    name,
                    "set",
                    f"{model.name or 'this version'} is an edge table: scored by structure "
                    "alone, in the long run (no weights, dates, horizons or intervals)",
                )
                for name in ignored
            ]
        )


def _unexpected(exc: Exception, method: str) -> grpc.Status:
    """The status for an exception no mapping anticipated. An abort (the servicer's own
    status) passes through; a cancellation is CANCELLED; anything else is logged here with its
    traceback and a reference, and the client gets INTERNAL with that reference only."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, OperationCancelled):
        return errors.cancelled()
    reference = secrets.token_hex(6)
    log.error("internal error %s in %s", reference, method, exc_info=exc)
    return errors.internal(reference)


async def _abort(context: grpc.aio.ServicerContext, status: grpc.Status) -> NoReturn:
    """``context.abort_with_status(status)``. When the call has already ended (its deadline
    passed or its client went away while the error was being mapped), gRPC cannot send the
    status and logs the failure (ExecuteBatchError) with a traceback as an error: the handler
    ends as cancelled instead, which is what the call is."""
    try:
        await context.abort_with_status(status)
    except grpc.aio.InternalError as exc:
        log.debug("status %s not sent: the call had ended (%r)", status.code, exc)
        raise asyncio.CancelledError from exc
    raise AssertionError("abort_with_status returned")  # it always raises


def rpc(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Map domain errors to rich ``google.rpc.Status`` errors; never leak a traceback."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        registry: GraphRegistry = self.registry
        if not registry.ready:
            await _abort(context, errors.unavailable("the graph is not loaded yet"))
        try:
            return await method(self, request, context)
        except MAPPED_ERRORS as exc:
            await _abort(context, _status(exc))
        except Exception as exc:
            await _abort(context, _unexpected(exc, method.__name__))

    return wrapper


def rpc_stream(
    method: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    """:func:`rpc` for server-streaming methods."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Resp]:
        registry: GraphRegistry = self.registry
        if not registry.ready:
            await _abort(context, errors.unavailable("the graph is not loaded yet"))
        try:
            async for item in method(self, request, context):
                yield item
        except MAPPED_ERRORS as exc:
            await _abort(context, _status(exc))
        except Exception as exc:
            await _abort(context, _unexpected(exc, method.__name__))

    return wrapper


def _score_span(
    engine: RiskEngine, *, provider: str = "", providers: int = 1
) -> AbstractContextManager[tracing.SpanHandle]:
    """The span of an assessment (one provider, or ``providers`` of them ranked)."""
    attributes: dict[str, str | int] = {
        "sovrisk.graph_version": engine.graph_version or engine.graph.version_id,
        "sovrisk.providers": providers,
    }
    if provider:
        attributes["sovrisk.provider"] = provider
    return tracing.span("sovrisk.score", attributes)


def _intervals_span(
    engine: RiskEngine, draws: int, seed: int
) -> AbstractContextManager[tracing.SpanHandle]:
    """The span of the score intervals (seeded draws; cached per version and parameters)."""
    attributes: dict[str, str | int] = {
        "sovrisk.graph_version": engine.graph_version or engine.graph.version_id,
        "sovrisk.draws": draws,
        "sovrisk.seed": seed,
    }
    return tracing.span("sovrisk.score.intervals", attributes)


def _providers(engine: RiskEngine, names: Sequence[str]) -> list[str]:
    """Provider ids from ``providers/{id}`` names: INVALID_ARGUMENT for a malformed name,
    NOT_FOUND for an unknown provider."""
    ids = [conv.parse_name(n, "providers", f"providers[{k}]") for k, n in enumerate(names)]
    for name, pid in zip(names, ids, strict=True):
        if pid not in engine.provider_ids:
            raise engine.graph.not_found("provider", name)
    return ids


def _params(
    engine: RiskEngine,
    as_of: Any,
    weights: risk_pb2.ScoringWeights | None,
    horizon_weeks: float = 0.0,
) -> ScoringParams:
    """Validate the request's date, weights and horizon together so every violation is
    reported."""
    violations: list[FieldViolation] = []
    date = None
    horizon = 13.0
    try:
        date = conv.date_from_proto(as_of, "as_of")
    except InvalidParameterError as exc:
        violations += exc.violations
    try:
        horizon = conv.horizon_from_proto(horizon_weeks)
    except InvalidParameterError as exc:
        violations += exc.violations
    overrides = conv.weights_from_proto(weights) if weights is not None else {}
    try:
        params = ScoringParams.build(
            as_of=date or engine.graph.info.as_of, weights=overrides, horizon_weeks=horizon
        )
    except InvalidParameterError as exc:
        violations += exc.violations
    if violations:
        raise InvalidParameterError(violations)
    return params


class GraphServicer(graph_pb2_grpc.GraphServiceServicer):
    def __init__(self, registry: GraphRegistry, auth: TokenAuthenticator | None = None) -> None:
        self.registry = registry
        self.auth = auth or TokenAuthenticator(env={})

    def _authorize(self, context: grpc.aio.ServicerContext, needed: Role) -> str:
        """The principal of the request's bearer token (raises AuthError)."""
        return self.auth.authorize(context.invocation_metadata(), needed).name

    @rpc
    async def GetGraph(
        self, request: graph_pb2.GetGraphRequest, context: grpc.aio.ServicerContext
    ) -> graph_pb2.Graph:
        if request.name != "graph":
            raise InvalidParameterError(
                [FieldViolation("name", request.name, "must be 'graph' (a singleton)")]
            )
        engine = await engine_for(self.registry, request.graph_version)
        return conv.graph_to_proto(engine.graph)

    @rpc
    async def ListNodes(
        self, request: graph_pb2.ListNodesRequest, context: grpc.aio.ServicerContext
    ) -> graph_pb2.ListNodesResponse:
        kind = conv.kind_from_proto(request.kind)
        country = request.country
        graph = (await engine_for(self.registry, request.graph_version)).graph
        if country and not ISO3_RE.fullmatch(country):
            raise InvalidParameterError(
                [FieldViolation("country", country, "must be an ISO 3166-1 alpha-3 code")]
            )
        ids = [
            n.id
            for n in graph.nodes.values()
            if (kind is None or n.kind is kind)
            and (not country or any(s.country == country for s in graph.sites.get(n.id, ())))
        ]
        page = paginate(
            ids,
            page_size=request.page_size,
            page_token=request.page_token,
            version=graph.version_id,
            digest=query_digest("ListNodes", request.kind, country),
        )
        return graph_pb2.ListNodesResponse(
            nodes=[conv.node_to_proto(graph, i, full=False) for i in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    @rpc
    async def GetNode(
        self, request: graph_pb2.GetNodeRequest, context: grpc.aio.ServicerContext
    ) -> graph_pb2.Node:
        node_id = conv.parse_name(request.name, "nodes")
        graph = (await engine_for(self.registry, request.graph_version)).graph
        if node_id not in graph.nodes:
            raise graph.not_found("node", request.name)
        return conv.node_to_proto(graph, node_id)

    @rpc
    async def BatchUpdateGraph(
        self, request: graph_pb2.BatchUpdateGraphRequest, context: grpc.aio.ServicerContext
    ) -> graph_pb2.BatchUpdateGraphResponse:
        author = self._authorize(context, Role.EDITOR)
        violations: list[FieldViolation] = []
        if request.parent != "graph":
            violations.append(FieldViolation("parent", request.parent, "must be 'graph'"))
        try:
            base = vconv.parse_version(request.base_version, "base_version", required=True)
        except InvalidParameterError as exc:
            violations += exc.violations
        violations += _commit_message_violations("message", request.message)
        violations += _request_id_violations("request_id", request.request_id)
        if not request.changes:
            violations.append(FieldViolation("changes", "", "at least one change is required"))
        try:
            changes, arms = vconv.changes_from_proto(request.changes)
        except InvalidParameterError as exc:
            violations += exc.violations
        if violations:
            raise InvalidParameterError(violations)
        assert base is not None
        unkeyed = graph_pb2.BatchUpdateGraphRequest()
        unkeyed.CopyFrom(request)
        unkeyed.ClearField("request_id")
        write = _write_request(
            request.request_id, author, unkeyed.SerializeToString(deterministic=True)
        )
        try:
            committed = await self.registry.call(
                lambda: self.registry.commit_changes(
                    base,
                    changes,
                    author=author,
                    message=request.message.strip(),
                    validate_only=request.validate_only,
                    request=write,
                )
            )
        except EditRejected as exc:
            raise InvalidParameterError(vconv.problems_to_violations(exc.problems, arms)) from exc
        return vconv.committed_to_proto(graph_pb2.BatchUpdateGraphResponse(), committed)

    @rpc
    async def ImportGraph(
        self,
        request_iterator: AsyncIterator[graph_pb2.ImportGraphRequest],
        context: grpc.aio.ServicerContext,
    ) -> graph_pb2.ImportGraphResponse:
        author = self._authorize(context, Role.ADMIN)
        header, files = await _read_import(request_iterator)
        base = vconv.parse_version(header.base_version, "header.base_version", required=True)
        problems = _commit_message_violations("header.message", header.message)
        problems += _request_id_violations("header.request_id", header.request_id)
        if problems:
            raise InvalidParameterError(problems)
        assert base is not None
        unkeyed = graph_pb2.ImportGraphHeader()
        unkeyed.CopyFrom(header)
        unkeyed.ClearField("request_id")
        write = _write_request(
            header.request_id,
            author,
            unkeyed.SerializeToString(deterministic=True),
            files.digest.encode(),
        )
        committed = await self.registry.call(
            lambda: self.registry.commit_files(
                base,
                files,
                author=author,
                message=header.message.strip(),
                validate_only=header.validate_only,
                request=write,
                request_field="header.request_id",
            )
        )
        return vconv.committed_to_proto(graph_pb2.ImportGraphResponse(), committed)

    @rpc_stream
    async def ExportGraph(
        self, request: graph_pb2.ExportGraphRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[graph_pb2.ExportGraphResponse]:
        store = self.registry.store
        assert store is not None
        wanted = vconv.parse_version(request.graph_version, "graph_version")
        version = await self.registry.call(
            store.get, wanted if wanted is not None else self.registry.latest_version_id
        )
        files = await self.registry.call(store.files, version.id)
        yield graph_pb2.ExportGraphResponse(graph_version=vconv.version_to_proto(version))
        for name, data in files.items():
            for start in range(0, max(len(data), 1), EXPORT_CHUNK_BYTES):
                chunk = version_pb2.FileChunk(
                    file_name=name, data=data[start : start + EXPORT_CHUNK_BYTES]
                )
                yield graph_pb2.ExportGraphResponse(chunk=chunk)

    @rpc
    async def ListGraphVersions(
        self, request: graph_pb2.ListGraphVersionsRequest, context: grpc.aio.ServicerContext
    ) -> graph_pb2.ListGraphVersionsResponse:
        store = self.registry.store
        assert store is not None
        versions = await self.registry.call(lambda: store.list_versions(limit=MAX_VERSIONS_LISTED))
        # Tokens are bound to the newest version at the first page: later pages list the same
        # (immutable) versions even if new ones land meanwhile.
        head = versions[0].id if versions else 0
        inner = ""
        if request.page_token:
            head = _token_head(request.page_token)
            inner = request.page_token.partition(".")[2]
            versions = [v for v in versions if v.id <= head]
        page = paginate(
            versions,
            page_size=request.page_size,
            page_token=inner,
            version=f"head:{head}",
            digest=query_digest("ListGraphVersions", head),
        )
        token = f"{head}.{page.next_page_token}" if page.next_page_token else ""
        return graph_pb2.ListGraphVersionsResponse(
            graph_versions=[vconv.version_to_proto(v) for v in page.items],
            next_page_token=token,
            total_size=page.total_size,
        )

    @rpc
    async def GetGraphVersion(
        self, request: graph_pb2.GetGraphVersionRequest, context: grpc.aio.ServicerContext
    ) -> version_pb2.GraphVersion:
        store = self.registry.store
        assert store is not None
        version_id = vconv.parse_version(request.name, "name", required=True)
        return vconv.version_to_proto(await self.registry.call(store.get, version_id))

    @rpc
    async def DiffGraphVersions(
        self, request: graph_pb2.DiffGraphVersionsRequest, context: grpc.aio.ServicerContext
    ) -> graph_pb2.DiffGraphVersionsResponse:
        store = self.registry.store
        assert store is not None
        new_id = vconv.parse_version(request.name, "name", required=True)
        assert new_id is not None
        other_id = vconv.parse_version(request.other_version, "other_version")

        def diff() -> list[RecordChange]:
            new = store.get(new_id)
            old_id = other_id if other_id is not None else new.parent_id
            after = store.files(new_id)
            before = store.files(old_id) if old_id is not None else DatasetFiles({})
            for version_id, files in ((new_id, after), (old_id, before)):
                if version_id is not None and is_edge_table(files):
                    raise PreconditionError(
                        "EDGE_TABLE",
                        vconv.version_name(version_id),
                        "is an edge table: it has no records to compare (ExportGraph "
                        "returns its file)",
                    )
            return diff_datasets(before, after)  # the first version: everything is new

        return vconv.diff_to_proto(await self.registry.call(diff))


#: Largest dataset an import may stream (all files together).
MAX_IMPORT_BYTES = 256 * 1024 * 1024
EXPORT_CHUNK_BYTES = 1024 * 1024
MAX_VERSIONS_LISTED = 100_000


#: A version's message: one human sentence or paragraph, stored and shown as text.
MAX_COMMIT_MESSAGE_CHARS = 2000


def _commit_message_violations(field: str, message: str) -> list[FieldViolation]:
    """Required, at most MAX_COMMIT_MESSAGE_CHARS, and no control characters but newline
    and tab (PostgreSQL refuses NUL in text, SQLite would store it: both refuse it here)."""
    if not message.strip():
        return [FieldViolation(field, message, "is required")]
    if len(message) > MAX_COMMIT_MESSAGE_CHARS:
        return [FieldViolation(field, message, f"is longer than {MAX_COMMIT_MESSAGE_CHARS} chars")]
    bad = sorted({f"U+{ord(c):04X}" for c in message if ord(c) < 32 and c not in "\n\t"})
    if bad or "\x7f" in message:
        return [FieldViolation(field, message, f"has control characters ({', '.join(bad)})")]
    return []


def _request_id_violations(field: str, request_id: str) -> list[FieldViolation]:
    """AIP-155: empty (no idempotency) or a UUID in its canonical text form."""
    if not request_id:
        return []
    try:
        canonical = str(uuid.UUID(request_id))
    except ValueError:
        canonical = ""
    if canonical != request_id.lower():
        return [FieldViolation(field, request_id, "must be a UUID, e.g. from uuid.uuid4()")]
    return []


def _write_request(request_id: str, principal: str, *parts: bytes) -> WriteRequest | None:
    """The request's identity for AIP-155, or None without an id: the digest covers every
    part of the request but the id itself."""
    if not request_id:
        return None
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return WriteRequest(request_id.lower(), principal, digest.hexdigest())


def _token_head(token: str) -> int:
    head, _, _ = token.partition(".")
    # ASCII digits only (str.isdigit accepts "²"), and no longer than a version id can be.
    if not (head.isascii() and head.isdigit() and len(head) <= 18):
        raise InvalidParameterError(
            [FieldViolation("page_token", token, "is not a page token issued by this service")]
        )
    return int(head)


async def _read_import(
    requests: AsyncIterator[graph_pb2.ImportGraphRequest],
) -> tuple[graph_pb2.ImportGraphHeader, DatasetFiles]:
    """Collect an import stream: one header first, then each file's chunks contiguously.
    Anything else rejects the whole stream before anything is stored."""
    header: graph_pb2.ImportGraphHeader | None = None
    parts: dict[str, list[bytes]] = {}
    last = ""
    total = 0
    k = 0
    async for k, message in _enumerate(requests):
        arm = message.WhichOneof("payload")
        if k == 0:
            if arm != "header":
                raise InvalidParameterError(
                    [FieldViolation("header", "", "the first message must be the header")]
                )
            header = message.header
            continue
        if arm != "chunk":
            raise InvalidParameterError(
                [FieldViolation(f"requests[{k}]", str(arm), "only the first message is a header")]
            )
        name = message.chunk.file_name
        if name not in DATASET_FILES:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        f"requests[{k}].chunk.file_name",
                        name,
                        "not a dataset file; one of " + ", ".join(DATASET_FILES),
                    )
                ]
            )
        if name != last and name in parts:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        f"requests[{k}].chunk.file_name",
                        name,
                        "the chunks of a file must be contiguous (this file already ended)",
                    )
                ]
            )
        total += len(message.chunk.data)
        if total > MAX_IMPORT_BYTES:
            raise InvalidParameterError(
                [FieldViolation("chunk", str(total), f"import exceeds {MAX_IMPORT_BYTES} bytes")]
            )
        parts.setdefault(name, []).append(message.chunk.data)
        last = name
    if header is None:
        raise InvalidParameterError([FieldViolation("header", "", "the stream was empty")])
    if header.format not in graph_pb2.ImportFormat.values():
        raise InvalidParameterError(
            [FieldViolation("header.format", str(header.format), "not an ImportFormat")]
        )
    edge_table = header.format == graph_pb2.IMPORT_FORMAT_EDGE_TABLE
    if edge_table and EDGE_TABLE_FILE not in parts:
        raise InvalidParameterError(
            [FieldViolation("chunk.file_name", EDGE_TABLE_FILE, "required file is missing")]
        )
    if not edge_table and EDGE_TABLE_FILE in parts:
        raise InvalidParameterError(
            [
                FieldViolation(
                    "header.format",
                    graph_pb2.ImportFormat.Name(header.format),
                    f"{EDGE_TABLE_FILE} is imported with format IMPORT_FORMAT_EDGE_TABLE",
                )
            ]
        )
    missing = [] if edge_table else [n for n in REQUIRED_FILES if n not in parts]
    if missing:
        raise InvalidParameterError(
            [FieldViolation("chunk.file_name", n, "required file is missing") for n in missing]
        )
    return header, DatasetFiles({n: b"".join(p) for n, p in parts.items()})


async def _enumerate(items: AsyncIterator[T]) -> AsyncIterator[tuple[int, T]]:
    k = 0
    async for item in items:
        yield k, item
        k += 1


def _interval_draws(
    request: risk_pb2.ScoreProviderRequest
    | risk_pb2.ListProviderScoresRequest
    | report_pb2.GenerateReportRequest,
    registry: GraphRegistry,
) -> int:
    """The draws behind the score intervals: the request's, else the server's default."""
    draws = (
        request.interval_draws if request.HasField("interval_draws") else registry.interval_draws
    )
    return check_draws(draws, "interval_draws")


def _interval_request(
    request: risk_pb2.ScoreProviderRequest | risk_pb2.ListProviderScoresRequest,
    registry: GraphRegistry,
) -> tuple[int, int]:
    """The draws and seed of the score intervals."""
    seed = request.interval_seed if request.HasField("interval_seed") else DEFAULT_SEED
    return _interval_draws(request, registry), seed


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(
        self,
        registry: GraphRegistry,
        screening: ScreeningService | None = None,
        responses: ResponseCache | None = None,
    ) -> None:
        self.registry = registry
        self._screening = screening
        #: Serialised responses of the published reads (service/response_cache.py).
        self.responses = responses if responses is not None else ResponseCache()

    def _cache_key(self, method: str, engine: RiskEngine, request: Message) -> str | None:
        """The response cache's key of a read on the published parameters, looked up before
        the request is even validated (a key only ever holds a response that was computed);
        None for a caller's own weighting (not cached) or an engine of no stored version.
        The request's bytes, the version and the server's default interval draws determine
        the response."""
        if request.HasField("weights") or not engine.graph_version:
            return None
        content_hash = engine.origin.graph.content_hash
        return ResponseCache.key(
            method, engine.graph_version, content_hash, request, self.registry.interval_draws
        )

    def _kept(self, key: str | None, response: M) -> M:
        """``response``, kept in the cache under ``key``."""
        if key is None:
            return response
        return self._answer(self.responses.put(key, response), type(response), response)

    @staticmethod
    def _answer(encoded: Encoded, cls: type[M], message: M | None = None) -> M:
        """The bytes themselves where the transport sends them as they are (our server and
        gateway), else the message."""
        if encoded_accepted():
            return cast(M, encoded)
        return message if message is not None else cls.FromString(encoded.data)

    @property
    def screening(self) -> ScreeningService:
        """The entity list and screeners, loaded on first use (the bundled list by default)."""
        if self._screening is None:
            self._screening = ScreeningService()
        return self._screening

    @rpc_stream
    async def GenerateReport(
        self, request: report_pb2.GenerateReportRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[report_pb2.GenerateReportResponse]:
        async for item in generate_report(self.registry, request):
            yield item

    @rpc
    async def ScreenSuppliers(
        self, request: screening_pb2.ScreenSuppliersRequest, context: grpc.aio.ServicerContext
    ) -> screening_pb2.ScreenSuppliersResponse:
        rows, match, review = screening.request_from_proto(request)
        engine = await engine_for(self.registry, request.graph_version)
        result = await self.registry.call(
            self.screening.screen, engine, rows, match, review, heavy=True
        )
        return screening.result_to_proto(
            result, request, engine.graph_version or engine.graph.version_id
        )

    @rpc
    async def ScoreProvider(
        self, request: risk_pb2.ScoreProviderRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.RiskAssessment:
        large = await _edge_table_for(self.registry, request.graph_version)
        if large is not None:
            return await self._score_edge_table(large, request)
        engine = await engine_for(self.registry, request.graph_version)
        key = self._cache_key("ScoreProvider", engine, request)
        if key is not None and (hit := self.responses.get(key)) is not None:
            return self._answer(hit, risk_pb2.RiskAssessment)
        provider = conv.parse_name(request.name, "providers")
        weights = request.weights if request.HasField("weights") else None
        params = _params(engine, request.as_of, weights, request.horizon_weeks)
        if provider not in engine.provider_ids:
            raise engine.graph.not_found("provider", request.name)
        draws, seed = _interval_request(request, self.registry)
        basic = request.view == risk_pb2.ASSESSMENT_VIEW_BASIC

        def score(e: RiskEngine) -> risk_pb2.RiskAssessment:
            with _score_span(e, provider=provider):
                assessment = e.assess(provider, params)
            with _intervals_span(e, draws, seed):
                uncertainty = cached_uncertainty(e, params, draws, seed)
            return conv.assessment_to_proto(e.graph, assessment, uncertainty, basic=basic)

        response = await self.registry.run(score, engine)
        return self._kept(key, response)

    @rpc
    async def ListProviderScores(
        self, request: risk_pb2.ListProviderScoresRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ListProviderScoresResponse:
        large = await _edge_table_for(self.registry, request.graph_version)
        if large is not None:
            return await self._list_edge_table(large, request)
        engine = await engine_for(self.registry, request.graph_version)
        key = self._cache_key("ListProviderScores", engine, request)
        if key is not None and (hit := self.responses.get(key)) is not None:
            return self._answer(hit, risk_pb2.ListProviderScoresResponse)
        weights = request.weights if request.HasField("weights") else None
        params = _params(engine, request.as_of, weights, request.horizon_weeks)
        draws, seed = _interval_request(request, self.registry)

        def score(e: RiskEngine) -> tuple[list[RiskAssessment], Uncertainty | None]:
            with _score_span(e, providers=len(e.provider_ids)):
                ranked = e.assess_all(params)
            with _intervals_span(e, draws, seed):
                return ranked, cached_uncertainty(e, params, draws, seed)

        ranked, uncertainty = await self.registry.run(score, engine)
        page = paginate(
            list(enumerate(ranked, start=1)),
            page_size=request.page_size,
            page_token=request.page_token,
            version=engine.graph.version_id,
            digest=query_digest("ListProviderScores", params),
        )
        provenance = ranked[0].provenance if ranked else None
        full = request.view == risk_pb2.ASSESSMENT_VIEW_FULL
        rows = [conv.provider_score_to_proto(a, rank, uncertainty) for rank, a in page.items]
        if full:
            for row, (_, a) in zip(rows, page.items, strict=True):
                row.assessment.CopyFrom(conv.assessment_to_proto(engine.graph, a, uncertainty))
        response = risk_pb2.ListProviderScoresResponse(
            provider_scores=rows,
            next_page_token=page.next_page_token,
            total_size=page.total_size,
            provenance=conv.result_provenance_to_proto(provenance) if provenance else None,
            score_interpretation=ranked[0].score_interpretation if ranked else "",
            pair_orders=conv.pair_orders_to_proto(uncertainty),
            uncertainty_notes=list(uncertainty.notes) if uncertainty else [],
        )
        return self._kept(key, response)

    async def _score_edge_table(
        self, model: LargeGraphModel, request: risk_pb2.ScoreProviderRequest
    ) -> risk_pb2.RiskAssessment:
        """ScoreProvider on an edge-table version: structure alone (models.scoring.large);
        what-if weights and dates have nothing to act on there and are refused."""
        _refuse_on_edge_table(model, request)
        provider = conv.parse_name(request.name, "providers")
        assessment = await self.registry.call(model.assess, provider)
        return lconv.large_assessment_to_proto(model, assessment)

    async def _list_edge_table(
        self, model: LargeGraphModel, request: risk_pb2.ListProviderScoresRequest
    ) -> risk_pb2.ListProviderScoresResponse:
        _refuse_on_edge_table(model, request)
        ranked = await self.registry.call(model.assess_all)
        page = paginate(
            list(enumerate(ranked, start=1)),
            page_size=request.page_size,
            page_token=request.page_token,
            version=model.digest,
            digest=query_digest("ListProviderScores", model.name),
        )
        rows = [lconv.large_score_to_proto(a, rank) for rank, a in page.items]
        if request.view == risk_pb2.ASSESSMENT_VIEW_FULL:
            for row, (_, a) in zip(rows, page.items, strict=True):
                row.assessment.CopyFrom(lconv.large_assessment_to_proto(model, a))
        return risk_pb2.ListProviderScoresResponse(
            provider_scores=rows,
            next_page_token=page.next_page_token,
            total_size=page.total_size,
            provenance=lconv.large_provenance(model),
            score_interpretation=SCORE_INTERPRETATION,
        )

    @rpc
    async def GetScoreTrajectory(
        self, request: risk_pb2.GetScoreTrajectoryRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.GetScoreTrajectoryResponse:
        engine = await engine_for(self.registry, "")
        providers = [
            conv.parse_name(name, "providers", f"names[{k}]")
            for k, name in enumerate(request.names)
        ] or list(engine.provider_ids)
        for k, pid in enumerate(providers):
            if pid not in engine.provider_ids:
                raise engine.graph.not_found("provider", request.names[k])
        first, last = conv.quarter_range(engine, request.start_quarter, request.end_quarter)
        check_range(first, last)
        weights = request.weights if request.HasField("weights") else None
        params = _params(engine, date_pb2.Date(), weights, request.horizon_weeks)
        rows = await self.registry.run(
            lambda e: trajectory(e, providers, first, last, params), engine, heavy=True
        )
        return risk_pb2.GetScoreTrajectoryResponse(
            rows=[conv.trajectory_row_to_proto(r) for r in rows],
            provenance=conv.result_provenance_to_proto(rows[-1].assessment.provenance),
        )

    @rpc
    async def ListChokepoints(
        self, request: risk_pb2.ListChokepointsRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ListChokepointsResponse:
        engine = await engine_for(self.registry, request.graph_version)
        params = _params(engine, request.as_of, None, request.horizon_weeks)
        if request.country_event not in common_pb2.CountryEventKind.values():
            raise InvalidParameterError(
                [
                    FieldViolation(
                        "country_event", str(request.country_event), "unknown country event"
                    )
                ]
            )
        event = (
            CountryEvent.BLOCKADE
            if request.country_event == common_pb2.COUNTRY_EVENT_KIND_BLOCKADE
            else CountryEvent.SITE_LOSS
        )
        min_impact = request.min_impact or DEFAULT_MIN_IMPACT
        if not (math.isfinite(min_impact) and 0.0 < min_impact <= 1.0):
            raise InvalidParameterError(
                [FieldViolation("min_impact", repr(request.min_impact), "must be within (0, 1]")]
            )
        if request.kind not in risk_pb2.ChokepointKind.values():
            raise InvalidParameterError(
                [FieldViolation("kind", str(request.kind), "unknown chokepoint kind")]
            )
        kinds = (
            [request.kind]
            if request.kind
            else [
                risk_pb2.CHOKEPOINT_KIND_NODE,
                risk_pb2.CHOKEPOINT_KIND_FIRM,
                risk_pb2.CHOKEPOINT_KIND_COUNTRY,
            ]
        )

        def rank(base: RiskEngine) -> list[tuple[str, list[tuple[str, float]], int]]:
            e = base.at(params.as_of)  # the fleets and capacities of the date
            sources = {
                risk_pb2.CHOKEPOINT_KIND_NODE: e.node_chokepoints,
                risk_pb2.CHOKEPOINT_KIND_FIRM: e.firm_chokepoints,
                risk_pb2.CHOKEPOINT_KIND_COUNTRY: lambda m: e.country_chokepoints(
                    m, params.horizon_weeks, event
                ),
            }
            rows = [
                (key, impacts, kind) for kind in kinds for key, impacts in sources[kind](min_impact)
            ]

            def order(row: tuple[str, list[tuple[str, float]], int]) -> tuple[int, float, str]:
                cut, mean = chokepoint_rank([v for _, v in row[1]], min_impact)
                return (-cut, -round(mean, 12), conv.chokepoint_name(row[0], row[2]))

            return sorted(rows, key=order)

        rows = await self.registry.run(rank, engine)
        page = paginate(
            list(enumerate(rows, start=1)),
            page_size=request.page_size,
            page_token=request.page_token,
            version=engine.graph.version_id,
            digest=query_digest(
                "ListChokepoints",
                params.as_of,
                min_impact,
                request.kind,
                params.horizon_weeks,
                str(event),
            ),
        )
        graph = engine.graph
        provenance = engine.provenance(
            params,
            min_impact=repr(min_impact),
            kind=risk_pb2.ChokepointKind.Name(request.kind),
            country_event=str(event),
        )
        return risk_pb2.ListChokepointsResponse(
            chokepoints=[
                conv.chokepoint_to_proto(
                    graph, key, impacts, kind=kind, rank=r, min_impact=min_impact
                )
                for r, (key, impacts, kind) in page.items
            ],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
            provenance=conv.result_provenance_to_proto(provenance),
            score_interpretation=SCORE_INTERPRETATION,
        )

    @rpc
    async def RunScenario(
        self, request: risk_pb2.RunScenarioRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.RunScenarioResponse:
        engine = await engine_for(self.registry, request.graph_version)
        weights = request.weights if request.HasField("weights") else None
        params = _params(engine, request.as_of, weights, request.horizon_weeks)
        scenario = scenario_conv.scenario_from_proto(request)
        scenario_conv.validate(engine.graph, request, scenario)
        providers = _providers(engine, request.providers)
        result = await self.registry.run(
            lambda e: run_scenario(e, scenario, params, providers or None), engine, heavy=True
        )
        response = scenario_conv.result_to_proto(result)
        response.provenance.CopyFrom(conv.result_provenance_to_proto(engine.provenance(params)))
        response.score_interpretation = SCORE_INTERPRETATION
        return response

    @rpc_stream
    async def SimulateDisruptions(
        self, request: risk_pb2.SimulateDisruptionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[risk_pb2.SimulateDisruptionsResponse]:
        engine = await engine_for(self.registry, request.graph_version)
        providers = _providers(engine, request.providers)
        samples = request.samples or DEFAULT_SAMPLES
        if not 1 <= samples <= sim.MAX_SAMPLES:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        "samples", str(request.samples), f"must be within [1, {sim.MAX_SAMPLES:,}]"
                    )
                ]
            )
        if request.seed < 0:
            raise InvalidParameterError(
                [FieldViolation("seed", str(request.seed), "must not be negative")]
            )
        if len(request.events) > sim.MAX_EVENTS:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        "events", f"{len(request.events)} events", f"at most {sim.MAX_EVENTS}"
                    )
                ]
            )
        events = (
            sim_conv.events_from_proto(list(request.events))
            if request.events
            else engine.supplements.events
        )
        if samples * max(1, len(events)) > sim.MAX_SAMPLE_EVENTS:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        "samples",
                        str(samples),
                        f"samples x events ({samples:,} x {len(events)}) must be at most "
                        f"{sim.MAX_SAMPLE_EVENTS:,}: fewer samples or fewer events",
                    )
                ]
            )
        failures = sim.DEFAULT_NODE_FAILURES
        if request.HasField("independent_failure_probability"):
            failures = replace(failures, probability=request.independent_failure_probability)
        want_sensitivity = request.sensitivity

        def work(
            e: RiskEngine,
            report: Callable[[sim.Progress], None],
            should_stop: Callable[[], bool],
        ) -> tuple[sim.SimulationResult, SensitivityResult | None]:
            attributes: dict[str, str | int] = {
                "sovrisk.graph_version": e.graph_version or e.graph.version_id,
                "sovrisk.samples": samples,
                "sovrisk.events": len(events),
                "sovrisk.seed": request.seed,
            }
            with tracing.span("sovrisk.simulate", attributes):
                batches = tracing.BatchSpans("sovrisk.simulate.batch")

                def progress(item: sim.Progress) -> None:
                    batches.end({"sovrisk.samples_done": item.samples_done})
                    report(item)

                result = sim.simulate(
                    e,
                    events,
                    samples,
                    request.seed,
                    providers=providers or None,
                    node_failures=failures,
                    keep_drivers=want_sensitivity,
                    progress=progress,
                    should_stop=should_stop,
                )
            if not want_sensitivity:
                return result, None
            with tracing.span("sovrisk.simulate.sensitivity"):
                return result, sensitivity(result)

        params = engine.default_params()
        started = time.perf_counter()
        async for item in self.registry.stream(work, engine):
            if isinstance(item, Final):
                result, sens = item.value
                metrics.SIMULATION_RATE.set(samples / max(time.perf_counter() - started, 1e-9))
                provenance = conv.result_provenance_to_proto(
                    engine.provenance(
                        params,
                        samples=str(samples),
                        node_failure_probability=repr(failures.probability),
                        events=",".join(e.id for e in result.events),
                    )
                )
                provenance.seed = request.seed
                names = {p: engine.graph.nodes[p].name for p in engine.provider_ids}
                message = sim_conv.result_to_proto(result, sens, names, provenance)
                metrics.SIMULATED_SAMPLES.inc(samples)
                yield risk_pb2.SimulateDisruptionsResponse(result=message)
            else:
                progress = sim_conv.progress_to_proto(item)
                yield risk_pb2.SimulateDisruptionsResponse(progress=progress)

    @rpc
    async def CompareAssessments(
        self, request: risk_pb2.CompareAssessmentsRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.CompareAssessmentsResponse:
        registry, store = self.registry, self.registry.store
        assert store is not None
        provider = conv.parse_name(request.name, "providers")
        violations: list[FieldViolation] = []
        ids: dict[str, int | None] = {}
        dates: dict[str, dt.date | None] = {}
        for field in ("base_version", "target_version"):
            try:
                ids[field] = vconv.parse_version(getattr(request, field), field)
            except InvalidParameterError as exc:
                violations += exc.violations
        for field in ("base_as_of", "target_as_of"):
            try:
                dates[field] = conv.date_from_proto(getattr(request, field), field)
            except InvalidParameterError as exc:
                violations += exc.violations
        if violations:
            raise InvalidParameterError(violations)

        def work() -> tuple[compare.Comparison, str, str]:
            return registry.compare(
                provider,
                base_id=ids["base_version"],
                target_id=ids["target_version"],
                base_as_of=dates["base_as_of"],
                target_as_of=dates["target_as_of"],
                provider_name=request.name,
            )

        result, base_name, target_name = await registry.call(work, heavy=True)
        return hconv.comparison_to_proto(result, base_name, target_name)

    @rpc_stream
    async def WatchProviderScores(
        self, request: history_pb2.WatchProviderScoresRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[history_pb2.WatchProviderScoresResponse]:
        registry = self.registry
        engine = registry.engine
        providers = _providers(engine, request.providers) or list(engine.provider_ids)
        thresholds = hconv.thresholds_from_proto(request.thresholds)
        validate_thresholds(thresholds)
        start = vconv.parse_version(request.start_after_version, "start_after_version")
        seen = registry.latest_version_id if start is None else start
        if seen > registry.latest_version_id and registry.store is not None:
            # A client reconnecting to another replica may know a version this one has not
            # polled yet: look at the store once before calling it unknown.
            await registry.call(registry.refresh)
        if seen > registry.latest_version_id:
            raise NotFoundError("graph version", request.start_after_version)
        names = {p: engine.graph.nodes[p].name for p in engine.provider_ids}
        woken = registry.subscribe()
        try:
            while True:
                while seen < registry.latest_version_id:
                    version = seen + 1
                    before = await registry.call(_score_table, registry, version - 1)
                    after = await registry.call(_score_table, registry, version)
                    alerts = fired(before, after, thresholds, providers)
                    yield history_pb2.WatchProviderScoresResponse(
                        graph_version=vconv.version_name(version),
                        base_version=vconv.version_name(version - 1) if version > 1 else "",
                        alerts=[
                            hconv.alert_to_proto(
                                a,
                                before.get(a.provider, {}),
                                after.get(a.provider, {}),
                                names.get(a.provider, a.provider),
                            )
                            for a in alerts
                        ],
                    )
                    seen = version
                if registry.stopping:
                    return  # the server is shutting down: end the stream cleanly
                await woken.wait()
                woken.clear()
        finally:
            registry.unsubscribe(woken)


def _score_table(registry: GraphRegistry, version_id: int) -> dict[str, dict[str, float | None]]:
    """provider -> metric -> value of a stored version (empty before the first version)."""
    if version_id < 1:
        return {}
    return {
        r.provider: {"composite": r.composite, **r.sub_scores} for r in registry.scores(version_id)
    }


#: ReportFormat -> (build_report format, media type).
_REPORT_FORMATS = {
    report_pb2.REPORT_FORMAT_UNSPECIFIED: ("html", "text/html; charset=utf-8"),
    report_pb2.REPORT_FORMAT_HTML: ("html", "text/html; charset=utf-8"),
    report_pb2.REPORT_FORMAT_MARKDOWN: ("md", "text/markdown; charset=utf-8"),
    report_pb2.REPORT_FORMAT_CSV: ("csv", "text/csv; charset=utf-8"),
    report_pb2.REPORT_FORMAT_JSON: ("json", "application/json"),
}


class ReportCancelled(Exception):
    """The client went away: stop building the report at the next progress point."""


async def generate_report(
    registry: GraphRegistry, request: report_pb2.GenerateReportRequest
) -> AsyncIterator[report_pb2.GenerateReportResponse]:
    """``RiskService.GenerateReport``: progress, then the document."""
    if request.format not in _REPORT_FORMATS:
        raise InvalidParameterError(
            [FieldViolation("format", str(request.format), "unknown report format")]
        )
    fmt, media_type = _REPORT_FORMATS[request.format]
    engine = await engine_for(registry, request.graph_version)
    providers = _providers(engine, request.providers)
    as_of = conv.date_from_proto(request.as_of, "as_of")
    draws = _interval_draws(request, registry)

    def work(
        e: RiskEngine,
        report: Callable[[report_pb2.ReportProgress], None],
        should_stop: Callable[[], bool],
    ) -> bytes:
        def progress(stage: str, fraction: float) -> None:
            if should_stop():
                raise ReportCancelled
            report(report_pb2.ReportProgress(stage=stage, fraction=fraction))

        window = None
        if request.include_trajectory:
            day = as_of or e.graph.info.as_of
            window = default_window(e, Quarter.of(day))
        return build_report(
            e,
            fmt=fmt,
            providers=providers or None,
            as_of=as_of,
            simulate_samples=request.simulate_samples,
            seed=request.seed or 7,
            progress=progress,
            trajectory=window,
            interval_draws=draws,
        )

    async for item in registry.stream(work, engine):
        if isinstance(item, Final):
            content: bytes = item.value
            yield report_pb2.GenerateReportResponse(
                report=report_pb2.Report(
                    file_name=default_filename(fmt),
                    content_type=media_type,
                    content=content,
                    sha256=hashlib.sha256(content).hexdigest(),
                    graph_version=engine.graph_version,
                )
            )
        else:
            yield report_pb2.GenerateReportResponse(progress=item)
