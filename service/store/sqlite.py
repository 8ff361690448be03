"""SQLite backend: one database file in WAL mode (the default store)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sovrisk.service.store.base import SqlGraphStore
from sovrisk.service.store.cursor import Cursor

#: How long a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 30.0


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch a database to WAL. The switch needs the database to itself and does not wait
    on the busy timeout: two processes opening a new store at once (a server and a CLI) got
    "database is locked"; it is retried until BUSY_TIMEOUT_S."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SqliteGraphStore(SqlGraphStore):
    placeholder = "?"
    blob_type = "BLOB"
    integrity_error = sqlite3.IntegrityError

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(f"sqlite:///{self.path}")
        with self._connect() as conn:
            # WAL: readers never block the writer and see the last committed version whole.
            _set_wal(conn)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so a write transaction takes the
        # write lock up front (BEGIN IMMEDIATE) instead of upgrading, which can deadlock.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            conn.close()

    def integrity_check(self) -> str:
        """SQLite's own consistency check ("ok" when the file is sound)."""
        with self._transaction(write=False) as cur:
            cur.execute("PRAGMA integrity_check")
            return str(cur.fetchone()[0])
