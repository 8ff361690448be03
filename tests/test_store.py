"""The versioned graph store, on SQLite and on PostgreSQL (``store_url`` runs each test on
both): migrations, immutable versions, exact files, optimistic concurrency, score history."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.service.store import (
    ScoreRecord,
    SqlGraphStore,
    StaleBaseError,
    VersionNotFoundError,
    VersionRecord,
    open_store,
)
from sovrisk.service.store.migrations import MIGRATIONS
from tests.conftest import SMALL


def _commit(
    store: SqlGraphStore, base: int | None, files: DatasetFiles, who: str = "ann"
) -> VersionRecord:
    return store.commit(
        base=base,
        files=files,
        content_hash="h" * 64,
        dataset_version="1.0",
        author=who,
        message=f"by {who}",
        change_count=1,
    )


@pytest.fixture
def files() -> DatasetFiles:
    return DatasetFiles.from_directory(SMALL)


def test_migrations_apply_once(store_url: str) -> None:
    store = open_store(store_url)
    assert store.schema_version() == len(MIGRATIONS)
    assert store.migrate() == []  # a second start applies nothing
    assert open_store(store_url).schema_version() == len(MIGRATIONS)


def test_versions_are_numbered_linked_and_keep_exact_bytes(
    store_url: str, files: DatasetFiles
) -> None:
    store = open_store(store_url)
    assert store.latest() is None
    v1 = _commit(store, None, files)
    edited = files.replace({"edges.csv": files["edges.csv"] + b"\n"})
    v2 = _commit(store, 1, edited, "bob")
    assert (v1.id, v1.parent_id, v2.id, v2.parent_id) == (1, None, 2, 1)
    assert v2.name == "graph/versions/2"
    assert store.latest() == v2
    assert store.get(1) == v1
    assert store.files(1).digest == files.digest
    assert store.files(2)["edges.csv"] == edited["edges.csv"]
    assert store.files(2)["nodes.csv"] == files["nodes.csv"]
    assert [v.id for v in store.list_versions()] == [2, 1]
    assert [v.id for v in store.list_versions(before=2)] == [1]
    assert store.count_versions() == 2
    assert v2.author == "bob" and v2.created_at.tzinfo is not None
    with pytest.raises(VersionNotFoundError):
        store.get(3)
    with pytest.raises(VersionNotFoundError):
        store.files(3)


def test_a_stale_base_is_refused_and_stores_nothing(store_url: str, files: DatasetFiles) -> None:
    store = open_store(store_url)
    _commit(store, None, files)
    _commit(store, 1, files)
    with pytest.raises(StaleBaseError) as caught:
        _commit(store, 1, files, "late")
    assert caught.value.current is not None and caught.value.current.id == 2
    with pytest.raises(StaleBaseError):
        _commit(store, None, files, "reseed")
    assert store.count_versions() == 2


def test_concurrent_writers_on_one_base_never_both_land(
    store_url: str, files: DatasetFiles
) -> None:
    store = open_store(store_url)
    _commit(store, None, files)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def writer(k: int) -> None:
        mine = files.replace({"edges.csv": files["edges.csv"] + b"\n" * (k + 1)})
        start.wait()
        try:
            _commit(open_store(store_url), 1, mine, f"w{k}")
            outcomes.append(f"w{k}")
        except StaleBaseError:
            outcomes.append("stale")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "stale"]
    assert len(winners) == 1 and outcomes.count("stale") == 5
    latest = store.latest()
    assert latest is not None and latest.id == 2 and latest.author == winners[0]
    k = int(winners[0][1:])
    assert store.files(2)["edges.csv"] == files["edges.csv"] + b"\n" * (k + 1)


def test_score_history_is_stored_once_per_version_and_provider(
    store_url: str, files: DatasetFiles
) -> None:
    store = open_store(store_url)
    _commit(store, None, files)
    _commit(store, 1, files)
    day = dt.date(2024, 6, 1)
    first = ScoreRecord(1, "p", day, "0.2.0", 61.5, "HIGH", {"concentration": 70.0, "tail": None})
    store.record_scores([first, ScoreRecord(2, "p", day, "0.2.0", 58.25, "MODERATE", {})])
    store.record_scores([ScoreRecord(1, "p", day, "0.2.0", 99.0, "SEVERE", {})])  # kept: first
    history = store.score_history("p")
    assert [(h.version_id, h.composite, h.band) for h in history] == [
        (1, 61.5, "HIGH"),
        (2, 58.25, "MODERATE"),
    ]
    assert history[0].sub_scores == {"concentration": 70.0, "tail": None}
    assert [h.version_id for h in store.score_history(after=1)] == [2]
    assert store.score_history("q") == []


def test_the_postgresql_password_can_come_from_a_secret_file(tmp_path: Path) -> None:
    from sovrisk.service.store.postgres import PASSWORD_FILE_ENV, password_from_file

    secret = tmp_path / "postgres_password"
    secret.write_text("s3cret-value\n", encoding="utf-8")
    assert password_from_file({PASSWORD_FILE_ENV: str(secret)}) == "s3cret-value"
    assert password_from_file({}) is None


def test_replicas_starting_together_migrate_once(store_url: str, tmp_path: Path) -> None:
    """Two processes opening a new PostgreSQL store at once raced on CREATE TABLE
    (UniqueViolation on pg_type, 10 times in 10); the migrations now take an advisory lock.
    On SQLite the switch to WAL refused with "database is locked" (retried now). Eight
    rounds of four openers on a new store each."""
    failures: list[BaseException] = []

    def round_of_four(url: str) -> None:
        barrier = threading.Barrier(4)

        def open_one() -> None:
            try:
                barrier.wait()
                open_store(url).close()
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    round_of_four(store_url)
    if not store_url.startswith("postgres"):
        for k in range(7):
            round_of_four(str(tmp_path / f"round{k}" / "sovrisk.db"))
    assert failures == []
