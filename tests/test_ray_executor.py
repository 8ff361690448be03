"""Sweeps on Ray (issue 14, item 5): a local head and two worker nodes on loopback; the
Monte Carlo, the uncertainty draws and a trajectory's quarters give the same bits as in this
process, and the work is spread over both workers. Skipped only without the `ray` extra
(`make test` installs it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from benchmarks.ray_cluster import local_cluster
from sovrisk.models.analysis.simulation import simulate
from sovrisk.models.cancellation import OperationCancelled, cancellable
from sovrisk.models.engine.executor import (
    LocalExecutor,
    default_executor,
    set_default_executor,
)
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring import trajectory as trajectory_module
from sovrisk.models.scoring import uncertainty
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.trajectory import trajectory
from sovrisk.service.ray_executor import RayExecutor, executor_from_option

BUNDLED = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayExecutor]:
    """A head that runs no tasks and two worker nodes of one CPU each, on loopback."""
    with local_cluster(workers=2) as ray_cluster:
        executor = RayExecutor(ray_cluster.address)
        deadline = time.monotonic() + 60
        while executor.parallelism < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # both workers registered
        yield executor


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    graph, supplements = load_bundle(BUNDLED)
    return RiskEngine(graph, supplements)


def test_the_monte_carlo_is_bit_identical_and_spread(
    cluster: RayExecutor, engine: RiskEngine
) -> None:
    events = engine.supplements.events
    local = simulate(engine, events, 12_000, 7, keep_drivers=True, batch_size=1000)
    reports: list[int] = []
    spread = simulate(
        engine,
        events,
        12_000,
        7,
        keep_drivers=True,
        batch_size=1000,
        executor=cluster,
        progress=lambda p: reports.append(p.samples_done),
    )
    assert len(reports) > 1 and reports[-1] == 12_000  # per range merged, not once at the end
    assert spread.providers == local.providers
    assert local.drivers is not None and spread.drivers is not None
    assert np.array_equal(spread.drivers.x, local.drivers.x)
    assert np.array_equal(spread.drivers.loss, local.drivers.loss)
    nodes = {node for node, _ in cluster.last_workers}
    assert len(nodes) == 2, cluster.last_workers  # both worker nodes ran ranges


def test_the_interval_draws_are_bit_identical(cluster: RayExecutor, engine: RiskEngine) -> None:
    params = engine.default_params()
    uncertainty._drawn_scores.cache_clear()
    here = uncertainty.score_uncertainty(engine, params, draws=2, seed=3)
    uncertainty._drawn_scores.cache_clear()
    before = default_executor()
    set_default_executor(cluster)
    try:
        there = uncertainty.score_uncertainty(engine, params, draws=2, seed=3)
    finally:
        set_default_executor(before)
        uncertainty._drawn_scores.cache_clear()
    assert there == here
    assert len(cluster.last_workers) == 2  # one draw on each worker


def test_trajectory_quarters_are_bit_identical(cluster: RayExecutor) -> None:
    """Each quarter a task: the workers rebuild the stored graph's engine and score it."""
    graph, supplements = load_bundle(BUNDLED)
    params = ScoringParams.build(as_of=graph.info.as_of, horizon_weeks=13.0)
    span = (Quarter(2024, 1), Quarter(2024, 2))

    def run(executor: LocalExecutor | RayExecutor) -> list[object]:
        engine = RiskEngine(graph, supplements, tail_samples=500)  # cold: nothing scored yet
        providers = list(engine.provider_ids)
        return list(trajectory(engine, providers, *span, params, executor=executor))

    trajectory_module._remote_rows.clear()  # none kept from an earlier test: both go out
    assert run(cluster) == run(LocalExecutor())
    trajectory_module._remote_rows.clear()
    assert len({node for node, _ in cluster.last_workers}) == 2  # one quarter on each


def test_a_cancelled_map_stops(cluster: RayExecutor, engine: RiskEngine) -> None:
    events = engine.supplements.events
    with pytest.raises(OperationCancelled), cancellable(lambda: True):
        simulate(engine, events, 12_000, 7, batch_size=1000, executor=cluster)


def test_the_option_names_the_executor(
    cluster: RayExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(executor_from_option("local"), LocalExecutor)
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert isinstance(executor_from_option("ray"), RayExecutor)  # joins the running cluster
    with pytest.raises(ValueError, match="local, ray or ray://"):
        executor_from_option("spark")
