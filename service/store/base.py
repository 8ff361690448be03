"""The versioned graph store: immutable dataset versions in a SQL database.

A version is the exact files of a dataset (content-addressed blobs, shared between versions)
plus who committed it, when, why, and on top of which version. History is linear: a commit
names its base version and the database itself refuses a second child of the same parent
(``UNIQUE(parent_id)``), so two writers on a stale base can never both land, whatever the
number of replicas. Each commit is one transaction: a reader sees a version whole or not at
all, and a process killed mid-commit leaves the previous version untouched.

SQLite (default, one file in WAL mode) and PostgreSQL share this code; the subclasses only
say how to connect and which SQL types and placeholders their dialect uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.service.store.analytics import AnalyticsTables
from sovrisk.service.store.cursor import Cursor

log = logging.getLogger("sovrisk.store")

#: Fault injection for crash tests: seconds to sleep inside a commit's transaction, after
#: every row is written and before COMMIT. Never set it in production.
PAUSE_BEFORE_COMMIT_ENV = "SOVRISK_FAULT_PAUSE_BEFORE_COMMIT"


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One committed version of the graph (immutable)."""

    id: int
    parent_id: int | None
    content_hash: str  # the loader's formatting-independent hash of the records
    files_digest: str  # sha256 of the exact files (DatasetFiles.digest)
    dataset_version: str  # the human version in dataset.toml
    author: str  # the principal of the token that committed it
    created_at: dt.datetime  # UTC
    message: str
    change_count: int  # records changed against the parent (0 for an import of equal data)

    @property
    def name(self) -> str:
        return f"graph/versions/{self.id}"


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A provider's scores on one version, stored as versions are created (score history)."""

    version_id: int
    provider: str
    as_of: dt.date
    model_version: str
    composite: float | None
    band: str
    sub_scores: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A write's AIP-155 identity: the client's request id, who sent it and a digest of the
    request (without the id), so a retry can be told from a different request reusing it."""

    request_id: str
    principal: str
    digest: str


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request id already committed, and the version it committed."""

    request: WriteRequest
    version_id: int


class StoreError(RuntimeError):
    """Base class of the store's own errors."""


class StaleBaseError(StoreError):
    """The commit's base is not the latest version any more (optimistic concurrency)."""

    def __init__(self, base: int | None, current: VersionRecord | None) -> None:
        self.base = base
        self.current = current
        now = current.id if current else None
        super().__init__(f"base version {base} is stale: the latest version is {now}")


class VersionNotFoundError(StoreError, LookupError):
    def __init__(self, version_id: int) -> None:
        self.version_id = version_id
        super().__init__(f"graph version {version_id} not found")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SqlGraphStore(AnalyticsTables, ABC):
    """Everything but the dialect. Each operation opens its own connection (or borrows one
    from the subclass's pool), so a store may be used from any thread."""

    #: DB-API placeholder of the driver.
    placeholder: str = "?"
    #: SQL type for binary data.
    blob_type: str = "BLOB"
    #: The driver's exception for a violated UNIQUE/PRIMARY KEY constraint.
    integrity_error: type[Exception] = Exception

    def __init__(self, url: str) -> None:
        self.url = url

    # -- dialect hooks ---------------------------------------------------------------------

    @abstractmethod
    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        """A cursor inside a transaction committed on success and rolled back on error."""

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    # -- schema ----------------------------------------------------------------------------

    def _lock_migrations(self, cur: Cursor) -> None:
        """Serialise the migrations of replicas starting together, for the transaction
        (SQLite's write transactions already are)."""

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied, each in its own transaction."""
        from sovrisk.service.store.migrations import MIGRATIONS

        applied: list[int] = []
        with self._transaction(write=True) as cur:
            self._lock_migrations(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        for migration in MIGRATIONS:
            with self._transaction(write=True) as cur:
                self._lock_migrations(cur)
                cur.execute(
                    self._sql("SELECT 1 FROM schema_migrations WHERE version = ?"),
                    (migration.version,),
                )
                if cur.fetchone() is not None:
                    continue
                for statement in migration.statements(self.blob_type):
                    cur.execute(statement)
                cur.execute(
                    self._sql(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
                    ),
                    (migration.version, migration.name, _now().isoformat()),
                )
                applied.append(migration.version)
                log.info("store: applied migration %d (%s)", migration.version, migration.name)
        return applied

    def schema_version(self) -> int:
        with self._transaction(write=False) as cur:
            cur.execute("SELECT MAX(version) FROM schema_migrations")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- versions --------------------------------------------------------------------------

    _VERSION_COLUMNS = (
        "id, parent_id, content_hash, files_digest, dataset_version, author, created_at, "
        "message, change_count"
    )

    @staticmethod
    def _version(row: Sequence[Any]) -> VersionRecord:
        return VersionRecord(
            id=int(row[0]),
            parent_id=None if row[1] is None else int(row[1]),
            content_hash=str(row[2]),
            files_digest=str(row[3]),
            dataset_version=str(row[4]),
            author=str(row[5]),
            created_at=dt.datetime.fromisoformat(str(row[6])),
            message=str(row[7]),
            change_count=int(row[8]),
        )

    def latest(self) -> VersionRecord | None:
        with self._transaction(write=False) as cur:
            return self._latest(cur)

    def _latest(self, cur: Cursor) -> VersionRecord | None:
        cur.execute(f"SELECT {self._VERSION_COLUMNS} FROM versions ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        return None if row is None else self._version(row)

    def get(self, version_id: int) -> VersionRecord:
        with self._transaction(write=False) as cur:
            cur.execute(
                self._sql(f"SELECT {self._VERSION_COLUMNS} FROM versions WHERE id = ?"),
                (version_id,),
            )
            row = cur.fetchone()
        if row is None:
            raise VersionNotFoundError(version_id)
        return self._version(row)

    def list_versions(self, *, before: int | None = None, limit: int = 50) -> list[VersionRecord]:
        """Newest first; ``before`` continues a listing below that id."""
        with self._transaction(write=False) as cur:
            cur.execute(
                self._sql(
                    f"SELECT {self._VERSION_COLUMNS} FROM versions WHERE id < ? "
                    "ORDER BY id DESC LIMIT ?"
                ),
                (before if before is not None else 2**62, limit),
            )
            return [self._version(r) for r in cur.fetchall()]

    def count_versions(self) -> int:
        with self._transaction(write=False) as cur:
            cur.execute("SELECT COUNT(*) FROM versions")
            return int(cur.fetchone()[0])

    def files(self, version_id: int) -> DatasetFiles:
        """The exact files of a version."""
        with self._transaction(write=False) as cur:
            cur.execute(
                self._sql(
                    "SELECT f.name, b.data FROM version_files f "
                    "JOIN blobs b ON b.sha256 = f.blob_sha256 WHERE f.version_id = ?"
                ),
                (version_id,),
            )
            rows = cur.fetchall()
        if not rows:
            self.get(version_id)  # raises VersionNotFoundError for an unknown id
        return DatasetFiles({str(name): bytes(data) for name, data in rows})

    def commit(
        self,
        *,
        base: int | None,
        files: DatasetFiles,
        content_hash: str,
        dataset_version: str,
        author: str,
        message: str,
        change_count: int,
        request: WriteRequest | None = None,
    ) -> VersionRecord:
        """Store ``files`` as the child of ``base`` (None only for the first version), with
        ``request``'s id in the same transaction.

        Raises :class:`StaleBaseError` if ``base`` is not the latest version, whether that is
        seen before writing or only when the database rejects a second child of ``base`` (or
        a second commit of the same request id).
        """
        record = VersionRecord(
            id=(base or 0) + 1,
            parent_id=base,
            content_hash=content_hash,
            files_digest=files.digest,
            dataset_version=dataset_version,
            author=author,
            created_at=_now(),
            message=message,
            change_count=change_count,
        )
        try:
            with self._transaction(write=True) as cur:
                current = self._latest(cur)
                if (current.id if current else None) != base:
                    raise StaleBaseError(base, current)
                for data in files.values():
                    sha = _sha256(data)
                    cur.execute(
                        self._sql(
                            "INSERT INTO blobs (sha256, size, data) VALUES (?, ?, ?) "
                            "ON CONFLICT (sha256) DO NOTHING"
                        ),
                        (sha, len(data), data),
                    )
                cur.execute(
                    self._sql(
                        f"INSERT INTO versions ({self._VERSION_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        record.id,
                        record.parent_id,
                        record.content_hash,
                        record.files_digest,
                        record.dataset_version,
                        record.author,
                        record.created_at.isoformat(),
                        record.message,
                        record.change_count,
                    ),
                )
                for name, data in files.items():
                    cur.execute(
                        self._sql(
                            "INSERT INTO version_files (version_id, name, blob_sha256) "
                            "VALUES (?, ?, ?)"
                        ),
                        (record.id, name, _sha256(data)),
                    )
                if request is not None:
                    cur.execute(
                        self._sql(
                            "INSERT INTO write_requests (request_id, principal, request_digest, "
                            "version_id, created_at) VALUES (?, ?, ?, ?, ?)"
                        ),
                        (
                            request.request_id,
                            request.principal,
                            request.digest,
                            record.id,
                            record.created_at.isoformat(),
                        ),
                    )
                _maybe_pause_before_commit()
        except self.integrity_error as exc:
            # Another writer committed a child of ``base`` between our check and our insert.
            log.info("store: commit on base %s lost a race: %s", base, exc)
            raise StaleBaseError(base, self.latest()) from exc
        log.info("store: committed version %d by %s (%s)", record.id, author, message)
        return record

    def find_request(self, request_id: str) -> StoredRequest | None:
        """The commit a request id made, if any (AIP-155)."""
        with self._transaction(write=False) as cur:
            cur.execute(
                self._sql(
                    "SELECT principal, request_digest, version_id FROM write_requests "
                    "WHERE request_id = ?"
                ),
                (request_id,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return StoredRequest(WriteRequest(request_id, str(row[0]), str(row[1])), int(row[2]))

    # -- score history ---------------------------------------------------------------------

    def record_scores(self, scores: Sequence[ScoreRecord]) -> None:
        """Store scores (idempotent: a (version, provider) already stored is kept)."""
        with self._transaction(write=True) as cur:
            for s in scores:
                cur.execute(
                    self._sql(
                        "INSERT INTO score_history (version_id, provider, as_of, model_version, "
                        "composite, band, sub_scores) VALUES (?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (version_id, provider) DO NOTHING"
                    ),
                    (
                        s.version_id,
                        s.provider,
                        s.as_of.isoformat(),
                        s.model_version,
                        s.composite,
                        s.band,
                        json.dumps(dict(s.sub_scores), sort_keys=True),
                    ),
                )

    def score_history(
        self, provider: str | None = None, *, after: int = 0, limit: int = 1000
    ) -> list[ScoreRecord]:
        """Stored scores of versions after ``after``, oldest first."""
        query = (
            "SELECT version_id, provider, as_of, model_version, composite, band, sub_scores "
            "FROM score_history WHERE version_id > ?"
        )
        params: list[Any] = [after]
        if provider is not None:
            query += " AND provider = ?"
            params.append(provider)
        query += " ORDER BY version_id, provider LIMIT ?"
        params.append(limit)
        with self._transaction(write=False) as cur:
            cur.execute(self._sql(query), params)
            rows = cur.fetchall()
        return [
            ScoreRecord(
                version_id=int(r[0]),
                provider=str(r[1]),
                as_of=dt.date.fromisoformat(str(r[2])),
                model_version=str(r[3]),
                composite=None if r[4] is None else float(r[4]),
                band=str(r[5]),
                sub_scores=json.loads(str(r[6])),
            )
            for r in rows
        ]

    def close(self) -> None:
        """Release pooled connections (if the subclass pools them)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _maybe_pause_before_commit() -> None:
    pause = os.environ.get(PAUSE_BEFORE_COMMIT_ENV)
    if pause:
        print("sovrisk-fault: paused before commit", file=sys.stderr, flush=True)
        time.sleep(float(pause))
