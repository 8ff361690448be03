"""Versioned schema migrations, applied in order on start (``SqlGraphStore.migrate``).

Never edit a migration that has shipped: add a new one. The SQL is the common subset of
SQLite and PostgreSQL; only the binary column type differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[str], list[str]]  # blob type -> SQL statements


def _initial(blob: str) -> list[str]:
    return [
        f"""CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            data {blob} NOT NULL
        )""",
        """CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            parent_id INTEGER UNIQUE REFERENCES versions (id),
            content_hash TEXT NOT NULL,
            files_digest TEXT NOT NULL,
            dataset_version TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at TEXT NOT NULL,
            message TEXT NOT NULL,
            change_count INTEGER NOT NULL,
            CHECK (id = COALESCE(parent_id, 0) + 1)
        )""",
        """CREATE TABLE version_files (
            version_id INTEGER NOT NULL REFERENCES versions (id),
            name TEXT NOT NULL,
            blob_sha256 TEXT NOT NULL REFERENCES blobs (sha256),
            PRIMARY KEY (version_id, name)
        )""",
        """CREATE TABLE score_history (
            version_id INTEGER NOT NULL REFERENCES versions (id),
            provider TEXT NOT NULL,
            as_of TEXT NOT NULL,
            model_version TEXT NOT NULL,
            composite DOUBLE PRECISION,
            band TEXT NOT NULL,
            sub_scores TEXT NOT NULL,
            PRIMARY KEY (version_id, provider)
        )""",
        "CREATE INDEX score_history_provider ON score_history (provider, version_id)",
    ]


def _write_requests(blob: str) -> list[str]:
    # AIP-155 request ids: written in the commit's own transaction, so a write and its id are
    # stored together or not at all.
    return [
        """CREATE TABLE write_requests (
            request_id TEXT PRIMARY KEY,
            principal TEXT NOT NULL,
            request_digest TEXT NOT NULL,
            version_id INTEGER NOT NULL UNIQUE REFERENCES versions (id),
            created_at TEXT NOT NULL
        )""",
    ]


def _analytics(blob: str) -> list[str]:
    # Per-version analytics, content-addressed (the key is a sha256 of the model, the
    # dataset's content and the parameters), and the claims replicas take before computing
    # one so that two never compute the same.
    return [
        f"""CREATE TABLE analytics (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            content_key TEXT NOT NULL,
            computed_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            compute_seconds DOUBLE PRECISION NOT NULL,
            size INTEGER NOT NULL,
            data {blob} NOT NULL
        )""",
        "CREATE INDEX analytics_content ON analytics (content_key)",
        """CREATE TABLE analytics_claims (
            key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            heartbeat DOUBLE PRECISION NOT NULL
        )""",
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "versions, blobs, score history", _initial),
    Migration(2, "write request ids (AIP-155)", _write_requests),
    Migration(3, "per-version analytics and their claims", _analytics),
)
