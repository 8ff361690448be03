"""PostgreSQL backend, for deployments with several service replicas sharing one store."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import psycopg

from sovrisk.service.store.base import SqlGraphStore
from sovrisk.service.store.cursor import Cursor

#: A file holding the database password (a container secret), so that the password appears
#: neither in the store URL nor in the environment.
PASSWORD_FILE_ENV = "SOVRISK_STORE_PASSWORD_FILE"


#: The advisory lock key of schema migrations (any fixed 64-bit number, ours alone).
MIGRATION_LOCK_KEY = 0x736F767269736B  # "sovrisk"


class PostgresGraphStore(SqlGraphStore):
    placeholder = "%s"
    blob_type = "BYTEA"
    integrity_error = psycopg.errors.IntegrityError

    def __init__(self, url: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__(url)
        self._password = password_from_file(os.environ if env is None else env)

    def _lock_migrations(self, cur: Cursor) -> None:
        # Two replicas starting on a new database raced on CREATE TABLE (UniqueViolation on
        # pg_type_typname_nsp_index, 10 times in 10): one transaction-level advisory lock,
        # released at commit, makes the second wait and then find the tables made.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        # One short-lived connection per operation keeps the store thread-safe without a pool;
        # the service's request rate on writes is low and reads are cached per version.
        extra: dict[str, Any] = {} if self._password is None else {"password": self._password}
        with psycopg.connect(self.url, connect_timeout=10, **extra) as conn:
            if not write:
                conn.read_only = True
            with conn.transaction(), conn.cursor() as cur:
                yield cast(Cursor, cur)


def password_from_file(env: Mapping[str, str]) -> str | None:
    """The password in the file ``$SOVRISK_STORE_PASSWORD_FILE`` names (one line; the trailing
    newline dropped), or None when the variable is not set."""
    path = env.get(PASSWORD_FILE_ENV)
    if not path:
        return None
    return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
