"""Per-version analytics kept in the store (issue 14, item 2), on SQLite and PostgreSQL:
computed once, read back by a restarted process or another replica, claimed so that two
replicas never compute the same, never able to run code from a tampered row."""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sovrisk.models.analysis import resilience as resilience_mod
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.dataset import DatasetFiles, Upsert
from sovrisk.models.graph.editing import edit_dataset, validate_files
from sovrisk.models.scoring.analytics_cache import AnalyticsKey
from sovrisk.models.scoring.compare import compare
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.store import SqlGraphStore, open_store
from sovrisk.service.stored_analytics import StoredAnalytics, UnreadableAnalytics, decode, encode
from tests.conftest import SMALL

KEY = AnalyticsKey("tail", "c" * 64, ("7",))
BUNDLED = Path(__file__).parents[1] / "data"


class Counting:
    """A computation that counts its calls (and may wait or fail)."""

    def __init__(self, value: object = 42, *, fail: bool = False, delay: float = 0.0) -> None:
        self.value, self.fail, self.delay, self.calls = value, fail, delay, 0

    def __call__(self) -> Any:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        return self.value


@pytest.fixture
def store(store_url: str) -> SqlGraphStore:
    return open_store(store_url)


def test_the_key_names_kind_content_and_parts() -> None:
    digests = {
        AnalyticsKey("tail", "c" * 64, ("7",)).digest,
        AnalyticsKey("resilience", "c" * 64, ("7",)).digest,
        AnalyticsKey("tail", "d" * 64, ("7",)).digest,
        AnalyticsKey("tail", "c" * 64, ("8",)).digest,
        AnalyticsKey("tail", "c" * 64, ("7", "")).digest,  # NUL-joined: no collisions
    }
    assert len(digests) == 5 and all(len(d) == 64 for d in digests)


def test_computed_once_then_read_back_by_another_process(store: SqlGraphStore) -> None:
    first, second = StoredAnalytics(store, owner="a"), StoredAnalytics(store, owner="b")
    compute = Counting({"x": [1.5, 2.5]})
    assert first.fetch(KEY, compute) == {"x": [1.5, 2.5]}
    assert first.fetch(KEY, compute) == {"x": [1.5, 2.5]}
    assert second.fetch(KEY, compute) == {"x": [1.5, 2.5]}
    assert compute.calls == 1
    assert store.analytics_computers() == [(KEY.digest, "a")]
    assert store.analytics_summary() == [("tail", 1, len(encode({"x": [1.5, 2.5]})))]


def test_a_replica_waits_for_the_one_computing(store: SqlGraphStore) -> None:
    assert store.claim_analytics(KEY.digest, "a", now=time.time(), stale_before=0.0)
    waiter = StoredAnalytics(store, owner="b", poll_s=0.01)
    compute = Counting("b's")
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(waiter.fetch(KEY, compute)))
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive() and not got  # b waits while a holds the claim
    StoredAnalytics(store, owner="a")._compute(KEY, KEY.digest, Counting("a's"))
    thread.join(10)
    assert got == ["a's"] and compute.calls == 0


def test_a_dead_replica_s_claim_is_taken_over(store: SqlGraphStore) -> None:
    # a's last heartbeat is a minute old: its lease (30 s) ran out
    assert store.claim_analytics(KEY.digest, "a", now=time.time() - 60, stale_before=0.0)
    compute = Counting("b's")
    assert StoredAnalytics(store, owner="b").fetch(KEY, compute) == "b's"
    assert compute.calls == 1 and store.analytics_computers() == [(KEY.digest, "b")]


def test_a_live_claim_is_not_taken_over(store: SqlGraphStore) -> None:
    now = time.time()
    assert store.claim_analytics(KEY.digest, "a", now=now, stale_before=0.0)
    assert not store.claim_analytics(KEY.digest, "b", now=now, stale_before=now - 30)
    store.heartbeat_analytics([KEY.digest], "a", now + 100)
    assert not store.claim_analytics(KEY.digest, "b", now=now + 110, stale_before=now + 80)
    assert store.claim_analytics(KEY.digest, "b", now=now + 140, stale_before=now + 110)


def test_a_failed_computation_releases_its_claim(store: SqlGraphStore) -> None:
    cache = StoredAnalytics(store, owner="a")
    with pytest.raises(RuntimeError, match="boom"):
        cache.fetch(KEY, Counting(fail=True))
    compute = Counting("again")
    # the claim is gone: another replica computes at once instead of waiting out a lease
    assert StoredAnalytics(store, owner="b").fetch(KEY, compute) == "again"
    assert compute.calls == 1


def test_an_unreadable_row_is_recomputed_and_replaced(store: SqlGraphStore) -> None:
    cache = StoredAnalytics(store, owner="a")
    cache.fetch(KEY, Counting("old"))
    with store._transaction(write=True) as cur:
        cur.execute(store._sql("UPDATE analytics SET data = ?"), (b"not a pickle",))
    compute = Counting("new")
    assert cache.fetch(KEY, compute) == "new" and compute.calls == 1
    assert StoredAnalytics(store, owner="b").fetch(KEY, Counting("never")) == "new"


class _Unreachable:
    def get_analytics(self, key: str) -> bytes | None:
        raise ConnectionError("store down")


def test_an_unreachable_store_computes_without_storing() -> None:
    compute = Counting(7)
    assert StoredAnalytics(_Unreachable(), owner="a").fetch(KEY, compute) == 7  # type: ignore[arg-type]
    assert compute.calls == 1


def test_a_value_that_cannot_be_stored_is_still_returned(
    store: SqlGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("store went away")

    monkeypatch.setattr(store, "put_analytics", refuse)
    compute = Counting("kept")
    assert StoredAnalytics(store, owner="a").fetch(KEY, compute) == "kept"
    assert compute.calls == 1 and store.analytics_summary() == []


def test_a_closed_cache_does_not_touch_its_store() -> None:
    """A registry's background scoring may outlive it (its private store already removed)."""
    cache = StoredAnalytics(_Unreachable(), owner="a")  # type: ignore[arg-type]
    cache.close()
    compute = Counting(5)
    assert cache.fetch(KEY, compute) == 5 and compute.calls == 1


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_a_tampered_row_cannot_run_code() -> None:
    with pytest.raises(UnreadableAnalytics, match="system"):
        decode(pickle.dumps(_Payload()))
    # functions of the domain are refused too: only its classes are built
    with pytest.raises(UnreadableAnalytics, match="load_bundle"):
        decode(pickle.dumps(load_bundle))


def test_every_analysis_of_the_bundled_data_round_trips_exactly() -> None:
    graph, supplements = load_bundle(BUNDLED)
    engine = RiskEngine(graph, supplements)
    results = [
        engine.resilience_result(),
        engine.tail_result(),
        engine.cut_set_result(),
        engine.assess_all(engine.default_params()),
    ]
    for result in results:
        assert decode(encode(result)) == result


def test_a_restarted_server_reads_its_analytics_back(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = GraphRegistry.open(store_url, seed=SMALL)
    params = first.engine.default_params()
    before = first.engine.assess("p", params)
    first.close()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the resilience LPs ran again")

    monkeypatch.setattr(resilience_mod, "resilience_analysis", refuse)
    restarted = GraphRegistry.open(store_url, seed=SMALL)
    try:
        engine = restarted.engine
        assert engine.assess("p", params) == before
        assert engine.resilience_result() == first.engine.resilience_result()
    finally:
        restarted.close()


def test_versions_with_equal_content_share_analytics(store_url: str) -> None:
    """Content-addressed: the assessment is stored once, and each version's copy names that
    version in its provenance."""
    registry = GraphRegistry.open(store_url, seed=SMALL)
    try:
        v1 = registry.engine
        a1 = v1.assess("p", v1.default_params())
        assert registry.store is not None
        twin = registry.new_engine(validate_files(registry.store.files(1)))
        a_twin = twin.assess("p", v1.default_params())
        assert twin.content_key == v1.content_key
        assert a_twin.provenance.graph_version == "" and a1.provenance.graph_version == (
            "graph/versions/1"
        )
        assert a_twin.composite == a1.composite
        kinds = dict((k, n) for k, n, _ in registry.store.analytics_summary())
        assert kinds["assessment"] == 1  # one provider, one stored assessment
    finally:
        registry.close()


def _resplit(m1: float) -> list[Upsert]:
    edge = {"consumer": "a", "category": "memory", "quality": "B", "source": "fixture"}
    return [
        Upsert("edge", {**edge, "supplier": "m1", "share": str(m1), "as_of": "2024-01-01"}),
        Upsert("edge", {**edge, "supplier": "m2", "share": str(1 - m1), "as_of": "2024-01-01"}),
    ]


def test_a_one_group_comparison_builds_no_engine() -> None:
    """The one edit group applied alone is the target version: compare uses its engine (and
    analytics) instead of building and scoring a copy."""
    base_files = DatasetFiles.from_directory(SMALL)
    target = edit_dataset(base_files, _resplit(0.7))
    base_engine = RiskEngine(validate_files(base_files).graph)
    target_engine = RiskEngine(target.graph)
    params = base_engine.default_params()

    def build(files: DatasetFiles) -> RiskEngine:
        raise AssertionError("built an engine for the target's own files")

    result = compare(
        "p",
        base_engine=base_engine,
        base_files=base_files,
        base_params=params,
        target_engine=target_engine,
        target_files=target.files,
        target_params=params,
        build=build,
    )
    [cause] = result.steps[0].causes
    assert cause.effect is not None
    # hand check: p's composite 51.9 -> 53.3 with m1 at 50 % -> 70 % (test_replicas.THRESHOLD)
    assert cause.effect.composite == pytest.approx(result.total.composite, abs=1e-9)
    assert result.total.composite == pytest.approx(53.3 - 51.9, abs=0.06)
