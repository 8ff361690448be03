"""PostgreSQL backend, for deployments with several service replicas sharing one store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import psycopg

from sovrisk.service.store.base import Cursor, SqlGraphStore


class PostgresGraphStore(SqlGraphStore):
    placeholder = "%s"
    blob_type = "BYTEA"
    integrity_error = psycopg.errors.IntegrityError

    def __init__(self, url: str) -> None:
        super().__init__(url)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        # One short-lived connection per operation keeps the store thread-safe without a pool;
        # the service's request rate on writes is low and reads are cached per version.
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            if not write:
                conn.read_only = True
            with conn.transaction(), conn.cursor() as cur:
                yield cast(Cursor, cur)
