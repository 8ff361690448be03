"""Serves graph versions from the store: the latest one warm, older ones on demand.

One :class:`RiskEngine` per graph version: the engine compiles the graph once and caches
assessments per (provider, parameters), so the cache key is (graph version, parameters).
Writes (edits, imports) go through here so that a committed version is installed, its
scores recorded in the history, and watchers woken, in that order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import tempfile
import threading
import time
from asyncio import FIRST_COMPLETED
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from sovrisk.models.cancellation import OperationCancelled, cancellable
from sovrisk.models.engine.edgetable import EdgeTableError, edge_table_from_bytes
from sovrisk.models.errors import FieldViolation, InvalidParameterError, PreconditionError
from sovrisk.models.graph.bundle import Supplements
from sovrisk.models.graph.dataset import (
    EDGE_TABLE_FILE,
    Change,
    DatasetFiles,
    RecordChange,
    diff_datasets,
    is_edge_table,
)
from sovrisk.models.graph.editing import ValidatedDataset, edit_dataset, validate_files
from sovrisk.models.graph.events import Event
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.compare import Comparison
from sovrisk.models.scoring.compare import compare as compare_assessments
from sovrisk.models.scoring.large import LargeGraphModel
from sovrisk.models.scoring.limits import DEFAULT_SEED
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.uncertainty import cached_uncertainty
from sovrisk.service import metrics, tracing
from sovrisk.service.memory import release_free_memory
from sovrisk.service.paths import DEFAULT_DATA_DIR
from sovrisk.service.request_context import request_owner
from sovrisk.service.store import (
    ScoreRecord,
    SqlGraphStore,
    StaleBaseError,
    VersionRecord,
    WriteRequest,
    open_store,
)
from sovrisk.service.stored_analytics import StoredAnalytics

log = logging.getLogger("sovrisk.registry")

T = TypeVar("T")
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Final(Generic[T]):
    """The result that ends a :meth:`GraphRegistry.stream`."""

    value: T


@dataclass(frozen=True, slots=True)
class Committed:
    """The outcome of a write: the new version (None for a validate-only dry run) and what
    changed against the base. ``replayed``: the request id had already committed this
    version (AIP-155), nothing was written now."""

    version: VersionRecord | None
    changes: tuple[RecordChange, ...]
    dataset: ValidatedDataset | None
    replayed: bool = False


#: Older versions kept compiled in memory besides the latest.
ENGINE_CACHE_SIZE = 4
#: Unstored variants (CompareAssessments' edit groups applied alone) kept compiled.
VARIANT_CACHE_SIZE = 12
#: Edge-table versions kept compiled (each ~1 GB at 100k nodes / 500k edges once scored).
LARGE_CACHE_SIZE = 2
#: The dataset_version recorded for an edge-table version (it has no dataset.toml).
EDGE_TABLE_VERSION = "edge-table"


def large_model_of(files: Mapping[str, bytes]) -> LargeGraphModel:
    """The validated, compiled edge table of ``files`` (it must be their only file).
    Raises InvalidParameterError naming what is wrong."""
    others = sorted(set(files) - {EDGE_TABLE_FILE})
    if others:
        raise InvalidParameterError(
            [
                FieldViolation(
                    "chunk.file_name", name, f"an edge-table import holds only {EDGE_TABLE_FILE}"
                )
                for name in others
            ]
        )
    data = files[EDGE_TABLE_FILE]
    try:
        table = edge_table_from_bytes(data, EDGE_TABLE_FILE)
        table.validate()
        return LargeGraphModel(table)
    except (EdgeTableError, ValueError) as exc:
        raise InvalidParameterError(
            [FieldViolation(EDGE_TABLE_FILE, f"{len(data)} bytes", str(exc))]
        ) from exc


SEED_AUTHOR = "system"

#: Heavy jobs running or queued at once; one more is RESOURCE_EXHAUSTED with a retry delay.
MAX_HEAVY_JOBS = 4
#: Heavy jobs one caller (a token's principal, else a peer address) may have admitted at once,
#: so one client cannot take every place.
MAX_HEAVY_JOBS_PER_CALLER = 2
RETRY_AFTER_SECONDS = 5.0

HEAVY_KINDS = "simulations, reports, scenarios, screening, comparisons, trajectories"


class Overloaded(Exception):
    """Too many heavy jobs already admitted (by everyone, or by this caller when
    ``per_caller``): retry after ``retry_after`` seconds."""

    def __init__(
        self, limit: int, retry_after: float = RETRY_AFTER_SECONDS, *, per_caller: bool = False
    ) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.per_caller = per_caller
        whose = "you already have" if per_caller else "the server is busy with"
        super().__init__(
            f"{whose} {limit} heavy request{'' if limit == 1 else 's'} ({HEAVY_KINDS}) running "
            "or queued; "
            f"retry in {retry_after:.0f} s"
        )


def score_records(version: VersionRecord, engine: RiskEngine) -> list[ScoreRecord]:
    """Every provider's composite and sub-scores on ``version`` at the dataset's as-of date."""
    params = engine.default_params()
    return [
        ScoreRecord(
            version_id=version.id,
            provider=a.provider,
            as_of=params.as_of,
            model_version=a.provenance.model_version,
            composite=a.composite,
            band=str(a.band),
            sub_scores={str(s.key): (s.score if s.available else None) for s in a.sub_scores},
        )
        for a in engine.assess_all(params)
    ]


def _traced(span: tracing.SpanHandle, committed: Committed) -> Committed:
    """The commit's outcome on its span."""
    span.set("sovrisk.changes", len(committed.changes))
    span.set("sovrisk.replayed", committed.replayed)
    if committed.version is not None:
        span.set("sovrisk.graph_version", committed.version.name)
    return committed


class GraphRegistry:
    """The versions the server answers from. Installing a version is one atomic reference
    update: a request pins the engine it started with and never sees half a version."""

    def __init__(
        self,
        store: SqlGraphStore | None = None,
        *,
        workers: int = 2,
        heavy_workers: int = 1,
        private_dir: str = "",
    ) -> None:
        self.store = store
        #: Where served versions keep their analytics (resilience, tail, cut sets, published
        #: assessments, intervals): in the store, shared by restarts and replicas.
        self.analytics = StoredAnalytics(store) if store is not None else None
        #: Draws behind score intervals when a request does not say (0 = none; ``sovrisk
        #: serve --interval-draws``).
        self.interval_draws = 0
        self._current: RiskEngine | None = None
        # The latest version when it is an edge table (then _current is None), and the edge
        # tables of older versions asked for by name.
        self._current_large: LargeGraphModel | None = None
        self._large: OrderedDict[int, LargeGraphModel] = OrderedDict()
        # Engines of unstored variants (CompareAssessments' edit groups), by files digest.
        self._variants: OrderedDict[str, RiskEngine] = OrderedDict()
        self._version: VersionRecord | None = None
        self._engines: OrderedDict[int, RiskEngine] = OrderedDict()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._running = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sovrisk-score")
        # Heavy work (simulations, reports, scenarios, screening, comparisons, trajectories)
        # runs in its own pool, so a cached read never waits behind it (one ScoreProvider once
        # waited 50 s behind four simulations), and at most max_heavy_jobs are admitted.
        self._heavy_executor = ThreadPoolExecutor(
            max_workers=heavy_workers, thread_name_prefix="sovrisk-heavy"
        )
        self.max_heavy_jobs = MAX_HEAVY_JOBS
        self.max_heavy_jobs_per_caller = MAX_HEAVY_JOBS_PER_CALLER
        self._heavy_admitted = 0
        self._heavy_by_caller: dict[str, int] = {}
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._private_dir = private_dir  # a temporary store owned (and removed) by us
        self._closed = False
        #: Set on shutdown: watchers end their streams instead of waiting for a version.
        self.stopping = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls, store_url: str, *, seed: str | Path = DEFAULT_DATA_DIR, workers: int = 2
    ) -> GraphRegistry:
        """Open (and migrate) the store, seed it from ``seed`` if it holds no version yet,
        and install the latest version."""
        registry = cls(open_store(store_url), workers=workers)
        registry.load_latest(seed=seed)
        return registry

    @classmethod
    def from_directory(cls, path: str | Path, *, workers: int = 2) -> GraphRegistry:
        """Serve a dataset folder from a private temporary SQLite store, removed on close."""
        private = tempfile.mkdtemp(prefix="sovrisk-store-")
        registry = cls(open_store(private), workers=workers, private_dir=private)
        registry.load_latest(seed=path)
        return registry

    def load_latest(self, *, seed: str | Path | None = None) -> VersionRecord:
        """Install the store's latest version, seeding an empty store from ``seed`` first."""
        store = self._require_store()
        latest = store.latest()
        if latest is None:
            if seed is None:
                raise RuntimeError("the store holds no version and no seed folder was given")
            files = DatasetFiles.from_directory(seed)
            dataset = validate_files(files)
            try:
                latest = store.commit(
                    base=None,
                    files=files,
                    content_hash=dataset.graph.content_hash,
                    dataset_version=dataset.graph.info.version,
                    author=SEED_AUTHOR,
                    message=f"seeded from {Path(seed).name}/",
                    change_count=0,
                )
                engine = self.new_engine(dataset, latest)
            except StaleBaseError as exc:  # another replica seeded it first: serve theirs
                assert exc.current is not None
                latest = exc.current
                engine = self._build(latest)
        elif self._is_edge_table(latest):
            self._install_large(latest, self.large_at(latest.id))
            return latest
        else:
            engine = self._build(latest)
        self._install(latest, engine)
        # (the server warms the intervals of the version it starts with itself)
        self._record_scores(latest, precompute=False)
        return latest

    def _require_store(self) -> SqlGraphStore:
        if self.store is None:
            raise RuntimeError("this registry has no store")
        return self.store

    def _is_edge_table(self, version: VersionRecord) -> bool:
        return version.dataset_version == EDGE_TABLE_VERSION

    def _edge_table_only(self, version: VersionRecord) -> PreconditionError:
        return PreconditionError(
            "EDGE_TABLE",
            version.name,
            "is an edge table (a large graph, scored by structure alone): only ScoreProvider, "
            "ListProviderScores and the version methods serve it; name a dataset version with "
            "graph_version",
        )

    def known_kind(self, version_id: int | None) -> tuple[bool, LargeGraphModel | None]:
        """(known, model) without I/O, for the event loop: whether this process already
        knows what the version (None = the latest) is, and its edge-table model if it is
        one. Unknown versions go through :meth:`large_at` in the worker pool."""
        with self._lock:
            if version_id is None or (self._version and version_id == self._version.id):
                if self._current_large is not None or self._current is not None:
                    return True, self._current_large
            elif version_id in self._engines:
                return True, None  # a dataset version compiled here
            elif (model := self._large.get(version_id)) is not None:
                self._large.move_to_end(version_id)
                return True, model
        return False, None

    def large_at(self, version_id: int | None) -> LargeGraphModel | None:
        """The edge-table model of a stored version (None = the latest), or None when that
        version is a dataset. Built once (compiling ~1 s per million edges) and kept."""
        known, model = self.known_kind(version_id)
        if known:
            return model
        if version_id is None:
            if self._version is None:
                raise RuntimeError("no stored version installed")
            version_id = self._version.id
        version = self._require_store().get(version_id)
        if not self._is_edge_table(version):
            return None
        files = self._require_store().files(version_id)
        table = edge_table_from_bytes(files[EDGE_TABLE_FILE])
        model = LargeGraphModel(table, name=version.name, digest=version.content_hash)
        with self._lock:
            self._large[version_id] = model
            while len(self._large) > LARGE_CACHE_SIZE:
                self._large.popitem(last=False)
        return model

    def _install_large(self, version: VersionRecord, model: LargeGraphModel | None) -> None:
        assert model is not None
        with self._lock:
            if self._version is not None and version.id < self._version.id:
                return
            self._current, self._current_large, self._version = None, model, version
        log.info("edge table %s installed as %s", model.digest[:12], version.name)
        self._notify()

    def _build(self, version: VersionRecord) -> RiskEngine:
        if self._is_edge_table(version):
            raise self._edge_table_only(version)
        with (
            metrics.ENGINE_BUILD_SECONDS.time(),
            tracing.span("sovrisk.engine.build", {"sovrisk.graph_version": version.name}) as span,
        ):
            dataset = validate_files(self._require_store().files(version.id))
            engine = self.new_engine(dataset, version)
            span.set("sovrisk.nodes", len(dataset.graph.nodes))
        metrics.ENGINE_BUILDS.inc()
        return engine

    def new_engine(
        self, dataset: ValidatedDataset, version: VersionRecord | None = None
    ) -> RiskEngine:
        """An engine for ``dataset`` (the stored ``version``, or an unstored variant of one)
        whose analytics live in the store: content-addressed, so a variant with a stored
        version's content reads that version's."""
        return RiskEngine(
            dataset.graph,
            dataset.supplements,
            graph_version=version.name if version else "",
            analytics=self.analytics,
        )

    def _install(self, version: VersionRecord, engine: RiskEngine) -> None:
        with self._lock:
            if self._version is not None and version.id < self._version.id:
                return  # a newer version is already current (refresh raced a write)
            self._engines[version.id] = engine
            self._engines.move_to_end(version.id)
            while len(self._engines) > ENGINE_CACHE_SIZE + 1:
                self._engines.popitem(last=False)
            self._current, self._current_large, self._version = engine, None, version
        log.info("graph %s installed as %s", engine.graph.version_id, version.name)
        self._notify()

    def install(self, graph: SupplyGraph, supplements: Supplements | None = None) -> RiskEngine:
        """Serve ``graph`` without storing it (tests and tools that need no history)."""
        engine = RiskEngine(graph, supplements)
        with self._lock:
            self._current = engine
        log.info("graph %s installed (not stored)", graph.version_id)
        return engine

    def refresh(self) -> bool:
        """Install the store's latest version if another process committed one. True if so."""
        # A write of this process in flight installs its own version: a refresh between its
        # commit and its install would build the same version a second time (an edge table
        # of 1M nodes: a second model, scored again, 1 GB more).
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            return self._refresh()
        finally:
            self._write_lock.release()

    def _refresh(self) -> bool:
        store = self._require_store()
        latest = store.latest()
        if latest is None or (self._version is not None and latest.id <= self._version.id):
            return False
        if self._is_edge_table(latest):
            self._install_large(latest, self.large_at(latest.id))
            return True
        self._install(latest, self._build(latest))
        # the committing replica computes the intervals; this one reads them when asked
        self._record_scores(latest, precompute=False)
        return True

    # -- reading ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._current is not None or self._current_large is not None

    @property
    def engine(self) -> RiskEngine:
        """The latest version's engine; PreconditionError when it is an edge table."""
        if self._current is None:
            if self._current_large is not None and self._version is not None:
                raise self._edge_table_only(self._version)
            raise RuntimeError("no graph loaded")
        return self._current

    @property
    def version(self) -> VersionRecord | None:
        """The latest installed stored version."""
        return self._version

    @property
    def latest_version_id(self) -> int:
        if self._version is None:
            raise RuntimeError("no stored version installed")
        return self._version.id

    @property
    def running_jobs(self) -> int:
        """Streaming jobs still running in the worker pool (a cancelled one ends soon after)."""
        with self._lock:
            return self._running

    @property
    def events(self) -> tuple[Event, ...]:
        """The bundled disruption events of the current version (events.csv)."""
        return self._current.supplements.events if self._current is not None else ()

    @property
    def graph(self) -> SupplyGraph:
        return self.engine.graph

    def engine_at(self, version_id: int) -> RiskEngine:
        """The engine of a stored version, built (off the event loop) if not cached.

        Raises :class:`VersionNotFoundError` for an unknown id.
        """
        with self._lock:
            engine = self._engines.get(version_id)
            if engine is not None:
                self._engines.move_to_end(version_id)
                return engine
        version = self._require_store().get(version_id)
        engine = self._build(version)
        with self._lock:
            self._engines[version_id] = engine
            if self._version is not None:
                self._engines.move_to_end(self._version.id)  # never evict the latest
            while len(self._engines) > ENGINE_CACHE_SIZE + 1:
                self._engines.popitem(last=False)
        return engine

    async def engine_for(self, version_id: int | None) -> RiskEngine:
        """The latest engine (``None``) or a stored version's, built in the worker pool."""
        if version_id is None or (self._version is not None and version_id == self._version.id):
            return self.engine
        return await self.call(self.engine_at, version_id)

    async def call(self, fn: Callable[..., T], *args: Any, heavy: bool = False) -> T:
        """Run a blocking call in the worker pool (``heavy``: the admitted heavy pool).

        If the awaiting request is cancelled (its client went away or its deadline passed),
        the work stops at its next cancellation checkpoint instead of running to the end.
        """
        stop = threading.Event()

        traced = tracing.in_current_context(fn)  # the request's span follows it to the pool

        def scoped() -> T:
            started = time.perf_counter()
            try:
                with cancellable(stop.is_set):
                    return traced(*args)
            finally:
                release_free_memory(time.perf_counter() - started)

        if heavy:
            future = self._submit_heavy(scoped)
        else:
            future = asyncio.get_running_loop().run_in_executor(self._executor, scoped)
        try:
            return await future
        except asyncio.CancelledError:
            stop.set()
            raise

    def _submit_heavy(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` in the heavy pool, counted against max_heavy_jobs (and the
        caller's max_heavy_jobs_per_caller) until it ends or is cancelled before starting (a
        cancelled request's running work keeps its place until it stops, within a second);
        raises :class:`Overloaded` when a limit is reached."""
        caller = request_owner()
        with self._lock:
            mine = self._heavy_by_caller.get(caller, 0)
            if mine >= self.max_heavy_jobs_per_caller:
                metrics.OVERLOADED.inc()
                raise Overloaded(self.max_heavy_jobs_per_caller, per_caller=True)
            if self._heavy_admitted >= self.max_heavy_jobs:
                metrics.OVERLOADED.inc()
                raise Overloaded(self.max_heavy_jobs)
            self._heavy_admitted += 1
            self._heavy_by_caller[caller] = mine + 1
            metrics.HEAVY_JOBS.inc()

        def release(_: object) -> None:
            with self._lock:
                self._heavy_admitted -= 1
                left = self._heavy_by_caller[caller] - 1
                if left:
                    self._heavy_by_caller[caller] = left
                else:
                    del self._heavy_by_caller[caller]
                metrics.HEAVY_JOBS.dec()

        job = self._heavy_executor.submit(fn, *args)
        job.add_done_callback(release)
        return asyncio.wrap_future(job)

    # -- writing ---------------------------------------------------------------------------

    def commit_changes(
        self,
        base: int,
        changes: Sequence[Change],
        *,
        author: str,
        message: str,
        validate_only: bool = False,
        request: WriteRequest | None = None,
        request_field: str = "request_id",
    ) -> Committed:
        """Apply record changes on top of ``base`` and commit them as one new version.

        Raises :class:`StaleBaseError` if ``base`` is not the latest version and
        :class:`EditRejected` (nothing stored) if the result does not validate. With a
        ``request`` whose id already committed, that commit is returned (see :meth:`_once`).
        """

        def write() -> Committed:
            before = self._latest_files(base)
            if is_edge_table(before):
                raise self._edge_table_only(self._require_store().get(base))
            dataset = edit_dataset(before, changes)
            return self._commit(base, before, dataset, author, message, validate_only, request)

        return self._once(request, request_field, validate_only, write)

    def commit_files(
        self,
        base: int,
        files: DatasetFiles,
        *,
        author: str,
        message: str,
        validate_only: bool = False,
        request: WriteRequest | None = None,
        request_field: str = "request_id",
    ) -> Committed:
        """Commit a whole dataset (an import) on top of ``base``.

        Raises :class:`StaleBaseError` or :class:`DataValidationError` (nothing stored).
        """

        def write() -> Committed:
            if is_edge_table(files):
                return self._commit_edge_table(base, files, author, message, validate_only, request)
            before = self._latest_files(base)
            if is_edge_table(before):  # a dataset replaces an edge table whole
                before = DatasetFiles({})
            dataset = validate_files(files)
            return self._commit(base, before, dataset, author, message, validate_only, request)

        return self._once(request, request_field, validate_only, write)

    def _commit_edge_table(
        self,
        base: int,
        files: DatasetFiles,
        author: str,
        message: str,
        validate_only: bool,
        request: WriteRequest | None,
    ) -> Committed:
        """Validate an edge table (every array; compiling rejects cycles) and commit it as
        the next version. It replaces the dataset whole: no record-level changes."""
        model = large_model_of(files)
        if validate_only:
            return Committed(None, (), None)
        with tracing.span("sovrisk.store.write", {"sovrisk.base_version": base}):
            version = self._require_store().commit(
                base=base,
                files=files,
                content_hash=model.digest,
                dataset_version=EDGE_TABLE_VERSION,
                author=author,
                message=message,
                change_count=0,
                request=request,
            )
        model.name = version.name
        with self._lock:
            self._large[version.id] = model
        self._install_large(version, model)
        return Committed(version, (), None)

    def _once(
        self,
        request: WriteRequest | None,
        request_field: str,
        validate_only: bool,
        write: Callable[[], Committed],
    ) -> Committed:
        """Run ``write`` once per request id (AIP-155): a retry of a request that committed
        gets that commit back, even when the base has moved since or another replica
        committed it. Writes are never cancelled half-way: a client that gives up leaves a
        write that completes, which its retry then finds by its id."""
        if validate_only:
            request = None
        with (
            cancellable(lambda: False),
            self._write_lock,
            metrics.COMMIT_SECONDS.time(),
            tracing.span("sovrisk.store.commit", {"sovrisk.validate_only": validate_only}) as span,
        ):
            if (replay := self._replay(request, request_field)) is not None:
                return _traced(span, replay)
            try:
                return _traced(span, write())
            except StaleBaseError:
                # Another replica may have committed this very request between our look-up
                # and our insert (the id's primary key refused the second).
                if (replay := self._replay(request, request_field)) is not None:
                    return _traced(span, replay)
                raise

    def _replay(self, request: WriteRequest | None, request_field: str) -> Committed | None:
        if request is None:
            return None
        store = self._require_store()
        prior = store.find_request(request.request_id)
        if prior is None:
            return None
        if prior.request != request:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        request_field,
                        request.request_id,
                        "this request id was already used for a different request (other "
                        "content or another principal); use a new id for a new write",
                    )
                ]
            )
        version = store.get(prior.version_id)
        before = store.files(version.parent_id) if version.parent_id else DatasetFiles({})
        after = store.files(version.id)
        if is_edge_table(before):
            before = DatasetFiles({})
        changes = () if is_edge_table(after) else tuple(diff_datasets(before, after))
        log.info("write request %s replayed: %s", request.request_id, version.name)
        return Committed(version, changes, None, replayed=True)

    def _latest_files(self, base: int) -> DatasetFiles:
        """The files of ``base``, which must be the latest version (fail early, before any
        validation; the store checks again inside the commit's transaction)."""
        store = self._require_store()
        current = store.latest()
        if current is None or current.id != base:
            raise StaleBaseError(base, current)
        return store.files(base)

    def _commit(
        self,
        base: int,
        before: DatasetFiles,
        dataset: ValidatedDataset,
        author: str,
        message: str,
        validate_only: bool,
        request: WriteRequest | None = None,
    ) -> Committed:
        changes = tuple(diff_datasets(before, dataset.files))
        if validate_only:
            return Committed(None, changes, dataset)
        with tracing.span("sovrisk.store.write", {"sovrisk.base_version": base}):
            version = self._require_store().commit(
                base=base,
                files=dataset.files,
                content_hash=dataset.graph.content_hash,
                dataset_version=dataset.graph.info.version,
                author=author,
                message=message,
                change_count=len(changes),
                request=request,
            )
        with tracing.span("sovrisk.engine.build", {"sovrisk.graph_version": version.name}):
            engine = self.new_engine(dataset, version)
        self._install(version, engine)
        self._record_scores(version)
        return Committed(version, changes, dataset)

    def compare(
        self,
        provider: str,
        *,
        base_id: int | None = None,
        target_id: int | None = None,
        base_as_of: dt.date | None = None,
        target_as_of: dt.date | None = None,
        provider_name: str = "",
    ) -> tuple[Comparison, str, str]:
        """Why ``provider``'s assessment changed from (base version, date) to (target version,
        date) (``models.scoring.compare``; defaults: the latest version against its parent,
        each at its dataset's date), and the two version names."""
        store = self._require_store()
        target = target_id or self.latest_version_id
        base = base_id or store.get(target).parent_id or target
        base_engine, target_engine = self.engine_at(base), self.engine_at(target)
        for engine in (base_engine, target_engine):
            if provider not in engine.provider_ids:
                raise engine.graph.not_found("provider", provider_name or provider)

        def build(files: DatasetFiles) -> RiskEngine:
            # content-addressed: an edit group whose result is a stored version (a one-group
            # edit is the target itself) or was measured before reads those analytics; the
            # last few are kept compiled (validating one takes ~0.25 s)
            with self._lock:
                engine = self._variants.get(files.digest)
            if engine is None:
                engine = self.new_engine(validate_files(files))
                with self._lock:
                    self._variants[files.digest] = engine
                    while len(self._variants) > VARIANT_CACHE_SIZE:
                        self._variants.popitem(last=False)
            return engine

        result = compare_assessments(
            provider,
            base_engine=base_engine,
            base_files=store.files(base),
            base_params=ScoringParams.build(as_of=base_as_of or base_engine.graph.info.as_of),
            target_engine=target_engine,
            target_files=store.files(target),
            target_params=ScoringParams.build(as_of=target_as_of or target_engine.graph.info.as_of),
            build=build,
        )
        return result, f"graph/versions/{base}", f"graph/versions/{target}"

    # -- score history and change notification ---------------------------------------------

    def _record_scores(self, version: VersionRecord, *, precompute: bool = True) -> None:
        """Store the version's scores in the history and, for a new commit (``precompute``),
        its default score intervals and the analytics of its edit groups measured alone (in
        the background: the analytics take seconds, the intervals a minute, and the write must
        not wait for them; they are stored with the version's analytics, so the first
        reader and the first CompareAssessments against the parent find them)."""
        store = self._require_store()

        def record() -> None:
            try:
                with cancellable(lambda: self._closed):  # shutdown stops it at a checkpoint
                    engine = self.engine_at(version.id)
                    scores = score_records(version, engine)
                    if not self._closed:
                        store.record_scores(scores)
                    if precompute:
                        self._measure_edits(version, engine)
                    if precompute and self.interval_draws:
                        # the intervals every default read shows: computed (and stored) once
                        # now, not by the first reader of the version
                        cached_uncertainty(
                            engine, engine.default_params(), self.interval_draws, DEFAULT_SEED
                        )
            except OperationCancelled:
                pass
            except Exception:  # the history can be rebuilt; never fail the write for it
                if not self._closed:
                    log.exception("could not record the scores of %s", version.name)

        self._executor.submit(record)

    def _measure_edits(self, version: VersionRecord, engine: RiskEngine) -> None:
        """Run the default comparison against the parent once, for one provider both have:
        it computes and stores the analytics of every edit group applied alone (they are
        joint over all providers), so a comparison for any provider then reads them."""
        if version.parent_id is None or self._is_edge_table(
            self._require_store().get(version.parent_id)
        ):
            return
        before = set(self.engine_at(version.parent_id).provider_ids)
        shared = [p for p in engine.provider_ids if p in before]
        if shared:
            self.compare(shared[0], target_id=version.id)

    def scores(self, version_id: int) -> list[ScoreRecord]:
        """Stored scores of a version, computed and stored now if missing (blocking)."""
        store = self._require_store()
        rows = store.score_history(after=version_id - 1, limit=10_000)
        found = [r for r in rows if r.version_id == version_id]
        if found:
            return found
        version = store.get(version_id)
        computed = score_records(version, self.engine_at(version_id))
        store.record_scores(computed)
        return computed

    def subscribe(self) -> asyncio.Event:
        """An event set whenever a new version is installed (clear it after waking)."""
        event = asyncio.Event()
        with self._lock:
            self._listeners.append((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._listeners = [(lp, e) for lp, e in self._listeners if e is not event]

    def stop_watchers(self) -> None:
        """End every watch stream now (server shutdown): they would otherwise hold the drain
        until the next version, which may be hours away."""
        self.stopping = True
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for loop, event in listeners:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def poll_store(self, interval: float) -> None:
        """Pick up versions committed by other replicas, every ``interval`` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.call(self.refresh)
            except Exception:
                log.exception("store refresh failed")

    async def run(
        self,
        fn: Callable[[RiskEngine], T],
        engine: RiskEngine | None = None,
        *,
        heavy: bool = False,
    ) -> T:
        """Run ``fn(engine)`` in a worker pool so scoring never blocks the event loop."""
        engine = engine or self.engine  # pin the version for the whole call
        return await self.call(fn, engine, heavy=heavy)

    async def stream(
        self,
        work: Callable[[RiskEngine, Callable[[P], None], Callable[[], bool]], T],
        engine: RiskEngine | None = None,
    ) -> AsyncIterator[P | Final[T]]:
        """Run ``work(engine, report, should_stop)`` in the worker pool and yield each
        progress report as it comes, then the result wrapped in :class:`Final`.

        If the consumer stops iterating (the client cancelled, or its deadline passed),
        ``should_stop()`` turns true so the work ends at its next check.
        """
        pinned = engine or self.engine
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[P] = asyncio.Queue()
        stop = threading.Event()

        def report(item: P) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        traced = tracing.in_current_context(work)  # the request's span follows it to the pool

        def tracked() -> T:
            with self._lock:
                self._running += 1
            try:
                with cancellable(stop.is_set):
                    return traced(pinned, report, stop.is_set)
            finally:
                with self._lock:
                    self._running -= 1
                release_free_memory()

        future = self._submit_heavy(tracked)
        # A cancelled run ends in an exception nobody awaits; retrieve it so it is not logged.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        getter: asyncio.Future[P] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                pending: set[asyncio.Future[Any]] = {getter, future}
                done, _ = await asyncio.wait(pending, return_when=FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                yield Final(future.result())
                return
        finally:
            stop.set()
            # A consumer that stopped (a cancelled stream) leaves the queue read pending: a
            # task destroyed pending is logged as an error ("Task was destroyed but it is
            # pending!", 25 of them in 100 cancelled simulations).
            if getter is not None and not getter.done():
                getter.cancel()

    def close(self) -> None:
        self._closed = True
        if self.analytics is not None:
            self.analytics.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._heavy_executor.shutdown(wait=False, cancel_futures=True)
        if self.store is not None:
            self.store.close()
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)
