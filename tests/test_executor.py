"""The executor interface without Ray: the local executor's order, threads and cancellation,
the Monte Carlo's ranges giving the sequential loop's bits, and trajectories' quarters as
tasks (tests/test_ray_executor.py does the same on a cluster)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from sovrisk.models.analysis.simulation import _ranges, simulate
from sovrisk.models.cancellation import OperationCancelled, cancellable
from sovrisk.models.engine.executor import LocalExecutor
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring import trajectory as trajectory_module
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.scenarios import Scenario, SetShare, scenario_graph
from sovrisk.models.scoring.trajectory import TrajectoryPoint, trajectory

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")
BUNDLED = Path(__file__).parents[1] / "data"
#: A short tail: the trajectory tests compare paths, not the tail's precision.
TAIL_SAMPLES = 500


def _square(offset: int, item: int) -> tuple[int, str]:
    return offset + item * item, threading.current_thread().name


def test_results_come_back_in_item_order_on_threads() -> None:
    out = LocalExecutor(threads=2).map(_square, 1, list(range(20)))
    assert [v for v, _ in out] == [1 + k * k for k in range(20)]
    assert LocalExecutor().map(_square, 0, [3]) == [(9, threading.current_thread().name)]
    with pytest.raises(ValueError, match="threads"):
        LocalExecutor(threads=0)


def test_a_cancelled_caller_stops_between_items() -> None:
    with pytest.raises(OperationCancelled), cancellable(lambda: True):
        LocalExecutor().map(_square, 0, [1, 2])


def test_ranges_are_whole_batches_about_four_per_worker() -> None:
    assert _ranges(10_000, 1000, 2) == [
        (0, 2000),
        (2000, 4000),
        (4000, 6000),
        (6000, 8000),
        (8000, 10_000),
    ]
    assert _ranges(2500, 1000, 8) == [(0, 1000), (1000, 2000), (2000, 2500)]


def test_the_ranges_give_the_sequential_bits(small_engine: RiskEngine) -> None:
    """The small fixture's independent failures, 5,000 samples in batches of 300: the range
    path on two threads equals the sequential loop bit for bit."""
    sequential = simulate(small_engine, (), 5000, 11, keep_drivers=True, batch_size=300)
    ranged = simulate(
        small_engine,
        (),
        5000,
        11,
        keep_drivers=True,
        batch_size=300,
        executor=LocalExecutor(threads=2),
    )
    assert ranged.providers == sequential.providers
    assert sequential.drivers is not None and ranged.drivers is not None
    assert np.array_equal(ranged.drivers.loss, sequential.drivers.loss)
    assert np.array_equal(ranged.drivers.x, sequential.drivers.x)


class ProcessExecutor:
    """A cluster's contract without a cluster: another process (spawned, with its own string
    hashing, as a Ray worker has), the shared input, items and results crossing pickles."""

    name = "process"
    parallelism = 1

    def __init__(self) -> None:
        self.tasks = 0

    def map(
        self,
        fn: Callable[[S, I], R],
        shared: S,
        items: Sequence[I],
        *,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        self.tasks += len(items)
        if not items:
            return []
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(fn, [shared] * len(items), items))
        for index, result in enumerate(results):
            if on_result is not None:
                on_result(index, result)
        return results


def _bundled_trajectory(executor: LocalExecutor | ProcessExecutor) -> list[TrajectoryPoint]:
    graph, supplements = load_bundle(BUNDLED)
    engine = RiskEngine(graph, supplements, tail_samples=TAIL_SAMPLES)
    params = ScoringParams.build(as_of=graph.info.as_of, horizon_weeks=13.0)
    span = (Quarter(2024, 1), Quarter(2024, 2))
    return trajectory(engine, list(engine.provider_ids), *span, params, executor=executor)


@pytest.fixture(scope="module")
def sequential_trajectory() -> list[TrajectoryPoint]:
    return _bundled_trajectory(LocalExecutor())


def test_trajectory_quarters_on_threads_warm_this_engine(
    sequential_trajectory: list[TrajectoryPoint],
) -> None:
    graph, supplements = load_bundle(BUNDLED)
    engine = RiskEngine(graph, supplements, tail_samples=TAIL_SAMPLES)
    params = ScoringParams.build(as_of=graph.info.as_of, horizon_weeks=13.0)
    span = (Quarter(2024, 1), Quarter(2024, 2))
    providers = list(engine.provider_ids)
    threaded = trajectory(engine, providers, *span, params, executor=LocalExecutor(threads=2))
    assert threaded == sequential_trajectory
    # Scored here: a second call is cached lookups, none sent to the executor again.
    spy = ProcessExecutor()
    assert trajectory(engine, providers, *span, params, executor=spy) == threaded
    assert spy.tasks == 0


def test_trajectory_quarters_in_another_process_give_the_same_bits(
    sequential_trajectory: list[TrajectoryPoint],
) -> None:
    """What a cluster worker does: rebuild the stored graph's engine from the recipe. The rows
    are kept here: the same trajectory again (on a new engine of the same graph) stays here."""
    trajectory_module._remote_rows.clear()
    spy = ProcessExecutor()
    assert _bundled_trajectory(spy) == sequential_trajectory
    assert spy.tasks == 2
    again = ProcessExecutor()
    assert _bundled_trajectory(again) == sequential_trajectory
    assert again.tasks == 0
    trajectory_module._remote_rows.clear()


def test_a_what_if_engines_own_quarter_is_not_sent_out() -> None:
    """A worker rebuilds only the stored graph's engine: a what-if engine's own quarter (its
    graph is the scenario's) is scored here."""
    graph, supplements = load_bundle(BUNDLED)
    stored = RiskEngine(graph, supplements, tail_samples=TAIL_SAMPLES)
    more_samsung = SetShare("nvidia-h100", "memory", "samsung-hbm3", 0.5)
    variant = scenario_graph(graph, Scenario("hbm", (more_samsung,)), graph.info.as_of)
    what_if = stored.derived(variant)
    assert what_if is not stored  # a graph of its own
    quarter = Quarter.of(graph.info.as_of)
    params = ScoringParams.build(as_of=graph.info.as_of, horizon_weeks=13.0)
    spy = ProcessExecutor()
    rows = trajectory(what_if, ["aws"], quarter, quarter, params, executor=spy)
    assert spy.tasks == 0
    assert rows == trajectory(what_if, ["aws"], quarter, quarter, params)
