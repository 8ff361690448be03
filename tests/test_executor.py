"""The executor interface without Ray: the local executor's order, threads and cancellation,
and the Monte Carlo's ranges giving the sequential loop's bits (tests/test_ray_executor.py
does the same on a cluster)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sovrisk.models.analysis.simulation import _ranges, simulate
from sovrisk.models.cancellation import OperationCancelled, cancellable
from sovrisk.models.engine.executor import LocalExecutor
from sovrisk.models.scoring.risk_engine import RiskEngine


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
