"""Executors stream their results in item order (``on_result``), so a Monte Carlo on an
executor reports progress while its other ranges run, and stops when its caller does; and the
Monte Carlo's bits depend on the seed alone: not on the batch size, the executor or its
worker count (tests/test_ray_executor.py checks the same on a cluster)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from sovrisk.models.analysis.simulation import Cancelled, Progress, SimulationResult, simulate
from sovrisk.models.engine.executor import LocalExecutor
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.scoring.risk_engine import RiskEngine

BUNDLED = Path(__file__).parents[1] / "data"


def _twice(_: None, item: int) -> int:
    return 2 * item


@pytest.mark.parametrize("threads", [1, 3])
def test_results_are_handed_over_in_item_order(threads: int) -> None:
    seen: list[tuple[int, int]] = []
    out = LocalExecutor(threads).map(
        _twice, None, list(range(12)), on_result=lambda i, r: seen.append((i, r))
    )
    assert out == [2 * k for k in range(12)]
    assert seen == list(enumerate(out))


def test_an_exception_from_on_result_drops_the_items_not_started() -> None:
    """Two threads: items 1 and 2 wait until the caller has refused item 0's result; the items
    queued behind them are never run."""
    release = threading.Event()
    ran: list[int] = []

    def work(_: None, item: int) -> int:
        if item > 0:
            release.wait(timeout=30)
        ran.append(item)
        return item

    def refuse(index: int, result: int) -> None:
        release.set()
        raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        LocalExecutor(2).map(work, None, list(range(20)), on_result=refuse)
    assert 0 in ran and len(ran) <= 3, ran


@pytest.fixture(scope="module")
def bundled() -> RiskEngine:
    graph, supplements = load_bundle(BUNDLED)
    return RiskEngine(graph, supplements)


def _same_bits(a: SimulationResult, b: SimulationResult) -> None:
    assert a.providers == b.providers
    assert a.drivers is not None and b.drivers is not None
    assert np.array_equal(a.drivers.loss, b.drivers.loss)
    assert np.array_equal(a.drivers.x, b.drivers.x)


@pytest.fixture(scope="module")
def reference(bundled: RiskEngine) -> SimulationResult:
    events = bundled.supplements.events
    return simulate(bundled, events, 3000, 5, keep_drivers=True, batch_size=1000)


@pytest.mark.parametrize("batch_size", [64, 700, 3000])
def test_the_bits_do_not_depend_on_the_batch_size(
    bundled: RiskEngine, reference: SimulationResult, batch_size: int
) -> None:
    """Draws come in fixed blocks of samples, each from its own seed, and every sample's loss
    is computed on its own: how the samples are batched changes nothing."""
    events = bundled.supplements.events
    _same_bits(
        simulate(bundled, events, 3000, 5, keep_drivers=True, batch_size=batch_size), reference
    )


@pytest.mark.parametrize("threads", [2, 3])
def test_the_bits_do_not_depend_on_the_workers_and_progress_streams(
    bundled: RiskEngine, reference: SimulationResult, threads: int
) -> None:
    reports: list[Progress] = []
    result = simulate(
        bundled,
        bundled.supplements.events,
        3000,
        5,
        keep_drivers=True,
        batch_size=250,
        executor=LocalExecutor(threads),
        progress=reports.append,
    )
    _same_bits(result, reference)
    done = [r.samples_done for r in reports]
    assert len(done) > 1 and done == sorted(set(done)) and done[-1] == 3000  # while it ran
    assert reference.drivers is not None
    assert reports[-1].mean_loss == tuple(float(v) for v in reference.drivers.loss.mean(axis=0))


def test_should_stop_ends_an_executor_run_between_ranges(bundled: RiskEngine) -> None:
    calls = 0

    def stop_after_first_range() -> bool:
        nonlocal calls
        calls += 1
        return calls > 2  # the check before the run, the first range's merge, then stop

    with pytest.raises(Cancelled) as caught:
        simulate(
            bundled,
            bundled.supplements.events,
            3000,
            5,
            batch_size=250,
            executor=LocalExecutor(2),
            should_stop=stop_after_first_range,
        )
    assert 0 < caught.value.samples_done < 3000
