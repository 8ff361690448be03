"""The store's analytics tables: per-version results by content key, and compute claims.

A result row is written once under its key (a sha256 naming the model, the dataset's
content and the parameters: ``sovrisk.models.scoring.analytics_cache.AnalyticsKey``) and
never changes, except to replace a row no process can read any more. A claim row says
"this owner is computing that key": it is taken with an INSERT that only one replica can win
(the primary key), refreshed by its owner's heartbeat, taken over when the heartbeat stops
(a crashed replica), and deleted in the same transaction that stores the result.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sovrisk.service.store.cursor import Cursor


@dataclass(frozen=True, slots=True)
class AnalyticsRow:
    key: str
    kind: str
    content_key: str
    computed_by: str
    compute_seconds: float
    data: bytes


class AnalyticsTables(ABC):
    """Mixed into :class:`SqlGraphStore`; SQL common to SQLite and PostgreSQL."""

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Cursor]: ...

    @abstractmethod
    def _sql(self, sql: str) -> str: ...

    def get_analytics(self, key: str) -> bytes | None:
        with self._transaction(write=False) as cur:
            cur.execute(self._sql("SELECT data FROM analytics WHERE key = ?"), (key,))
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def put_analytics(self, row: AnalyticsRow, *, owner: str) -> None:
        """Store a result (replacing an unreadable one) and drop ``owner``'s claim on it,
        in one transaction."""
        with self._transaction(write=True) as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO analytics (key, kind, content_key, computed_by, created_at, "
                    "compute_seconds, size, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET computed_by = excluded.computed_by, "
                    "created_at = excluded.created_at, compute_seconds = "
                    "excluded.compute_seconds, size = excluded.size, data = excluded.data"
                ),
                (
                    row.key,
                    row.kind,
                    row.content_key,
                    row.computed_by,
                    dt.datetime.now(dt.UTC).isoformat(),
                    row.compute_seconds,
                    len(row.data),
                    row.data,
                ),
            )
            cur.execute(
                self._sql("DELETE FROM analytics_claims WHERE key = ? AND owner = ?"),
                (row.key, owner),
            )

    def claim_analytics(self, key: str, owner: str, *, now: float, stale_before: float) -> bool:
        """Take the claim on ``key`` for ``owner``: True when no one else holds it (or its
        holder's last heartbeat is older than ``stale_before``)."""
        with self._transaction(write=True) as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO analytics_claims (key, owner, heartbeat) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO NOTHING"
                ),
                (key, owner, now),
            )
            if cur.rowcount == 1:
                return True
            cur.execute(
                self._sql(
                    "UPDATE analytics_claims SET owner = ?, heartbeat = ? "
                    "WHERE key = ? AND heartbeat < ?"
                ),
                (owner, now, key, stale_before),
            )
            return bool(cur.rowcount == 1)

    def heartbeat_analytics(self, keys: Iterable[str], owner: str, now: float) -> None:
        """Keep ``owner``'s claims on ``keys`` alive."""
        with self._transaction(write=True) as cur:
            for key in keys:
                cur.execute(
                    self._sql(
                        "UPDATE analytics_claims SET heartbeat = ? WHERE key = ? AND owner = ?"
                    ),
                    (now, key, owner),
                )

    def release_analytics(self, key: str, owner: str) -> None:
        """Drop ``owner``'s claim without a result (the computation failed or was stopped)."""
        with self._transaction(write=True) as cur:
            cur.execute(
                self._sql("DELETE FROM analytics_claims WHERE key = ? AND owner = ?"),
                (key, owner),
            )

    def analytics_summary(self) -> list[tuple[str, int, int]]:
        """(kind, rows, bytes) of the stored analytics, for ``sovrisk store stats``-style
        reports and tests."""
        with self._transaction(write=False) as cur:
            cur.execute(
                "SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM analytics GROUP BY kind "
                "ORDER BY kind"
            )
            return [(str(r[0]), int(r[1]), int(r[2])) for r in cur.fetchall()]

    def analytics_computers(self) -> list[tuple[str, str]]:
        """(key, computed_by) of every stored result."""
        with self._transaction(write=False) as cur:
            cur.execute("SELECT key, computed_by FROM analytics ORDER BY key")
            return [(str(r[0]), str(r[1])) for r in cur.fetchall()]
