"""Graph stores: where versions live. ``open_store`` picks the backend from a URL."""

from __future__ import annotations

from sovrisk.service.paths import SQLITE_FILE, sqlite_path
from sovrisk.service.store.base import (
    ScoreRecord,
    SqlGraphStore,
    StaleBaseError,
    StoredRequest,
    StoreError,
    VersionNotFoundError,
    VersionRecord,
    WriteRequest,
)

__all__ = [
    "SQLITE_FILE",
    "ScoreRecord",
    "SqlGraphStore",
    "StaleBaseError",
    "StoreError",
    "StoredRequest",
    "VersionNotFoundError",
    "VersionRecord",
    "WriteRequest",
    "open_store",
]


def open_store(url: str) -> SqlGraphStore:
    """``postgresql://...`` (or ``postgres://``), ``sqlite:///path/to/file.db``, or a plain
    path: a directory gets ``sovrisk.db`` inside it. Migrations are applied before return."""
    store: SqlGraphStore
    if url.startswith(("postgresql://", "postgres://")):
        from sovrisk.service.store.postgres import PostgresGraphStore

        store = PostgresGraphStore(url)
    else:
        from sovrisk.service.store.sqlite import SqliteGraphStore

        store = SqliteGraphStore(sqlite_path(url))
    store.migrate()
    return store
