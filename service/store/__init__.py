"""Graph stores: where versions live. ``open_store`` picks the backend from a URL."""

from __future__ import annotations

from pathlib import Path

from service.store.base import (
    ScoreRecord,
    SqlGraphStore,
    StaleBaseError,
    StoreError,
    VersionNotFoundError,
    VersionRecord,
)

__all__ = [
    "ScoreRecord",
    "SqlGraphStore",
    "StaleBaseError",
    "StoreError",
    "VersionNotFoundError",
    "VersionRecord",
    "open_store",
]

#: The default store file under the data directory.
SQLITE_FILE = "sovrisk.db"


def open_store(url: str) -> SqlGraphStore:
    """``postgresql://...`` (or ``postgres://``), ``sqlite:///path/to/file.db``, or a plain
    path: a directory gets ``sovrisk.db`` inside it. Migrations are applied before return."""
    store: SqlGraphStore
    if url.startswith(("postgresql://", "postgres://")):
        from service.store.postgres import PostgresGraphStore

        store = PostgresGraphStore(url)
    else:
        path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://"))
        if path.is_dir() or not path.suffix:
            path = path / SQLITE_FILE
        from service.store.sqlite import SqliteGraphStore

        store = SqliteGraphStore(path)
    store.migrate()
    return store
